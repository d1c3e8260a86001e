@testable import ATPJournal
import Foundation
import Testing

/// Records go in, come back byte for byte, and a reopened stream continues at the next LSN.
@Suite struct RoundTripTests {
    @Test func appendedRecordsReadBackInOrderWithKindAndPayload() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
        #expect(stream.recovery.nextLSN == 1)
        #expect(stream.recovery.tailRepair == nil)
        var expected: [JournalRecord] = []
        for lsn in UInt64(1) ... 200 {
            let payload = Journal.payload(lsn: lsn, bytes: Int(lsn % 50))  // includes empty payloads
            let kind = UInt8(lsn % 5)
            #expect(stream.append(kind: kind, payload: payload) == .appended(lsn: lsn))
            expected.append(JournalRecord(lsn: lsn, kind: kind, payload: payload))
        }
        Journal.waitDurable(stream, 200)
        #expect(stream.durableLSN == 200)
        #expect(stream.syncedLSN == 200)
        #expect(stream.writtenLSN == 200)
        try stream.close()

        #expect(try Journal.readAll(temporary.stream()) == expected)
        #expect(try Journal.readAll(temporary.stream(), from: 150) == Array(expected[149...]))
        #expect(try Journal.readAll(temporary.stream(), from: 201) == [])
    }

    @Test func theFileHoldsTheDocumentedLayout() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(3), streamIndex: 3)
        #expect(stream.append(kind: 0xAB, payload: [1, 2, 3]) == .appended(lsn: 1))
        try stream.close()

        let paths = try Journal.segmentPaths(temporary.stream(3))
        #expect(paths == [temporary.stream(3) + "/segment-00000000000000000001.journal"])
        let bytes = try Journal.fileBytes(paths[0])
        #expect(bytes.count == 32 + 17 + 3)
        #expect(Array(bytes[0 ..< 8]) == Array("ATPJRNL1".utf8))
        #expect(Array(bytes[8 ..< 12]) == [1, 0, 0, 0], "format version 1")
        #expect(Array(bytes[12 ..< 16]) == [3, 0, 0, 0], "stream index")
        #expect(Array(bytes[16 ..< 24]) == [1, 0, 0, 0, 0, 0, 0, 0], "first LSN")
        #expect(Array(bytes[28 ..< 32]) == littleEndian(CRC32C.checksum(Array(bytes[0 ..< 28]))))
        #expect(Array(bytes[32 ..< 36]) == [3, 0, 0, 0], "payload bytes")
        #expect(Array(bytes[36 ..< 40]) == littleEndian(CRC32C.checksum(Array(bytes[40...]))), "CRC over lsn, kind, payload")
        #expect(Array(bytes[40 ..< 48]) == [1, 0, 0, 0, 0, 0, 0, 0], "lsn")
        #expect(Array(bytes[48...]) == [0xAB, 1, 2, 3], "kind and payload")
    }

    func littleEndian(_ value: UInt32) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    @Test func reopenedStreamContinuesAtTheNextLSN() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        for round in 0 ..< 3 {
            let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
            #expect(stream.recovery.nextLSN == UInt64(round * 10 + 1))
            #expect(stream.recovery.recordCount == round * 10)
            #expect(stream.durableLSN == UInt64(round * 10), "recovered records count as durable")
            Journal.append(stream, count: 10)
            try stream.close()
        }
        let records = try Journal.readAll(temporary.stream())
        #expect(records.map(\.lsn) == Array(1 ... 30))
        #expect(records.allSatisfy { $0.payload == Journal.payload(lsn: $0.lsn) })
    }

    @Test func closeMakesEverythingDurableAndLaterCallsAreAnswered() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
        let recorder = CompletionRecorder()
        for lsn in Journal.append(stream, count: 50) { recorder.watch(stream, lsn) }
        try stream.close()
        #expect(recorder.all.count == 50, "close runs every remaining completion")
        #expect(recorder.succeeded == Array(1 ... 50))
        #expect(stream.durableLSN == 50)

        #expect(stream.append(kind: 1, payload: [1]) == .refused(.closed))
        recorder.watch(stream, 20)  // after close: answered at once on this thread
        #expect(recorder.all.last?.lsn == 20)
        #expect(recorder.succeeded.last == 20)
        try stream.close()  // idempotent
    }

    @Test func oversizedPayloadIsRefusedAndNothingIsAppended() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        var configuration = JournalConfiguration()
        configuration.recordPayloadBytesMax = 100
        configuration.bufferedBytesMax = 4096
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, configuration: configuration)
        #expect(stream.append(kind: 1, payload: [UInt8](repeating: 1, count: 101))
            == .refused(.payloadTooLarge(payloadBytes: 101, payloadBytesMax: 100)))
        #expect(stream.append(kind: 1, payload: [UInt8](repeating: 1, count: 100)) == .appended(lsn: 1))
        #expect(stream.failure == nil, "a refused payload does not fail the stream")
        try stream.close()
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1])
    }

    @Test func aSecondOpenOfTheSameDirectoryIsRefused() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
        #expect(throws: JournalError.directoryLocked(path: temporary.stream())) {
            _ = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
        }
        try stream.close()
        let again = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
        try again.close()
    }

    @Test func segmentsOfAnotherStreamAreRefused() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
        Journal.append(stream, count: 1)
        try stream.close()
        let path = try Journal.segmentPaths(temporary.stream())[0]
        #expect(throws: JournalError.wrongStream(path: path, expectedStreamIndex: 1, foundStreamIndex: 0)) {
            _ = try JournalStream.open(directory: temporary.stream(), streamIndex: 1)
        }
    }

    @Test func badConfigurationIsRefusedWithTheKey() throws {
        func refusedKey(_ change: (inout JournalConfiguration) -> Void) -> String? {
            var configuration = JournalConfiguration()
            change(&configuration)
            do {
                try configuration.validate()
                return nil
            } catch {
                if case .invalidConfiguration(let key, _, _) = error { return key }
                return "unexpected \(error)"
            }
        }
        #expect(refusedKey { _ in } == nil)
        #expect(refusedKey { $0.durability = .interval(milliseconds: 0) } == "durability")
        #expect(refusedKey { $0.segmentBytesMax = 10 } == "segmentBytesMax")
        #expect(refusedKey { $0.recordPayloadBytesMax = 0 } == "recordPayloadBytesMax")
        #expect(refusedKey { $0.bufferedBytesMax = $0.recordPayloadBytesMax } == "bufferedBytesMax")
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        #expect(throws: JournalError.self) {
            _ = try JournalStream.open(directory: temporary.stream(), streamIndex: -1)
        }
    }
}
