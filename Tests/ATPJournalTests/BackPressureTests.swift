@testable import ATPJournal
import Testing

/// The unflushed bytes of a stream are bounded: a full buffer returns `.full`, never blocks, never grows.
@Suite struct BackPressureTests {
    @Test func aFullBufferRefusesAppendsUntilTheFlusherCatchesUp() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        var configuration = JournalConfiguration()
        configuration.bufferedBytesMax = 1000
        configuration.recordPayloadBytesMax = 100
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            configuration: configuration, fileOperations: probe.operations())
        probe.hold(writes: true)
        #expect(stream.append(kind: 1, payload: [UInt8](repeating: 1, count: 83)) == .appended(lsn: 1))
        probe.waitUntilHeld()  // record 1 (100 bytes) is inside write(2): its bytes are not free yet

        var accepted = 1
        while case .appended = stream.append(kind: 1, payload: [UInt8](repeating: 1, count: 83)) { accepted += 1 }
        #expect(accepted == 10, "1,000 buffered bytes hold exactly ten 100-byte records")
        #expect(stream.append(kind: 1, payload: [UInt8](repeating: 1, count: 83)) == .full)
        #expect(stream.append(kind: 1, payload: []) == .full, "not even a 17-byte record fits")
        #expect(stream.lastAppendedLSN == 10)
        #expect(stream.failure == nil, "full is not a failure")

        let recorder = CompletionRecorder()
        recorder.watch(stream, 10)
        probe.release()
        recorder.wait(for: 1)
        #expect(recorder.succeeded == [10])
        #expect(stream.append(kind: 1, payload: [UInt8](repeating: 1, count: 83)) == .appended(lsn: 11))
        try stream.close()
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == Array(1 ... 11))
    }
}
