@testable import ATPJournal
import Foundation
import Testing

/// Damage that would lose records, which a crash alone does not leave: refused by default with a
/// report of where it is and what would be lost, changing nothing; with `.acceptLoss` the damaged
/// bytes and every later segment are set aside (never deleted), the stream is cut after the last
/// intact record and the loss is reported.
@Suite struct LossDamageTests {
    /// One segment of `count` 57-byte records (LSN 1...count); returns its path.
    static func makeOneSegment(_ directory: String, count: Int = 5) throws -> String {
        let stream = try JournalStream.open(directory: directory, streamIndex: 0)
        Journal.append(stream, count: count, payloadBytes: 40)
        try stream.close()
        return try Journal.segmentPaths(directory)[0]
    }

    /// Flips `bit` of byte `offset` of `path`; returns the bytes before the flip.
    @discardableResult
    static func flip(_ path: String, at offset: Int, bit: Int = 0) throws -> [UInt8] {
        let original = try Journal.fileBytes(path)
        var bytes = original
        bytes[offset] ^= UInt8(1 << bit)
        try Journal.writeFile(path, bytes)
        return original
    }

    /// Opens with `.refuse`, expecting the refusal; checks that nothing changed; returns the report.
    static func refusal(_ directory: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> JournalLossReport? {
        let before = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        let bytesBefore = try Journal.segmentPaths(directory).map(Journal.fileBytes)
        defer {
            #expect(try! FileManager.default.contentsOfDirectory(atPath: directory).sorted() == before,
                    "nothing set aside", sourceLocation: sourceLocation)
            #expect(try! Journal.segmentPaths(directory).map(Journal.fileBytes) == bytesBefore, "nothing cut",
                    sourceLocation: sourceLocation)
        }
        do {
            let stream = try JournalStream.open(directory: directory, streamIndex: 0)
            try stream.close()
            Issue.record("the damaged stream opened", sourceLocation: sourceLocation)
            return nil
        } catch {
            guard case .damageWouldLoseRecords(let report) = error else {
                Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
                return nil
            }
            return report
        }
    }

    @Test func aBitFlipInTheHeaderOfTheOnlySegmentIsRefusedThenSetAsideWhenAccepted() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = try Self.makeOneSegment(temporary.stream())
        let original = try Self.flip(path, at: 13)  // stream index field: only the CRC notices

        let report = try #require(try Self.refusal(temporary.stream()))
        #expect(report.segmentPath == path && report.offset == 0 && report.streamIndex == 0)
        #expect(report.damage == .badSegmentHeader(reason: "header checksum mismatch"))
        #expect(report.lastIntactLSN == 0)
        #expect(report.bytesLost == Int64(original.count))
        #expect(report.recordsAfterDamage == 5 && report.lsnRangeAfterDamage == 1 ... 5)
        #expect(report.filesAffected == [path] && report.preservedPaths.isEmpty)
        let message = JournalError.damageWouldLoseRecords(report).description
        for part in [path, "byte 0", "header checksum mismatch", "\(original.count) bytes", "5 records still verify (LSN 1...5)",
                     "nothing was changed", "acceptLoss"] {
            #expect(message.contains(part), "\(message)")
        }

        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, damagePolicy: .acceptLoss)
        let accepted = try #require(stream.recovery.acceptedLoss)
        #expect(stream.recovery.tailRepair == nil)
        #expect(accepted.preservedPaths == [path + ".damaged"])
        #expect(accepted.description.contains("lost \(original.count) bytes") && accepted.description.contains(path + ".damaged"))
        #expect(stream.recovery.nextLSN == 1 && stream.recovery.recordCount == 0)
        #expect(stream.append(kind: 7, payload: [1, 2, 3]) == .appended(lsn: 1))
        try stream.close()
        var damaged = original
        damaged[13] ^= 1
        #expect(try Journal.fileBytes(path + ".damaged") == damaged, "the whole file is kept, as it was")
        #expect(try Journal.readAll(temporary.stream()).map(\.payload) == [[1, 2, 3]])
    }

    @Test func aDamagedHeaderOfAnEarlierSegmentIsRefusedThenSetAsideWithEveryLaterSegment() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try CorruptSegmentTests.makeJournal(temporary.stream())  // 5 segments of 2 records
        try Self.flip(paths[1], at: 0, bit: 3)  // the magic

        let report = try #require(try Self.refusal(temporary.stream()))
        #expect(report.segmentPath == paths[1] && report.offset == 0 && report.lastIntactLSN == 2)
        #expect(report.filesAffected == Array(paths[1...]) && report.bytesLost == 146 * 4)
        #expect(report.recordsAfterDamage == 8 && report.lsnRangeAfterDamage == 3 ... 10)

        var configuration = JournalConfiguration()
        configuration.segmentBytesMax = 200
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, configuration: configuration,
                                            damagePolicy: .acceptLoss)
        let accepted = try #require(stream.recovery.acceptedLoss)
        #expect(accepted.preservedPaths == paths[1...].map { $0 + ".damaged" })
        #expect(stream.recovery.segments.map(\.path) == [paths[0]])
        #expect(stream.recovery.nextLSN == 3)
        #expect(stream.append(kind: 7, payload: [9]) == .appended(lsn: 3))
        try stream.close()
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1, 2, 3])
        for path in paths[1...] { #expect(FileManager.default.fileExists(atPath: path + ".damaged")) }
    }

    @Test func aChecksumMismatchWithValidRecordsAfterItIsRefusedThenCutWhenAccepted() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = try Self.makeOneSegment(temporary.stream())
        let secondRecord = 32 + 57
        let original = try Self.flip(path, at: secondRecord + 17 + 20, bit: 5)  // payload of LSN 2

        let report = try #require(try Self.refusal(temporary.stream()))
        #expect(report.offset == Int64(secondRecord) && report.lastIntactLSN == 1)
        guard case .checksumMismatch = report.damage else { throw TestFailure("damage \(report.damage)") }
        #expect(report.bytesLost == Int64(original.count - secondRecord))
        #expect(report.recordsAfterDamage == 3 && report.lsnRangeAfterDamage == 3 ... 5)

        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, damagePolicy: .acceptLoss)
        let accepted = try #require(stream.recovery.acceptedLoss)
        #expect(stream.recovery.nextLSN == 2 && stream.recovery.recordCount == 1)
        try stream.close()
        #expect(try Journal.fileBytes(path) == Array(original[..<secondRecord]), "cut before the damaged record")
        var damagedTail = Array(original[secondRecord...])
        damagedTail[17 + 20] ^= 1 << 5
        #expect(try Journal.fileBytes(accepted.preservedPaths[0]) == damagedTail, "the cut bytes are kept")
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1])
    }

    /// A flipped length field that points past the end looks like a torn last record; the scan
    /// forward finds the records after it.
    @Test func aLengthPointingPastTheEndWithValidRecordsAfterItIsRefused() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let path = try Self.makeOneSegment(temporary.stream())
        try Self.flip(path, at: 32 + 57 * 2 + 2, bit: 0)  // length of LSN 3: 40 + 65536

        let report = try #require(try Self.refusal(temporary.stream()))
        #expect(report.damage == .truncatedPayload(payloadBytes: 40 + 65536, bytesPresent: 57 * 3 - 17))
        #expect(report.lastIntactLSN == 2 && report.recordsAfterDamage == 2 && report.lsnRangeAfterDamage == 4 ... 5)
    }

    @Test func damageInAnEarlierSegmentIsCutThereAndTheLaterSegmentsSetAsideWhenAccepted() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try CorruptSegmentTests.makeJournal(temporary.stream())
        let original = try Self.flip(paths[2], at: 32 + 57 + 30)  // payload of LSN 6
        var configuration = JournalConfiguration()
        configuration.segmentBytesMax = 200
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, configuration: configuration,
                                            damagePolicy: .acceptLoss)
        let accepted = try #require(stream.recovery.acceptedLoss)
        #expect(accepted.segmentPath == paths[2] && accepted.offset == 32 + 57)
        #expect(accepted.recordsAfterDamage == 4 && accepted.lsnRangeAfterDamage == 7 ... 10)
        #expect(accepted.preservedPaths == [paths[2] + ".damaged", paths[3] + ".damaged", paths[4] + ".damaged"])
        #expect(stream.recovery.nextLSN == 6)
        Journal.append(stream, count: 3, payloadBytes: 40)
        try stream.close()
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == Array(1 ... 8))
        #expect(try Journal.fileBytes(paths[2] + ".damaged").count == original.count - (32 + 57))
    }

    @Test func aGapIsRefusedThenTheSegmentsAfterItSetAsideWhenAccepted() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let paths = try CorruptSegmentTests.makeJournal(temporary.stream())
        try FileManager.default.removeItem(atPath: paths[1])
        let report = try #require(try Self.refusal(temporary.stream()))
        #expect(report.damage == .segmentGap(expected: 3, found: 5) && report.segmentPath == paths[2])
        #expect(report.description.contains("records 3..<5 are in no segment"))
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, damagePolicy: .acceptLoss)
        #expect(stream.recovery.acceptedLoss?.preservedPaths == paths[2...].map { $0 + ".damaged" })
        #expect(stream.recovery.nextLSN == 3)
        try stream.close()
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1, 2])
    }

    /// A segment of another stream is a misplaced file, not damage: even `.acceptLoss` refuses it.
    @Test func aForeignSegmentIsRefusedUnderEitherPolicy() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 3)
        Journal.append(stream, count: 2)
        try stream.close()
        let path = try Journal.segmentPaths(temporary.stream())[0]
        for policy in [JournalDamagePolicy.refuse, .acceptLoss] {
            #expect(throws: JournalError.wrongStream(path: path, expectedStreamIndex: 0, foundStreamIndex: 3)) {
                _ = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, damagePolicy: policy)
            }
        }
        #expect(try Journal.segmentPaths(temporary.stream()) == [path])
    }
}
