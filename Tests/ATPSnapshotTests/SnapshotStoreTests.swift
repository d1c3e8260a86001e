import ATPJournal
import ATPLMDB
import ATPLedger
import Foundation
import Synchronization
import Testing

@testable import ATPSnapshot

@Suite("Snapshot store")
struct SnapshotStoreTests {
    static let metadata = SnapshotMetadata(engineVersion: "atp-test 1.0")

    /// A populated fixture and its image.
    private func populated() -> (SnapshotFixture, LedgerImage) {
        let fixture = SnapshotFixture()
        fixture.populate()
        return (fixture, fixture.engine.captureImage { UInt64(7 + $0) })
    }

    @Test("capture → write → load → restore gives identical state")
    func roundTrip() throws {
        let directory = TemporaryDirectory()
        let (fixture, image) = populated()
        let store = SnapshotStore(directory: directory.path, keep: 2)
        let written = try store.write(image, metadata: Self.metadata)
        #expect(written.id == 1)
        #expect(written.path == directory.path + "/snapshots/snapshot-00000000000000000001")
        #expect(try store.list() == [1])
        let info = try store.info(1)
        #expect(info == written)
        #expect(info.workerMarks == [7, 8])
        #expect(info.cellCount == image.cellCount)
        #expect(info.engineVersion == "atp-test 1.0")
        #expect(info.cutWallClockMilliseconds == image.cutWallClockMilliseconds)

        var lines: [String] = []
        let loaded = try #require(try store.loadNewestValid { lines.append($0) })
        #expect(lines.isEmpty)
        #expect(loaded.1 == written)
        // Everything recovery needs between workers survives exactly: hold status and origin,
        // reservation parts and awaited acknowledgements, the workers' journal generations.
        #expect(loaded.0.version == LedgerImage.currentVersion)
        #expect(loaded.0.reservations.sorted { $0.id < $1.id } == image.reservations.sorted { $0.id < $1.id })
        #expect(loaded.0.holds.map { "\($0)" }.sorted() == image.holds.map { "\($0)" }.sorted())
        #expect(loaded.0.reservations.contains { !$0.parts.isEmpty }, "the fixture has reservations across workers")
        #expect(loaded.0.workerGenerations == image.workerGenerations)
        #expect(loaded.0.workerGenerations.count == 2)
        let restored = try Engine(restoring: loaded.0, configuration: fixture.configuration,
                                  clock: .manual(startMilliseconds: fixture.clock.nowMilliseconds()))
        defer { restored.shutdown() }
        restored.checkInvariants()
        let original = ObservedState(fixture.engine)
        let state = ObservedState(restored)
        #expect(state == original)
    }

    @Test("mdb_stat and mdb_dump read a snapshot directory")
    func standardToolsRead() throws {
        let directory = TemporaryDirectory()
        let (_, image) = populated()
        let store = SnapshotStore(directory: directory.path, keep: 2)
        let info = try store.write(image, metadata: Self.metadata)
        let stat = try run("/usr/bin/mdb_stat", ["-a", info.path])
        #expect(stat.status == 0)
        for name in ["cells", "names", "meta", "reservations", "holds", "channels", "dedup"] {
            #expect(stat.output.contains("Status of \(name)"), "mdb_stat lists \(name)")
        }
        #expect(stat.output.contains("Entries: \(image.cellCount)"))
        let dump = try run("/usr/bin/mdb_dump", ["-p", "-s", "cells", info.path])
        #expect(dump.status == 0)
        // Keys are SKU id then location id, big-endian: the first cell is (0, 0).
        let firstKey = dump.output.split(separator: "\n").first { $0.hasPrefix(" ") }
        #expect(firstKey == " \\00\\00\\00\\00\\00\\00\\00\\00")
        let meta = try run("/usr/bin/mdb_dump", ["-p", "-s", "meta", info.path])
        #expect(meta.status == 0 && meta.output.contains(" checksum.cells"))
    }

    @Test("exportCSV streams every cell with its names")
    func exportCSV() throws {
        let directory = TemporaryDirectory()
        let (fixture, image) = populated()
        let store = SnapshotStore(directory: directory.path, keep: 2)
        let info = try store.write(image, metadata: Self.metadata)
        var bytes: [UInt8] = []
        var chunks = 0
        try store.exportCSV(info.id) { chunk in
            bytes.append(contentsOf: chunk)
            chunks += 1
        }
        #expect(chunks >= 1)
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.first.map(String.init) == String(SnapshotStore.csvHeader.dropLast()))
        #expect(lines.count == image.cellCount + 2)  // header + cells + final empty
        // SKU 7's name holds a comma and quotes: quoted, quotes doubled.
        #expect(lines.contains("\"SKU,\"\"7\"\"\",L2,19,0,0,0,0,0,0,0,19,19"))
        let cell = try #require(fixture.engine.query([.cell(fixture.sku(1), fixture.location(0))]).cells(of: 0).first)
        #expect(lines.contains("SKU-1,L0,\(cell.cell.onHand),2,0,0,0,0,0,0,\(cell.sellable),\(cell.projected)"))
        let file = directory.path + "/export.csv"
        try store.exportCSV(info.id, toFileAt: file)
        #expect(FileManager.default.contents(atPath: file) == Data(bytes))
    }

    enum Damage: String, CaseIterable, CustomTestStringConvertible {
        case bitFlip, truncation, missingData, missingChecksum
        var testDescription: String { rawValue }
    }

    @Test("a damaged newest snapshot is skipped for the one before it, with a log line", arguments: Damage.allCases)
    func damagedSnapshotSkipped(_ damage: Damage) throws {
        let directory = TemporaryDirectory()
        let (fixture, image) = populated()
        let store = SnapshotStore(directory: directory.path, keep: 5)
        _ = try store.write(image, metadata: Self.metadata)
        fixture.engine.apply(EventBatch(events: [fixture.event(.receive, 0, 0, 5)]))
        let newer = try store.write(fixture.engine.captureImage { _ in 99 }, metadata: Self.metadata)
        #expect(newer.id == 2)
        let data = newer.path + "/data.mdb"
        switch damage {
        case .bitFlip:
            var bytes = try #require(FileManager.default.contents(atPath: data))
            bytes[bytes.count / 2] ^= 0x10
            try bytes.write(to: URL(fileURLWithPath: data))
        case .truncation:
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: data))
            try handle.truncate(atOffset: 8192)
            try handle.close()
        case .missingData:
            try FileManager.default.removeItem(atPath: data)
        case .missingChecksum:
            try FileManager.default.removeItem(atPath: newer.path + "/data.mdb.crc32c")
        }
        var lines: [String] = []
        let loaded = try #require(try store.loadNewestValid { lines.append($0) })
        #expect(loaded.1.id == 1)
        #expect(loaded.0.workerMarks == [7, 8])
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("snapshot 2 skipped: ") == true)
        #expect(throws: SnapshotError.self) { _ = try store.load(2) }
    }

    @Test("a snapshot whose cells do not match the meta checksum is skipped")
    func cellsChecksumVerified() throws {
        let directory = TemporaryDirectory()
        let (_, image) = populated()
        let store = SnapshotStore(directory: directory.path, keep: 5)
        _ = try store.write(image, metadata: Self.metadata)
        let newer = try store.write(image, metadata: Self.metadata)
        // Rewrite one cell's value through LMDB and reseal the file checksum: only the cells
        // checksum in meta can catch it.
        do {
            let environment = try LMDBEnvironment(path: newer.path, mapSizeBytes: 64 << 20, databasesMax: 8)
            try environment.write { transaction in
                let cells = try #require(try transaction.openDatabase("cells"))
                try transaction.put([UInt8](repeating: 0, count: SnapshotFormat.cellValueBytes),
                                    forKey: [0, 0, 0, 0, 0, 0, 0, 0], in: cells)
            }
            environment.close()
        }
        let dataPath = newer.path + "/data.mdb"
        let size = try #require(try FileSystem.fileSize(dataPath))
        let resealed = SnapshotChecksumFile(crc32c: try SnapshotChecksumFile.checksum(of: dataPath), bytes: size)
        try FileSystem.writeFile(newer.path + "/" + SnapshotFormat.checksumFileName, resealed.text)

        var lines: [String] = []
        let loaded = try #require(try store.loadNewestValid { lines.append($0) })
        #expect(loaded.1.id == 1)
        #expect(lines.count == 1)
        #expect(lines.first?.contains("database cells CRC-32C") == true)
    }

    @Test("map full at the configured maximum fails cleanly: no .tmp left, engine unaffected")
    func mapFullFailsCleanly() throws {
        let directory = TemporaryDirectory()
        let (fixture, image) = populated()
        var configuration = SnapshotStoreConfiguration()
        configuration.mapSizeBytesMax = 32 << 10
        let store = SnapshotStore(directory: directory.path, configuration: configuration)
        #expect {
            _ = try store.write(image, metadata: Self.metadata)
        } throws: { error in
            guard case SnapshotError.mapFull(let max) = error else { return false }
            return max == 32 << 10
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/snapshots").isEmpty)
        #expect(try store.list().isEmpty)
        #expect(try store.loadNewestValid { _ in } == nil)
        let outcome = fixture.engine.apply(EventBatch(events: [fixture.event(.receive, 0, 0, 1)])).outcomes
        #expect(outcome == [.applied])
        fixture.engine.checkInvariants()
    }

    @Test("the map grows from a small start, in small transactions")
    func mapGrows() throws {
        let directory = TemporaryDirectory()
        let (fixture, image) = populated()
        var configuration = SnapshotStoreConfiguration()
        configuration.mapSizeBytesInitial = 16 << 10
        configuration.entriesPerTransaction = 7
        let store = SnapshotStore(directory: directory.path, configuration: configuration)
        let info = try store.write(image, metadata: Self.metadata)
        let loaded = try store.load(info.id)
        let restored = try Engine(restoring: loaded.0, configuration: fixture.configuration,
                                  clock: .manual(startMilliseconds: fixture.clock.nowMilliseconds()))
        defer { restored.shutdown() }
        #expect(ObservedState(restored) == ObservedState(fixture.engine))
    }

    @Test("prune keeps the newest N and removes unfinished .tmp directories")
    func pruneKeepsNewest() throws {
        let directory = TemporaryDirectory()
        let (_, image) = populated()
        let store = SnapshotStore(directory: directory.path, keep: 2)
        for expected in 1...4 { #expect(try store.write(image, metadata: Self.metadata).id == UInt64(expected)) }
        let leftover = store.path(of: 9) + ".tmp"
        try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: true)
        #expect(try store.prune() == [1, 2])
        #expect(try store.list() == [3, 4])
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(try store.prune() == [])
        #expect(try store.write(image, metadata: Self.metadata).id == 5)
        #expect(throws: SnapshotError.self) { _ = try store.info(1) }
    }

    @Test("CRC-32C matches the standard check value")
    func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        var crc = CRC32C()
        crc.update(Array("1234".utf8))
        crc.update(Array("56789".utf8))
        #expect(crc.value == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    }

    private func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
