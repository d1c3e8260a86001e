import ATPDurability
import ATPJournal
import ATPLedger
import Foundation
import Synchronization
import Testing

/// One flipped bit in the header of the only journal segment of a data directory written by
/// `DurableLedger`: `open` refuses, naming the segment and what would be lost, and changes
/// nothing; with `journalDamagePolicy = .acceptLoss` it opens, keeps the damaged file and logs
/// the loss at error severity.
@Suite struct DamagedJournalTests {
    /// A SKU on core 0, whose events go to stream 0.
    static let skuOnCoreZero = Workload.skuNumber(onCore: 0, RecoveryTests.ledgerConfiguration())

    /// Writes two acknowledged receives into stream 0 (of `skuOnCoreZero`) and closes
    /// without a snapshot (as after a crash); returns the path of stream 0's only segment.
    static func dataDirectoryWithTwoReceives(_ directory: TemporaryDirectory) throws -> String {
        do {
            let ledger = try RecoveryTests.open(directory)
            var workload = Workload(engine: ledger.engine)
            workload.receive(sku: Self.skuOnCoreZero, location: 1, quantity: 10)
            workload.receive(sku: Self.skuOnCoreZero, location: 1, quantity: 1)
            try ledger.close(finalSnapshot: false)
        }
        let stream = JournalLayout.streamDirectory(dataDirectory: directory.path, streamIndex: 0)
        let segments = try FileManager.default.contentsOfDirectory(atPath: stream).filter { $0.hasSuffix(".journal") }
        #expect(segments.count == 1)
        return stream + "/" + segments[0]
    }

    /// `dataDirectoryWithTwoReceives`, then flips one bit in the header of stream 0's only segment;
    /// returns the segment's path and its damaged bytes.
    static func damagedDataDirectory(_ directory: TemporaryDirectory) throws -> (path: String, bytes: Data) {
        let path = try dataDirectoryWithTwoReceives(directory)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[13] ^= 0x01  // the stream index field: only the header's CRC notices
        try bytes.write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    @Test func aFlippedBitInTheOnlySegmentHeaderIsRefusedThenAcceptedOnlyWhenAsked() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let (path, damagedBytes) = try Self.damagedDataDirectory(directory)

        do {
            let ledger = try RecoveryTests.open(directory)
            try ledger.close(finalSnapshot: false)
            Issue.record("a journal with a damaged segment header opened")
        } catch let error as DurabilityError {
            guard case .journalDamaged(let reports) = error else { throw error }
            #expect(reports.count == 1)
            let report = try #require(reports.first)
            #expect(report.streamIndex == 0 && report.segmentPath == path && report.offset == 0)
            #expect(report.bytesLost == Int64(damagedBytes.count))
            #expect(report.recordsAfterDamage >= 2, "the names and both receives still verify")
            for part in [path, "byte 0", "header checksum mismatch", "\(damagedBytes.count) bytes", "records still verify",
                         "nothing was changed", "--accept-journal-damage"] {
                #expect(error.description.contains(part), "\(error)")
            }
            let explanation = try #require(error.journalDamageExplanation(dataDirectory: directory.path))
            for part in ["would be lost", path, "cp -a '\(directory.path)'", "--accept-journal-damage", "acceptJournalDamage"] {
                #expect(explanation.contains(part), "\(explanation)")
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damagedBytes, "the refusal changed nothing")
        #expect(!FileManager.default.fileExists(atPath: path + ".damaged"))

        let lines = Mutex<[String]>([])
        var durability = DurabilityConfiguration(dataDirectory: directory.path)
        durability.snapshotIntervalSeconds = 0
        durability.journalDamagePolicy = .acceptLoss
        let ledger = try DurableLedger.open(configuration: RecoveryTests.ledgerConfiguration(), durability: durability,
                                            clock: .manual()) { line in lines.withLock { $0.append(line) } }
        defer { try? ledger.close(finalSnapshot: false) }
        #expect(ledger.recovery.acceptedJournalLosses.count == 1)
        let accepted = try #require(ledger.recovery.acceptedJournalLosses.first)
        #expect(accepted.streamIndex == 0 && accepted.loss.preservedPaths == [path + ".damaged"])
        #expect(ledger.recovery.description.contains("1 journal losses accepted"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + ".damaged")) == damagedBytes, "the damaged file is kept")
        let errors = lines.withLock { $0 }.filter { RecoveryLog.severity(of: $0) == .error }
        #expect(errors.count == 1 && errors.first?.contains(path + ".damaged") == true, "\(lines.withLock { $0 })")
        // The records of stream 0 are gone, as accepted: SKU 2 starts from nothing.
        #expect(Workload(engine: ledger.engine).sellable(sku: Self.skuOnCoreZero, location: 1) == 0)
    }

    /// A torn last record is what a crash leaves: cut under the default policy, logged at warning.
    @Test func aTornTailIsCutWithoutAskingAndLoggedAsAWarning() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = try Self.dataDirectoryWithTwoReceives(directory)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.dropLast(5).write(to: URL(fileURLWithPath: path))

        let lines = Mutex<[String]>([])
        var durability = DurabilityConfiguration(dataDirectory: directory.path)
        durability.snapshotIntervalSeconds = 0
        let ledger = try DurableLedger.open(configuration: RecoveryTests.ledgerConfiguration(), durability: durability,
                                            clock: .manual()) { line in lines.withLock { $0.append(line) } }
        defer { try? ledger.close(finalSnapshot: false) }
        #expect(ledger.recovery.tailRepairs.count == 1 && ledger.recovery.acceptedJournalLosses.isEmpty)
        let severities = lines.withLock { $0 }.map(RecoveryLog.severity(of:))
        #expect(severities.contains(.warning) && !severities.contains(.error), "\(lines.withLock { $0 })")
        #expect(Workload(engine: ledger.engine).sellable(sku: Self.skuOnCoreZero, location: 1) == 10)
    }
}
