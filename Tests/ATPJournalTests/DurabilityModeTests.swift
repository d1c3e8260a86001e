@testable import ATPJournal
import Dispatch
import Foundation
import Testing

/// When each durability mode runs completions and when it calls fdatasync.
@Suite struct DurabilityModeTests {
    static func open(_ temporary: TemporaryDirectory, _ durability: JournalDurability, _ probe: FileOperationsProbe)
        throws -> JournalStream
    {
        try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                               configuration: JournalConfiguration(durability: durability),
                               fileOperations: probe.operations())
    }

    @Test func syncRunsCompletionsOnlyAfterTheCoveringFdatasync() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try Self.open(temporary, .sync, probe)
        let recorder = CompletionRecorder()
        probe.hold(dataSyncs: true)
        Journal.append(stream, count: 3)
        for lsn: UInt64 in 1 ... 3 { recorder.watch(stream, lsn) }
        probe.waitUntilHeld()
        #expect(recorder.nothingArrives(withinMilliseconds: 50))
        #expect(stream.durableLSN == 0)
        #expect(stream.syncedLSN == 0)
        probe.release()
        recorder.wait(for: 3)
        #expect(recorder.succeeded == [1, 2, 3])
        #expect(stream.syncedLSN == 3)
        try stream.close()
    }

    @Test func intervalRunsCompletionsOnceWrittenAndSyncsOnItsTimer() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try Self.open(temporary, .interval(milliseconds: 40), probe)
        let syncsAfterOpen = probe.dataSyncs
        let recorder = CompletionRecorder()
        probe.hold(dataSyncs: true)
        Journal.append(stream, count: 5)
        for lsn: UInt64 in 1 ... 5 { recorder.watch(stream, lsn) }
        recorder.wait(for: 5)
        #expect(recorder.succeeded == [1, 2, 3, 4, 5], "acknowledged once written, before any sync")
        #expect(stream.writtenLSN == 5)
        #expect(stream.durableLSN == 5)
        // The timer syncs without any further append; the sync is held at the gate.
        probe.waitUntilHeld()
        #expect(probe.dataSyncs - syncsAfterOpen == 1)
        probe.release()
        let deadline = DispatchTime.now() + 5
        while stream.syncedLSN < 5 && DispatchTime.now() < deadline { usleep(1000) }
        #expect(stream.syncedLSN == 5)
        try stream.close()
    }

    @Test func intervalDoesNotSyncBeforeItsIntervalHasPassed() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try Self.open(temporary, .interval(milliseconds: 60_000), probe)
        let syncsAfterOpen = probe.dataSyncs
        let recorder = CompletionRecorder()
        for lsn in Journal.append(stream, count: 100) { recorder.watch(stream, lsn) }
        recorder.wait(for: 100)
        #expect(recorder.succeeded == Array(1 ... 100))
        #expect(probe.dataSyncs == syncsAfterOpen, "no fdatasync within the interval")
        #expect(stream.syncedLSN == 0)
        try stream.close()
        #expect(probe.dataSyncs == syncsAfterOpen + 1, "close syncs")
        #expect(stream.syncedLSN == 100)
    }

    @Test func noneNeverSyncsUntilClose() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        var configuration = JournalConfiguration(durability: .none)
        configuration.segmentBytesMax = 1024  // rotation too must not sync in .none
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            configuration: configuration, fileOperations: probe.operations())
        let dataSyncsAfterOpen = probe.dataSyncs
        let directorySyncsAfterOpen = probe.state.withLock { $0.directorySyncs }
        let recorder = CompletionRecorder()
        for lsn in Journal.append(stream, count: 200) { recorder.watch(stream, lsn) }
        recorder.wait(for: 200)
        #expect(recorder.succeeded == Array(1 ... 200))
        #expect(stream.segments.count > 5, "records went through several segments")
        #expect(probe.dataSyncs == dataSyncsAfterOpen)
        #expect(probe.state.withLock { $0.directorySyncs } == directorySyncsAfterOpen)
        #expect(stream.syncedLSN == 0)
        let segmentCount = stream.segments.count
        try stream.close()
        #expect(probe.dataSyncs == dataSyncsAfterOpen + segmentCount, "close syncs every segment written")
        #expect(probe.state.withLock { $0.directorySyncs } == directorySyncsAfterOpen + 1)
        #expect(stream.syncedLSN == 200)
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == Array(1 ... 200))
    }
}
