@testable import ATPJournal
import Foundation
import Testing

/// Damage anywhere but the tail of the last segment is never skipped: the reader throws, and
/// recovery refuses with what would be lost, changing nothing (LossDamageTests covers accepting it).
@Suite struct CorruptSegmentTests {
    /// Five segments of two 57-byte records each (LSN 1-10, 146 bytes each); returns the segment paths.
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

    /// The reader throws `readerError`; recovery throws `.damageWouldLoseRecords` with a report that
    /// starts at `loss.segmentPath`/`loss.offset`; nothing is cut or set aside.
    static func expectRefused(_ directory: String, _ readerError: JournalError, _ loss: JournalLossReport,
                              sourceLocation: SourceLocation = #_sourceLocation) throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(throws: JournalError.damageWouldLoseRecords(loss), "recovery", sourceLocation: sourceLocation) {
            _ = try JournalStream.open(directory: directory, streamIndex: 0)
        }
        #expect(throws: readerError, "reader", sourceLocation: sourceLocation) {
            _ = try Journal.readAll(directory)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == before,
                "nothing was cut or set aside", sourceLocation: sourceLocation)
    }

    static func loss(_ directory: String, _ paths: ArraySlice<String>, offset: Int64, damage: JournalDamage,
                     lastIntactLSN: UInt64, bytesLost: Int64, after: ClosedRange<UInt64>) -> JournalLossReport {
        JournalLossReport(directory: directory, streamIndex: 0, segmentPath: paths.first!, offset: offset, damage: damage,
                          lastIntactLSN: lastIntactLSN, bytesLost: bytesLost, filesAffected: Array(paths),
                          recordsAfterDamage: after.count, lsnRangeAfterDamage: after, preservedPaths: [])
    }

    @Test func aBitFlipInAMiddleSegmentIsRefused() throws {
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
        let damage = JournalDamage.checksumMismatch(stored: stored.checksum, computed: computed)
        try Self.expectRefused(temporary.stream(), .corruptSegment(path: paths[2], offset: 32 + 57, damage: damage),
                               Self.loss(temporary.stream(), paths[2...], offset: 32 + 57, damage: damage, lastIntactLSN: 5,
                                         bytesLost: 57 + 146 * 2, after: 7 ... 10))
        // Reading from after the damaged segment still works (e.g. a snapshot covers it).
        #expect(try Journal.readAll(temporary.stream(), from: 7).map(\.lsn) == [7, 8, 9, 10])
    }

    @Test func aTruncatedMiddleSegmentIsRefused() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try Self.makeJournal(temporary.stream())
        let bytes = try Journal.fileBytes(paths[1])
        try Journal.writeFile(paths[1], Array(bytes.dropLast(10)))
        let damage = JournalDamage.truncatedPayload(payloadBytes: 40, bytesPresent: 30)
        try Self.expectRefused(temporary.stream(), .corruptSegment(path: paths[1], offset: 32 + 57, damage: damage),
                               Self.loss(temporary.stream(), paths[1...], offset: 32 + 57, damage: damage, lastIntactLSN: 3,
                                         bytesLost: 47 + 146 * 3, after: 5 ... 10))
    }

    @Test func aDamagedMiddleSegmentHeaderIsRefused() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try Self.makeJournal(temporary.stream())
        var bytes = try Journal.fileBytes(paths[3])
        bytes[17] ^= 1  // first LSN field
        try Journal.writeFile(paths[3], bytes)
        let damage = JournalDamage.badSegmentHeader(reason: "header checksum mismatch")
        try Self.expectRefused(temporary.stream(), .corruptSegment(path: paths[3], offset: 0, damage: damage),
                               Self.loss(temporary.stream(), paths[3...], offset: 0, damage: damage, lastIntactLSN: 6,
                                         bytesLost: 146 * 2, after: 7 ... 10))
    }

    @Test func aMissingMiddleSegmentIsAGapAndRefused() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try Self.makeJournal(temporary.stream())
        try FileManager.default.removeItem(atPath: paths[2])
        try Self.expectRefused(temporary.stream(), .lsnGap(path: paths[3], expectedLSN: 5, foundLSN: 7),
                               Self.loss(temporary.stream(), paths[3...], offset: 0, damage: .segmentGap(expected: 5, found: 7),
                                         lastIntactLSN: 4, bytesLost: 146 * 2, after: 7 ... 10))
    }
}
