#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One record read back from a journal.
public struct JournalRecord: Sendable, Equatable {
    /// The record's log sequence number (dense, from 1, per stream).
    public var lsn: UInt64
    /// The caller's record kind, stored as given.
    public var kind: UInt8
    /// The caller's payload, stored as given.
    public var payload: [UInt8]

    /// A record with these fields.
    public init(lsn: UInt64, kind: UInt8, payload: [UInt8]) {
        self.lsn = lsn
        self.kind = kind
        self.payload = payload
    }
}

/// Where a scan of the last segment stopped at damage (a torn or corrupt tail).
public struct JournalTailDamage: Sendable, Equatable {
    /// The last segment.
    public var segment: JournalSegment
    /// Where the damaged record (or the segment header, at 0) starts; everything before is intact.
    public var offset: Int64
    /// Bytes from `offset` to the end of the file.
    public var bytesAfter: Int64
    /// What is wrong there.
    public var damage: JournalDamage
}

/// The first damage a recovery scan met, in any segment (internal: `JournalRecovery` decides
/// what it means).
struct JournalDamagePoint: Equatable {
    /// Index of the damaged segment in `JournalReader.segments`.
    var segmentIndex: Int
    /// Where the damaged record starts, or 0 for the segment's header or a gap before it.
    var offset: Int64
    var damage: JournalDamage
}

/// Reads a stream's segments in LSN order, verifying every header and record.
///
/// Read-only: a torn or corrupt tail in the last segment ends the scan and is reported in
/// `JournalCursor.tailDamage`; `JournalRecovery` (run by `JournalStream.open`) is what cuts it.
/// Damage in any other segment, or a gap between segments, throws. Read a directory while no
/// stream appends to it, or only up to the stream's `durableLSN`.
public struct JournalReader: Sendable {
    /// The stream's directory.
    public let directory: String
    /// The stream the segments must belong to.
    public let streamIndex: Int
    /// The segment files found, oldest first.
    public let segments: [JournalSegment]
    let fileOperations: JournalFileOperations

    /// Lists the segments of the stream in `directory`. Cost: one directory listing; no file is read
    /// yet. Throws `.systemCallFailed` when the directory cannot be listed.
    public static func open(
        directory: String, streamIndex: Int, fileOperations: JournalFileOperations = .system
    ) throws(JournalError) -> JournalReader {
        let names: [String]
        do {
            names = try fileOperations.listDirectory(directory)
        } catch {
            throw .systemCallFailed(operation: "opendir", path: directory, errno: error.code)
        }
        let segments = names.compactMap { name in
            JournalSegment.firstLSN(fileName: name).map { JournalSegment(firstLSN: $0, path: directory + "/" + name) }
        }.sorted()
        return JournalReader(directory: directory, streamIndex: streamIndex, segments: segments,
                             fileOperations: fileOperations)
    }

    /// A cursor over the records from `lsn` on (LSN 0 reads from the oldest record kept).
    /// Throws `.recordsUnavailable` when `lsn` is older than the oldest segment. Cost: nothing is
    /// read until `next()`; records before `lsn` in the first segment read are verified and skipped.
    public func records(from lsn: UInt64 = 0) throws(JournalError) -> JournalCursor {
        guard let oldest = segments.first else { return JournalCursor(reader: self, from: lsn, segmentIndex: 0) }
        let from = lsn == 0 ? oldest.firstLSN : lsn
        guard from >= oldest.firstLSN else {
            throw .recordsUnavailable(requestedLSN: from, firstAvailableLSN: oldest.firstLSN)
        }
        let index = segments.lastIndex { $0.firstLSN <= from } ?? 0
        return JournalCursor(reader: self, from: from, segmentIndex: index)
    }
}

/// Yields a stream's records in LSN order. See `JournalReader`.
public final class JournalCursor {
    /// Where the scan of the last segment stopped at damage, once `next()` has returned nil.
    public private(set) var tailDamage: JournalTailDamage?
    /// The LSN the next record carries: after the end, the LSN a new record would get.
    public private(set) var nextLSN: UInt64
    /// The LSN of the first record the cursor returns.
    public let fromLSN: UInt64

    /// Where the scan stopped at damage; with `stopsAtAnyDamage`, in any segment.
    private(set) var damagePoint: JournalDamagePoint?

    private let reader: JournalReader
    private var segmentIndex: Int
    private var scanner: SegmentScanner?
    private var finished = false
    /// Recovery's mode: damage anywhere (a gap, a bad header, a bad record in any segment) ends
    /// the scan quietly in `damagePoint` instead of throwing.
    private let stopsAtAnyDamage: Bool

    init(reader: JournalReader, from: UInt64, segmentIndex: Int, stopsAtAnyDamage: Bool = false) {
        self.reader = reader
        self.segmentIndex = segmentIndex
        self.stopsAtAnyDamage = stopsAtAnyDamage
        fromLSN = from
        nextLSN = reader.segments.isEmpty ? 1 : reader.segments[segmentIndex].firstLSN
    }

    /// The next record, or nil at the end (then check `tailDamage`). Cost: one buffered read per
    /// few hundred KiB, one CRC32C pass and one payload copy per record. Throws
    /// `.corruptSegment`, `.lsnGap`, `.wrongStream`, `.unsupportedFormatVersion` or a read failure.
    public func next() throws(JournalError) -> JournalRecord? {
        var record: JournalRecord?
        while record == nil, try advance(body: { lsn, kind, payload in
            if lsn >= fromLSN { record = JournalRecord(lsn: lsn, kind: kind, payload: Array(payload)) }
        }) {}
        return record
    }

    /// Verifies the next record and hands it to `body` (payload valid only during the call);
    /// false at the end.
    func advance(body: (UInt64, UInt8, UnsafeRawBufferPointer) -> Void) throws(JournalError) -> Bool {
        while !finished {
            guard let scanner = try currentScanner() else { return false }
            switch try scanner.next(expectedLSN: nextLSN) {
            case .record(let lsn, let kind, let payload):
                nextLSN = lsn + 1
                body(lsn, kind, payload)
                return true
            case .end:
                self.scanner = nil
                segmentIndex += 1
            case .damaged(let offset, let damage):
                try stop(at: offset, damage: damage, fileSize: scanner.fileSize)
            }
        }
        return false
    }

    /// The scanner of the current segment, opened and its header verified; nil past the last.
    private func currentScanner() throws(JournalError) -> SegmentScanner? {
        if let scanner { return scanner }
        guard segmentIndex < reader.segments.count else {
            finished = true
            return nil
        }
        let segment = reader.segments[segmentIndex]
        guard segment.firstLSN == nextLSN else {
            guard stopsAtAnyDamage else {
                throw .lsnGap(path: segment.path, expectedLSN: nextLSN, foundLSN: segment.firstLSN)
            }
            try stop(at: 0, damage: .segmentGap(expected: nextLSN, found: segment.firstLSN), fileSize: nil)
            return nil
        }
        let opened = try SegmentScanner(path: segment.path, fileOperations: reader.fileOperations)
        switch try opened.readHeader() {
        case .valid(let header):
            guard Int(header.streamIndex) == reader.streamIndex else {
                throw .wrongStream(path: segment.path, expectedStreamIndex: reader.streamIndex,
                                   foundStreamIndex: Int(header.streamIndex))
            }
            guard header.firstLSN == segment.firstLSN else {
                let damage = JournalDamage.badSegmentHeader(
                    reason: "header says first LSN \(header.firstLSN), the file name says \(segment.firstLSN)")
                guard stopsAtAnyDamage else { throw .corruptSegment(path: segment.path, offset: 0, damage: damage) }
                try stop(at: 0, damage: damage, fileSize: opened.fileSize)
                return nil
            }
            scanner = opened
            return opened
        case .unsupportedVersion(let version):
            throw .unsupportedFormatVersion(path: segment.path, version: version)
        case .damaged(let damage):
            try stop(at: 0, damage: damage, fileSize: opened.fileSize)
            return nil
        }
    }

    /// Damage ends the scan quietly in the last segment (a tail to cut) and throws in any other,
    /// unless the cursor `stopsAtAnyDamage`.
    private func stop(at offset: Int64, damage: JournalDamage, fileSize: Int64?) throws(JournalError) {
        let segment = reader.segments[segmentIndex]
        let isLast = segmentIndex == reader.segments.count - 1
        guard isLast || stopsAtAnyDamage else {
            throw .corruptSegment(path: segment.path, offset: offset, damage: damage)
        }
        damagePoint = JournalDamagePoint(segmentIndex: segmentIndex, offset: offset, damage: damage)
        if isLast, let fileSize {
            tailDamage = JournalTailDamage(segment: segment, offset: offset, bytesAfter: fileSize - offset, damage: damage)
        }
        scanner = nil
        finished = true
    }
}
