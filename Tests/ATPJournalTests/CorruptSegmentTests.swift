@testable import ATPJournal
import Foundation
import Testing

/// Damage anywhere but the tail of the last segment is a hard error, never skipped.
@Suite struct CorruptSegmentTests {
    /// Five segments of two 57-byte records each (LSN 1-10); returns the segment paths.
    static func makeJournal(_ directory: String) throws -> [String] {
        var configuration = JournalConfiguration()
        configuration.segmentBytesMax = 200
        let stream = try JournalStream.open(directory: directory, streamIndex: 0, configuration: configuration)
        Journal.append(stream, count: 10, payloadBytes: 40)
        try stream.close()
        let paths = try Journal.segmentPaths(directory)
        #expect(paths.count == 5)
        return paths
    }

    static func expectRefused(_ directory: String, _ expected: JournalError,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(throws: expected, "recovery", sourceLocation: sourceLocation) {
            _ = try JournalStream.open(directory: directory, streamIndex: 0)
        }
        #expect(throws: expected, "reader", sourceLocation: sourceLocation) {
            _ = try Journal.readAll(directory)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == before,
                "nothing was cut or set aside", sourceLocation: sourceLocation)
    }

    @Test func aBitFlipInAMiddleSegmentIsAHardError() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try Self.makeJournal(temporary.stream())
        var bytes = try Journal.fileBytes(paths[2])
        bytes[32 + 57 + 30] ^= 0x10  // payload of LSN 6, the second record of segment 5-6
        try Journal.writeFile(paths[2], bytes)
        let stored = bytes.withUnsafeBytes { RecordHeader.decode(UnsafeRawBufferPointer(rebasing: $0[(32 + 57)...])) }
        let computed = bytes.withUnsafeBytes {
            RecordHeader.checksum(lsn: 6, kind: 7, payload: UnsafeRawBufferPointer(rebasing: $0[(32 + 57 + 17)...]))
        }
        try Self.expectRefused(temporary.stream(), .corruptSegment(
            path: paths[2], offset: 32 + 57, damage: .checksumMismatch(stored: stored.checksum, computed: computed)))
        // Reading from after the damaged segment still works (e.g. a snapshot covers it).
        #expect(try Journal.readAll(temporary.stream(), from: 7).map(\.lsn) == [7, 8, 9, 10])
    }

    @Test func aTruncatedMiddleSegmentIsAHardError() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try Self.makeJournal(temporary.stream())
        let bytes = try Journal.fileBytes(paths[1])
        try Journal.writeFile(paths[1], Array(bytes.dropLast(10)))
        try Self.expectRefused(temporary.stream(), .corruptSegment(
            path: paths[1], offset: 32 + 57, damage: .truncatedPayload(payloadBytes: 40, bytesPresent: 30)))
    }

    @Test func aDamagedMiddleSegmentHeaderIsAHardError() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try Self.makeJournal(temporary.stream())
        var bytes = try Journal.fileBytes(paths[3])
        bytes[17] ^= 1  // first LSN field
        try Journal.writeFile(paths[3], bytes)
        try Self.expectRefused(temporary.stream(), .corruptSegment(
            path: paths[3], offset: 0, damage: .badSegmentHeader(reason: "header checksum mismatch")))
    }

    @Test func aMissingMiddleSegmentIsAGap() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try Self.makeJournal(temporary.stream())
        try FileManager.default.removeItem(atPath: paths[2])
        try Self.expectRefused(temporary.stream(), .lsnGap(path: paths[3], expectedLSN: 5, foundLSN: 7))
    }
}
