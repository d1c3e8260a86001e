@testable import ATPJournal
import Foundation
import Testing

/// Damage a crash leaves by itself (a torn or checksum-failing last record, a zero-filled tail, a
/// torn header of the last segment) is cut and reported with its cause under either policy: it
/// holds nothing that was acknowledged in `.sync`. Random bytes after a torn record are not taken
/// for records.
@Suite struct CrashDamageTests {
    static let policies: [JournalDamagePolicy] = [.refuse, .acceptLoss]

    /// 3 records of 57 bytes in one segment; returns its path and its bytes.
    static func makeJournal(_ directory: String) throws -> (path: String, bytes: [UInt8]) {
        let stream = try JournalStream.open(directory: directory, streamIndex: 0)
        Journal.append(stream, count: 3, payloadBytes: 40)
        try stream.close()
        let path = try Journal.segmentPaths(directory)[0]
        return (path, try Journal.fileBytes(path))
    }

    /// Writes `damaged` over the segment, reopens with `policy`, checks the cut and the preserved
    /// copy, and returns the repair.
    static func reopen(_ directory: String, _ path: String, damaged: [UInt8], cutAt offset: Int,
                       policy: JournalDamagePolicy, sourceLocation: SourceLocation = #_sourceLocation) throws -> JournalTailRepair? {
        try Journal.writeFile(path, damaged)
        let stream = try JournalStream.open(directory: directory, streamIndex: 0, damagePolicy: policy)
        try stream.close()
        #expect(stream.recovery.acceptedLoss == nil, "nothing acknowledged was lost", sourceLocation: sourceLocation)
        let repair = stream.recovery.tailRepair
        #expect(repair?.offset == Int64(offset), sourceLocation: sourceLocation)
        #expect(repair?.bytesCut == Int64(damaged.count - offset), sourceLocation: sourceLocation)
        if let repair {
            #expect(try Journal.fileBytes(repair.preservedPath) == Array(damaged[offset...]), "kept",
                    sourceLocation: sourceLocation)
        }
        return repair
    }

    @Test(arguments: policies)
    func aTornLastRecordIsCut(policy: JournalDamagePolicy) throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let (path, bytes) = try Self.makeJournal(temporary.stream())
        let repair = try Self.reopen(temporary.stream(), path, damaged: Array(bytes.dropLast(9)), cutAt: bytes.count - 57,
                                     policy: policy)
        #expect(repair?.cause == .tornRecord)
        #expect(repair?.damage == .truncatedPayload(payloadBytes: 40, bytesPresent: 31))
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1, 2])
    }

    @Test(arguments: policies)
    func aLastRecordFailingItsChecksumToTheEndOfTheFileIsCut(policy: JournalDamagePolicy) throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let (path, bytes) = try Self.makeJournal(temporary.stream())
        var damaged = bytes
        damaged[bytes.count - 10] ^= 0x40
        let repair = try Self.reopen(temporary.stream(), path, damaged: damaged, cutAt: bytes.count - 57, policy: policy)
        #expect(repair?.cause == .tornRecord)
        if case .checksumMismatch = repair?.damage {} else { Issue.record("damage \(String(describing: repair?.damage))") }
    }

    @Test(arguments: policies)
    func aZeroFilledTailIsCut(policy: JournalDamagePolicy) throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let (path, bytes) = try Self.makeJournal(temporary.stream())
        let repair = try Self.reopen(temporary.stream(), path, damaged: bytes + [UInt8](repeating: 0, count: 8192),
                                     cutAt: bytes.count, policy: policy)
        #expect(repair?.cause == .zeroFilledTail)
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1, 2, 3])
    }

    @Test(arguments: policies)
    func aTornOrZeroHeaderOfTheLastSegmentIsSetAside(policy: JournalDamagePolicy) throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let (path, _) = try Self.makeJournal(temporary.stream())
        let header = SegmentHeader(streamIndex: 0, firstLSN: 4).encoded()
        let next = temporary.stream() + "/" + JournalSegment.fileName(firstLSN: 4)
        for (round, damaged) in [Array(header.prefix(20)), [], [UInt8](repeating: 0, count: 32 + 100)].enumerated() {
            let repair = try Self.reopen(temporary.stream(), next, damaged: damaged, cutAt: 0, policy: policy)
            #expect(repair?.cause == .tornSegmentHeader, "round \(round)")
            #expect(repair?.preservedPath == next + ".damaged" + (round == 0 ? "" : ".\(round)"))
            #expect(!FileManager.default.fileExists(atPath: next))
        }
        #expect(try Journal.segmentPaths(temporary.stream()) == [path])
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1, 2, 3])
    }

    /// 64 KiB of random bytes after a torn record: the scan forward finds no record in them.
    @Test func randomBytesAfterATornRecordAreNotTakenForRecords() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let (path, bytes) = try Self.makeJournal(temporary.stream())
        var generator = SystemRandomNumberGenerator()
        let noise = (0 ..< 65536).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        let repair = try Self.reopen(temporary.stream(), path, damaged: Array(bytes.dropLast(30)) + noise,
                                     cutAt: bytes.count - 57, policy: .refuse)
        #expect(repair?.cause == .tornRecord)
    }
}
