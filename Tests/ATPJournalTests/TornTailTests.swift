@testable import ATPJournal
import Foundation
import Testing

/// A torn or corrupt tail of the last segment is detected, cut, kept aside and reported; the
/// records before it stay intact and appending resumes right after them.
@Suite struct TornTailTests {
    static let lastPayloadBytes = 40
    static let lastRecordBytes = 17 + lastPayloadBytes

    /// A journal of 3 records; returns the segment path and where record 3 starts.
    static func makeJournal(_ directory: String) throws -> (path: String, lastRecordOffset: Int) {
        let stream = try JournalStream.open(directory: directory, streamIndex: 0)
        Journal.append(stream, count: 2, payloadBytes: 30)
        Journal.append(stream, count: 1, payloadBytes: lastPayloadBytes)
        try stream.close()
        let path = try Journal.segmentPaths(directory)[0]
        let size = try Journal.fileBytes(path).count
        return (path, size - lastRecordBytes)
    }

    /// Recovers a copy of `original` whose segment was changed by `damage`; checks what every
    /// damaged tail must give, and returns the repair.
    static func recoverDamagedCopy(
        of original: String, into copy: String, nextLSNAfterRepair: UInt64 = 3, damage: (inout [UInt8]) -> Void,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> JournalTailRepair? {
        try Journal.copyStream(from: original, to: copy)
        let path = try Journal.segmentPaths(copy)[0]
        var bytes = try Journal.fileBytes(path)
        damage(&bytes)
        try Journal.writeFile(path, bytes)

        // The read-only reader sees the damage and stops, changing nothing.
        let cursor = try JournalReader.open(directory: copy, streamIndex: 0).records()
        var seen: [UInt64] = []
        while let record = try cursor.next() { seen.append(record.lsn) }
        #expect(seen == [1, 2] || seen == [1, 2, 3], sourceLocation: sourceLocation)
        #expect(try Journal.fileBytes(path) == bytes, "the reader does not repair", sourceLocation: sourceLocation)

        let report = try JournalRecovery.recover(directory: copy, streamIndex: 0)
        #expect(report.lastLSN == report.nextLSN - 1, sourceLocation: sourceLocation)
        if let repair = report.tailRepair {
            #expect(cursor.tailDamage?.offset == repair.offset, sourceLocation: sourceLocation)
            #expect(report.nextLSN == nextLSNAfterRepair, sourceLocation: sourceLocation)
            #expect(try Journal.fileBytes(path) == Array(bytes[..<Int(repair.offset)]), "cut at the last good record",
                    sourceLocation: sourceLocation)
            #expect(try Journal.fileBytes(repair.preservedPath) == Array(bytes[Int(repair.offset)...]),
                    "the cut bytes are kept", sourceLocation: sourceLocation)
            #expect(repair.bytesCut == Int64(bytes.count) - repair.offset, sourceLocation: sourceLocation)
        }
        let records = try Journal.readAll(copy)
        #expect(Array(records.prefix(2).map(\.payload)) == [Journal.payload(lsn: 1, bytes: 30),
                                                            Journal.payload(lsn: 2, bytes: 30)],
                "earlier records intact", sourceLocation: sourceLocation)
        return report.tailRepair
    }

    @Test func aTailTornAtEveryByteOfTheLastRecordIsCutAndReported() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let (_, lastOffset) = try Self.makeJournal(temporary.stream())
        for kept in 0 ... Self.lastRecordBytes {
            let copy = temporary.path + "/torn-\(kept)"
            let repair = try Self.recoverDamagedCopy(of: temporary.stream(), into: copy) { bytes in
                bytes.removeLast(Self.lastRecordBytes - kept)
            }
            if kept == 0 || kept == Self.lastRecordBytes {
                #expect(repair == nil, "a clean end at \(kept) bytes needs no repair")
                #expect(try Journal.readAll(copy).count == (kept == 0 ? 2 : 3))
                continue
            }
            #expect(repair?.offset == Int64(lastOffset), "kept \(kept)")
            #expect(repair?.bytesCut == Int64(kept), "kept \(kept)")
            let expectedDamage: JournalDamage = kept < 17
                ? .truncatedRecordHeader(bytesPresent: kept)
                : .truncatedPayload(payloadBytes: Self.lastPayloadBytes, bytesPresent: kept - 17)
            #expect(repair?.damage == expectedDamage, "kept \(kept)")
        }
    }

    @Test func aBitFlipAnywhereInTheLastRecordIsCutAndReported() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let (_, lastOffset) = try Self.makeJournal(temporary.stream())
        for byte in 0 ..< Self.lastRecordBytes {
            let bit = byte % 8
            let copy = temporary.path + "/flip-\(byte)"
            let repair = try Self.recoverDamagedCopy(of: temporary.stream(), into: copy) { bytes in
                bytes[lastOffset + byte] ^= 1 << bit
            }
            #expect(repair?.offset == Int64(lastOffset), "byte \(byte) bit \(bit)")
            #expect(repair?.bytesCut == Int64(Self.lastRecordBytes), "byte \(byte)")
            switch repair?.damage {
            case .checksumMismatch:
                break
            case .truncatedPayload:
                #expect(byte < 4, "only the length field can announce a payload past the end")
            default:
                Issue.record("byte \(byte): unexpected damage \(String(describing: repair?.damage))")
            }
        }
    }

    @Test func anIntactRecordWithTheWrongLSNEndsTheScan() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        _ = try Self.makeJournal(temporary.stream())
        let copy = temporary.path + "/wrong-lsn"
        // A well-formed record claiming LSN 9 where 4 is due (e.g. a stale page after a crash).
        var record = [UInt8](repeating: 0, count: 17 + 5)
        let payload: [UInt8] = [1, 2, 3, 4, 5]
        let checksum = payload.withUnsafeBytes { RecordHeader.checksum(lsn: 9, kind: 7, payload: $0) }
        record.withUnsafeMutableBytes {
            RecordHeader.encode(payloadBytes: 5, checksum: checksum, lsn: 9, kind: 7, into: $0)
        }
        record.replaceSubrange(17..., with: payload)
        var appendedAt = 0
        let repair = try Self.recoverDamagedCopy(of: temporary.stream(), into: copy, nextLSNAfterRepair: 4) { bytes in
            appendedAt = bytes.count
            bytes += record
        }
        #expect(repair?.offset == Int64(appendedAt))
        #expect(repair?.damage == .unexpectedLSN(expected: 4, found: 9))
        #expect(try Journal.readAll(copy).map(\.lsn) == [1, 2, 3])
    }

    @Test func aTornSegmentHeaderSetsTheSegmentAsideAndKeepsTheLSN() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        var configuration = JournalConfiguration()
        configuration.segmentBytesMax = 200
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, configuration: configuration)
        Journal.append(stream, count: 5, payloadBytes: 40)  // segments 1-2, 3-4, 5
        try stream.close()
        let last = try Journal.segmentPaths(temporary.stream()).last!
        try Journal.writeFile(last, Array(try Journal.fileBytes(last).prefix(20)))  // crash while creating it

        let reopened = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, configuration: configuration)
        let repair = try #require(reopened.recovery.tailRepair)
        #expect(repair.offset == 0)
        #expect(repair.bytesCut == 20)
        #expect(repair.damage == .truncatedSegmentHeader(bytesPresent: 20))
        #expect(repair.preservedPath == last + ".damaged")
        #expect(reopened.recovery.nextLSN == 5)
        #expect(reopened.append(kind: 1, payload: [1]) == .appended(lsn: 5))
        try reopened.close()
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1, 2, 3, 4, 5])
        #expect(FileManager.default.fileExists(atPath: last + ".damaged"))
    }

    @Test func afterRepairAStreamAppendsAtTheNextLSNAndASecondRepairKeepsTheFirstCopy() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let (path, lastOffset) = try Self.makeJournal(temporary.stream())
        for round in 0 ..< 2 {
            var bytes = try Journal.fileBytes(path)
            bytes.removeLast(5)  // tear the last record
            try Journal.writeFile(path, bytes)
            let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
            let repair = try #require(stream.recovery.tailRepair)
            #expect(repair.offset == Int64(lastOffset))
            #expect(repair.preservedPath == path + (round == 0 ? ".damaged" : ".damaged.1"))
            #expect(stream.recovery.nextLSN == 3)
            #expect(stream.append(kind: 7, payload: Journal.payload(lsn: 3, bytes: Self.lastPayloadBytes))
                == .appended(lsn: 3))
            try stream.close()
            #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1, 2, 3])
        }
    }
}
