@testable import ATPJournal
import Testing

/// Everything appended while one fdatasync runs shares the next one.
@Suite struct GroupCommitTests {
    @Test func manyAppendsDuringOneSyncShareTheNextSync() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            fileOperations: probe.operations())
        let syncsAfterOpen = probe.dataSyncs
        let recorder = CompletionRecorder()

        probe.hold(dataSyncs: true)
        Journal.append(stream, count: 1)
        recorder.watch(stream, 1)
        probe.waitUntilHeld()  // the flusher is inside the fdatasync covering record 1
        #expect(stream.writtenLSN == 1)
        #expect(stream.durableLSN == 0, "not durable before its fdatasync returns")

        for lsn in Journal.append(stream, count: 999) { recorder.watch(stream, lsn) }
        #expect(recorder.all.isEmpty, "no completion runs while the sync is held")
        probe.release()
        recorder.wait(for: 1000)

        #expect(recorder.succeeded == Array(1 ... 1000), "every completion once, in LSN order")
        #expect(probe.dataSyncs - syncsAfterOpen == 2, "one fdatasync for record 1, one for the other 999")
        #expect(stream.durableLSN == 1000)
        try stream.close()
        #expect(try Journal.readAll(temporary.stream()).count == 1000)
    }

    @Test func completionsRegisteredOutOfOrderStillRunInLSNOrder() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            fileOperations: probe.operations())
        probe.hold(dataSyncs: true)
        Journal.append(stream, count: 10)
        probe.waitUntilHeld()
        let recorder = CompletionRecorder()
        for lsn: UInt64 in [9, 3, 10, 1, 3, 7] { recorder.watch(stream, lsn) }
        probe.release()
        recorder.wait(for: 6)
        #expect(recorder.lsns == [1, 3, 3, 7, 9, 10])
        try stream.close()
    }
}
