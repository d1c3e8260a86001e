import ATPDurability
import ATPLedger
import Foundation
import Testing

/// `<data>/placement`: a data directory is reopened with the SKU placement it was written with
/// (docs/DURABILITY.md, "The data directory").
@Suite struct PlacementFileTests {
    static func open(_ directory: TemporaryDirectory, configure: (inout LedgerConfiguration) -> Void = { _ in })
        throws -> DurableLedger
    {
        var configuration = RecoveryTests.ledgerConfiguration()
        configure(&configuration)
        var durability = DurabilityConfiguration(dataDirectory: directory.path)
        durability.snapshotIntervalSeconds = 0
        return try DurableLedger.open(configuration: configuration, durability: durability, clock: .manual())
    }

    static func placementText(_ directory: TemporaryDirectory) throws -> String {
        try String(contentsOfFile: directory.path + "/placement", encoding: .utf8)
    }

    /// A fresh directory places by name and says so before the first record; reopened (from the
    /// journal, then from a snapshot) it still does, and every cell is where its name says.
    @Test func aFreshDirectoryPlacesByNameAndKeepsIt() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        do {
            let ledger = try Self.open(directory)
            #expect(try Self.placementText(directory) == "sku-placement name-hash\nshard-count 8\n")
            var workload = Workload(engine: ledger.engine)
            for sku in 0..<40 { workload.receive(sku: sku, location: 1, quantity: Int64(sku + 1)) }
            try ledger.close(finalSnapshot: false)
        }
        for finalSnapshot in [true, false] {
            let ledger = try Self.open(directory)
            #expect(ledger.engine.configuration.skuPlacement == .nameHash)
            let workload = Workload(engine: ledger.engine)
            for sku in 0..<40 {
                #expect(workload.sellable(sku: sku, location: 1) == Int64(sku + 1))
                #expect(ledger.engine.shardIndex(of: workload.sku(sku))
                        == ledger.engine.configuration.placement.shardIndex(ofSKUNamed: "SKU-\(sku)"))
            }
            try ledger.close(finalSnapshot: finalSnapshot)
        }
        #expect(try Self.placementText(directory) == "sku-placement name-hash\nshard-count 8\n")
    }

    /// A directory with journal records but no placement file was written before name placement:
    /// it is opened by id, whatever the configuration says, and the file is written saying so.
    @Test func aDirectoryWithRecordsButNoFileKeepsPlacementByID() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        do {
            let ledger = try Self.open(directory) { $0.skuPlacement = .skuID }
            var workload = Workload(engine: ledger.engine)
            for sku in 0..<20 { workload.receive(sku: sku, location: 1, quantity: 3) }
            try ledger.close(finalSnapshot: false)
        }
        try FileManager.default.removeItem(atPath: directory.path + "/placement")
        let ledger = try Self.open(directory)
        defer { try? ledger.close(finalSnapshot: false) }
        #expect(ledger.engine.configuration.skuPlacement == .skuID)
        #expect(try Self.placementText(directory) == "sku-placement sku-id\nshard-count 8\n")
        let workload = Workload(engine: ledger.engine)
        for sku in 0..<20 {
            #expect(workload.sellable(sku: sku, location: 1) == 3)
            #expect(ledger.engine.shardIndex(of: workload.sku(sku)) == Int(workload.sku(sku).rawValue) & 7)
        }
    }

    /// Another shard count than the directory's, a damaged file, or a file that disagrees with the
    /// snapshot: refused with an error that says what to do, and nothing is changed.
    @Test func aMismatchOrADamagedFileIsRefused() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        do {
            let ledger = try Self.open(directory)
            var workload = Workload(engine: ledger.engine)
            workload.receive(sku: 1, location: 1, quantity: 3)
            try ledger.close(finalSnapshot: true)
        }
        do {
            _ = try Self.open(directory) { $0.shardCount = 16 }
            Issue.record("opened with another shard count")
        } catch let error as DurabilityError {
            guard case .shardCountMismatch(8, 16) = error else { throw error }
            #expect(error.description.contains("ledger.shardCount = 8"))
        }
        let path = directory.path + "/placement"
        try "sku-placement sku-id\nshard-count 8\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try Self.open(directory)
            Issue.record("opened with a placement file that disagrees with the snapshot")
        } catch let error as DurabilityError {
            guard case .placementMismatch = error else { throw error }
        }
        try "sku-placement sideways\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try Self.open(directory)
            Issue.record("opened with a damaged placement file")
        } catch let error as DurabilityError {
            guard case .dataDirectory(let filePath, let reason) = error else { throw error }
            #expect(filePath == path && reason.contains("sku-placement name-hash|sku-id"))
        }
        #expect(try Self.placementText(directory) == "sku-placement sideways\n", "left as found")
        try "sku-placement name-hash\nshard-count 8\n".write(toFile: path, atomically: true, encoding: .utf8)
        let ledger = try Self.open(directory)
        defer { try? ledger.close(finalSnapshot: false) }
        #expect(Workload(engine: ledger.engine).sellable(sku: 1, location: 1) == 3)
    }
}
