@testable import ATPJournal
import Foundation
import Testing

/// Segments rotate at record boundaries and are deleted once a snapshot covers them.
@Suite struct RotationTests {
    /// 57-byte records (17 + 40): a 200-byte segment holds the 32-byte header and two records.
    static func configuration() -> JournalConfiguration {
        var configuration = JournalConfiguration()
        configuration.segmentBytesMax = 200
        return configuration
    }

    @Test func segmentsRotateAtRecordBoundariesAndReadBackAcrossThem() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            configuration: Self.configuration())
        Journal.append(stream, count: 9, payloadBytes: 40)
        Journal.waitDurable(stream, 9)
        #expect(stream.segments.map(\.firstLSN) == [1, 3, 5, 7, 9])
        try stream.close()

        let paths = try Journal.segmentPaths(temporary.stream())
        #expect(paths.map { String($0.split(separator: "/").last!) } == [1, 3, 5, 7, 9].map {
            "segment-" + String(repeating: "0", count: 19) + "\($0).journal"
        })
        for path in paths.dropLast() {
            #expect(try Journal.fileBytes(path).count == 32 + 2 * 57, "\(path) is full at a record boundary")
        }
        #expect(try Journal.fileBytes(paths[4]).count == 32 + 57)
        let records = try Journal.readAll(temporary.stream())
        #expect(records.map(\.lsn) == Array(1 ... 9))
        #expect(records.allSatisfy { $0.payload == Journal.payload(lsn: $0.lsn, bytes: 40) })
        #expect(try Journal.readAll(temporary.stream(), from: 6).map(\.lsn) == [6, 7, 8, 9])

        // Reopened, the stream continues in the last segment and rotates on.
        let reopened = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                              configuration: Self.configuration())
        Journal.append(reopened, count: 2, payloadBytes: 40)
        try reopened.close()
        #expect(reopened.segments.map(\.firstLSN) == [1, 3, 5, 7, 9, 11])
    }

    @Test func aRecordLargerThanASegmentGetsASegmentOfItsOwn() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            configuration: Self.configuration())
        #expect(stream.append(kind: 1, payload: [UInt8](repeating: 9, count: 10)) == .appended(lsn: 1))
        #expect(stream.append(kind: 1, payload: [UInt8](repeating: 9, count: 500)) == .appended(lsn: 2))
        #expect(stream.append(kind: 1, payload: [UInt8](repeating: 9, count: 10)) == .appended(lsn: 3))
        try stream.close()
        #expect(stream.segments.map(\.firstLSN) == [1, 2, 3])
        #expect(try Journal.readAll(temporary.stream()).map(\.payload.count) == [10, 500, 10])
    }

    @Test func deleteRemovesOnlyWholeCoveredSegmentsNeverTheActiveOne() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            configuration: Self.configuration())
        Journal.append(stream, count: 9, payloadBytes: 40)
        Journal.waitDurable(stream, 9)

        #expect(try stream.deleteSegments(coveredThrough: 3).map(\.firstLSN) == [1], "segment 3-4 holds 4 > 3")
        #expect(try stream.deleteSegments(coveredThrough: 3) == [])
        #expect(try stream.deleteSegments(coveredThrough: 6).map(\.firstLSN) == [3, 5])
        #expect(try stream.deleteSegments(coveredThrough: .max).map(\.firstLSN) == [7], "never the active one")
        #expect(stream.segments.map(\.firstLSN) == [9])
        #expect(try Journal.segmentPaths(temporary.stream()).count == 1)

        // Appending goes on; the reader starts at the oldest kept record and refuses older ones.
        Journal.append(stream, count: 1, payloadBytes: 40)
        try stream.close()
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [9, 10])
        #expect(throws: JournalError.recordsUnavailable(requestedLSN: 5, firstAvailableLSN: 9)) {
            _ = try Journal.readAll(temporary.stream(), from: 5)
        }
        let reopened = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                              configuration: Self.configuration())
        #expect(reopened.recovery.firstLSN == 9)
        #expect(reopened.recovery.nextLSN == 11)
        try reopened.close()
    }
}
