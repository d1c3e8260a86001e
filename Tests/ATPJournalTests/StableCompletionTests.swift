@testable import ATPJournal
import Dispatch
import Foundation
import Testing

/// `whenStable`: completions that wait until a record survives a power loss (synced), where the
/// mode syncs; in `.none`, once written. A ledger core tells other cores of a change only then.
@Suite struct StableCompletionTests {
    static func open(_ temporary: TemporaryDirectory, _ durability: JournalDurability, _ probe: FileOperationsProbe)
        throws -> JournalStream
    {
        try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                               configuration: JournalConfiguration(durability: durability),
                               fileOperations: probe.operations())
    }

    @Test func intervalRunsStableCompletionsOnlyAfterTheTimerSync() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try Self.open(temporary, .interval(milliseconds: 40), probe)
        let durable = CompletionRecorder()
        let stable = CompletionRecorder()
        probe.hold(dataSyncs: true)
        for lsn in Journal.append(stream, count: 3) {
            durable.watch(stream, lsn)
            stream.whenStable(lsn, stable.completion(for: lsn))
        }
        durable.wait(for: 3)
        #expect(durable.succeeded == [1, 2, 3], "durable once written")
        probe.waitUntilHeld()
        #expect(stable.nothingArrives(withinMilliseconds: 50), "not stable before the sync")
        #expect(stream.stableLSN == 0)
        probe.release()
        stable.wait(for: 3)
        #expect(stable.succeeded == [1, 2, 3])
        #expect(stream.stableLSN == 3)
        try stream.close()
    }

    @Test func syncRunsStableAndDurableCompletionsAtTheSameSync() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try Self.open(temporary, .sync, probe)
        let stable = CompletionRecorder()
        probe.hold(dataSyncs: true)
        for lsn in Journal.append(stream, count: 2) { stream.whenStable(lsn, stable.completion(for: lsn)) }
        probe.waitUntilHeld()
        #expect(stable.nothingArrives(withinMilliseconds: 50))
        probe.release()
        stable.wait(for: 2)
        #expect(stable.succeeded == [1, 2])
        try stream.close()
    }

    @Test func noneRunsStableCompletionsOnceWritten() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try Self.open(temporary, .none, probe)
        let stable = CompletionRecorder()
        for lsn in Journal.append(stream, count: 5) { stream.whenStable(lsn, stable.completion(for: lsn)) }
        stable.wait(for: 5)
        #expect(stable.succeeded == [1, 2, 3, 4, 5])
        #expect(stream.syncedLSN == 0, "stable in .none without a sync")
        try stream.close()
    }

    @Test func aFailedSyncFailsTheStableCompletions() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try Self.open(temporary, .interval(milliseconds: 20), probe)
        let stable = CompletionRecorder()
        probe.failDataSync(afterDataSyncs: 0)
        for lsn in Journal.append(stream, count: 2) { stream.whenStable(lsn, stable.completion(for: lsn)) }
        stable.wait(for: 2)
        #expect(stable.succeeded.isEmpty)
        #expect(stable.failures.count == 2)
        try? stream.close()
    }
}
