import ATPDurability
import ATPLedger
import Foundation
import Testing

/// Issue 11, case 3: two data directories left by kill -9 of version 1 (journal and snapshots) on
/// which atpd refused to start. They must start, every reservation's record and holds agreeing on
/// every worker, and start again to the same state with nothing left to repair.
@Suite struct FixtureRecoveryTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func configuration() -> LedgerConfiguration {
        var configuration = LedgerConfiguration()
        configuration.shardCount = 8
        configuration.workerCount = 2
        return configuration
    }

    /// Unpacks a fixture into a fresh temporary directory; returns it and the data directory in it.
    static func unpack(_ name: String) throws -> (TemporaryDirectory, String) {
        let directory = TemporaryDirectory()
        let archive = fixtures.appendingPathComponent(name).path
        #expect(FileManager.default.fileExists(atPath: archive), "missing fixture \(archive)")
        let tar = Process()
        tar.executableURL = URL(fileURLWithPath: "/bin/tar")
        tar.arguments = ["-C", directory.path, "-xzf", archive]
        try tar.run()
        tar.waitUntilExit()
        #expect(tar.terminationStatus == 0, "tar -xzf \(archive)")
        return (directory, directory.path + "/data")
    }

    @Test(arguments: [("replay-fail-sync-datadir.tar.gz", "sync"), ("replay-fail-none-datadir.tar.gz", "none")])
    func versionOneDataDirectoryStartsConsistent(fixture: String, mode: String) throws {
        let (directory, data) = try Self.unpack(fixture)
        defer { directory.remove() }
        var durability = DurabilityConfiguration(dataDirectory: data)
        durability.journal.durability = try #require(DurabilityConfiguration.parseDurability(mode))
        durability.snapshotIntervalSeconds = 0
        let lines = LogLines()

        // First start: version-1 snapshot, version-1 journal replayed, every reservation settled.
        let first = try DurableLedger.open(configuration: Self.configuration(), durability: durability,
                                           clock: .manual(startMilliseconds: 1_800_000_000_000), log: lines.add)
        #expect(first.recovery.recordsReplayed.reduce(0, +) > 1000, "the journal tail was replayed")
        #expect(first.recovery.snapshotID != nil && first.recovery.snapshotsSkipped.isEmpty,
                "the version-1 snapshot was restored: \(first.recovery.snapshotsSkipped)")
        #expect(first.engine.configuration.skuPlacement == .skuID, "a directory from before name placement keeps it")
        #expect(try String(contentsOfFile: data + "/placement", encoding: .utf8) == "sku-placement sku-id\nshard-count 8\n")
        first.engine.waitUntilIdle()
        first.engine.checkInvariants()
        let firstState = EngineState(first.engine)
        #expect(!firstState.reservations.isEmpty)
        // The old build's records stay on their ids' hashed shards, and are found there by id.
        let shardMask = first.engine.configuration.shardCount - 1
        for record in firstState.reservations {
            let hashed = Int(truncatingIfNeeded: record.id.stableHash) & shardMask
            #expect(record.homeShard == hashed && first.engine.homeShardIndex(of: record.id) == hashed, "\(record.id)")
        }
        try first.close(finalSnapshot: false)

        // Second start, from the same version-1 snapshot and both journals' records (version 1,
        // then the first start's repairs): the same state, nothing more to repair.
        let second = try DurableLedger.open(configuration: Self.configuration(), durability: durability,
                                            clock: .manual(startMilliseconds: 1_800_000_000_000), log: lines.add)
        second.engine.waitUntilIdle()
        second.engine.checkInvariants()
        #expect(second.recovery.resolution.isEmpty, "second start repaired \(second.recovery.resolution)")
        #expect(EngineState(second.engine) == firstState)

        // Third start from a snapshot of the current version: the same again.
        try second.close(finalSnapshot: true)
        let third = try DurableLedger.open(configuration: Self.configuration(), durability: durability,
                                           clock: .manual(startMilliseconds: 1_800_000_000_000), log: lines.add)
        defer { try? third.close(finalSnapshot: false) }
        third.engine.checkInvariants()
        #expect(third.recovery.recordsReplayed.reduce(0, +) <= 4, "only recovery's own records after the snapshot")
        #expect(third.recovery.resolution.isEmpty)
        let thirdState = EngineState(third.engine)
        #expect(thirdState.cells == firstState.cells)
        #expect(thirdState.names == firstState.names)
        #expect(thirdState.reservations == firstState.reservations)
        #expect(thirdState.holds == firstState.holds)
        #expect(thirdState.dedup == firstState.dedup)
        #expect(thirdState.channels == firstState.channels)
        // Every remembered reservation answers a release by id (none is lost to routing).
        for record in thirdState.reservations {
            #expect(third.engine.release(record.id).error != .unknownReservation, "\(record.id)")
        }
    }
}

/// Collects log lines from several threads.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    @Sendable func add(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}
