#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads one segment file front to back, verifying its header and then each record's length,
/// checksum and LSN. Reads through a buffer that grows only to fit the largest record, and never
/// beyond the file's size, so a corrupt length field cannot make it allocate more than the file.
///
/// Owns an open read-only descriptor, closed by `deinit`.
final class SegmentScanner {
    /// One step of the scan.
    enum Step {
        /// A verified record; `payload` is valid until the next call on the scanner.
        case record(lsn: UInt64, kind: UInt8, payload: UnsafeRawBufferPointer)
        /// The file ends exactly after the last record.
        case end
        /// The record (or header) starting at `offset` is damaged; the scan cannot go on.
        case damaged(offset: Int64, damage: JournalDamage)
    }

    static let initialBufferBytes = 256 << 10

    let path: String
    /// The file's size when the scanner opened it.
    let fileSize: Int64
    /// Where the next record starts.
    private(set) var offset: Int64 = 0
    private let fileOperations: JournalFileOperations
    private let fileDescriptor: Int32
    /// Bytes `bufferStart ..< bufferStart + bufferCount` of the file, in `buffer`.
    private var buffer: UnsafeMutableRawBufferPointer
    private var bufferStart: Int64 = 0
    private var bufferCount = 0

    init(path: String, fileOperations: JournalFileOperations) throws(JournalError) {
        self.path = path
        self.fileOperations = fileOperations
        let descriptor: Int32
        do {
            descriptor = try fileOperations.open(path, O_RDONLY | O_CLOEXEC, 0)
        } catch {
            throw .systemCallFailed(operation: "open", path: path, errno: error.code)
        }
        do {
            fileSize = try fileOperations.fileSize(descriptor)
        } catch {
            try? fileOperations.close(descriptor)
            throw .systemCallFailed(operation: "fstat", path: path, errno: error.code)
        }
        fileDescriptor = descriptor
        buffer = .allocate(byteCount: Self.initialBufferBytes, alignment: 16)
    }

    deinit {
        try? fileOperations.close(fileDescriptor)
        buffer.deallocate()
    }

    /// Reads and verifies the segment header; on success the scan continues after it.
    func readHeader() throws(JournalError) -> SegmentHeader.Decoded {
        let bytes = try window(at: 0, count: SegmentHeader.bytes)
        let decoded = SegmentHeader.decode(bytes)
        if case .valid = decoded { offset = Int64(SegmentHeader.bytes) }
        return decoded
    }

    /// Verifies the record at the current offset, which must carry `expectedLSN`, and moves past it.
    func next(expectedLSN: UInt64) throws(JournalError) -> Step {
        precondition(offset >= Int64(SegmentHeader.bytes), "readHeader() comes first")
        let remaining = fileSize - offset
        if remaining == 0 { return .end }
        let headerBytes = try window(at: offset, count: RecordHeader.bytes)
        guard headerBytes.count == RecordHeader.bytes else {
            return .damaged(offset: offset, damage: .truncatedRecordHeader(bytesPresent: headerBytes.count))
        }
        let header = RecordHeader.decode(headerBytes)
        let payloadPresent = remaining - Int64(RecordHeader.bytes)
        guard Int64(header.payloadBytes) <= payloadPresent else {
            return .damaged(offset: offset, damage: .truncatedPayload(payloadBytes: header.payloadBytes,
                                                                       bytesPresent: Int(payloadPresent)))
        }
        let record = try window(at: offset, count: RecordHeader.bytes + header.payloadBytes)
        guard record.count == RecordHeader.bytes + header.payloadBytes else {
            // The file shrank while being read.
            return .damaged(offset: offset, damage: .truncatedPayload(payloadBytes: header.payloadBytes,
                                                                       bytesPresent: record.count - RecordHeader.bytes))
        }
        let payload = UnsafeRawBufferPointer(rebasing: record[RecordHeader.bytes...])
        let computed = RecordHeader.checksum(lsn: header.lsn, kind: header.kind, payload: payload)
        guard computed == header.checksum else {
            return .damaged(offset: offset, damage: .checksumMismatch(stored: header.checksum, computed: computed))
        }
        guard header.lsn == expectedLSN else {
            return .damaged(offset: offset, damage: .unexpectedLSN(expected: expectedLSN, found: header.lsn))
        }
        offset += Int64(record.count)
        return .record(lsn: header.lsn, kind: header.kind, payload: payload)
    }

    /// The LSN and size of a record that verifies and starts at `position`, when its LSN is in
    /// `lsns`; nil otherwise. Peeks only: the scan's own offset does not move. Recovery calls it at
    /// every byte after damage to find records that survive it.
    ///
    /// Cost: the LSN is checked before anything else, so a position that does not hold a
    /// plausible record costs a header decode; one that does costs a CRC32C pass over its payload.
    func verifiedRecord(at position: Int64, lsns: ClosedRange<UInt64>) throws(JournalError) -> (lsn: UInt64, bytes: Int64)? {
        precondition(position >= 0, "negative offset")
        let headerBytes = try window(at: position, count: RecordHeader.bytes)
        guard headerBytes.count == RecordHeader.bytes else { return nil }
        let header = RecordHeader.decode(headerBytes)
        guard lsns.contains(header.lsn),
              Int64(header.payloadBytes) <= fileSize - position - Int64(RecordHeader.bytes) else { return nil }
        let record = try window(at: position, count: RecordHeader.bytes + header.payloadBytes)
        guard record.count == RecordHeader.bytes + header.payloadBytes else { return nil }
        let payload = UnsafeRawBufferPointer(rebasing: record[RecordHeader.bytes...])
        guard RecordHeader.checksum(lsn: header.lsn, kind: header.kind, payload: payload) == header.checksum else {
            return nil
        }
        return (header.lsn, Int64(record.count))
    }

    /// The first position from `start` on where a record header would hold an LSN in `lsns` (the 8
    /// bytes at +8), nil when there is none before the end of the file. Only such a position can
    /// start a record that verifies; recovery checks the rest with `verifiedRecord(at:lsns:)`.
    ///
    /// Cost: one 8-byte load and compare per byte, reading the file in `initialBufferBytes` chunks.
    func firstPosition(from start: Int64, lsnIn lsns: ClosedRange<UInt64>) throws(JournalError) -> Int64? {
        let low = lsns.lowerBound
        let high = lsns.upperBound
        // The common case (records back to back after a found one) without reading a whole chunk.
        let head = try window(at: start, count: RecordHeader.bytes)
        guard head.count == RecordHeader.bytes else { return nil }
        let first = UInt64(littleEndian: head.loadUnaligned(fromByteOffset: RecordHeader.lsnOffset, as: UInt64.self))
        if first >= low && first <= high { return start }
        var chunkStart = start + 1
        while chunkStart + Int64(RecordHeader.bytes) <= fileSize {
            let chunk = try window(at: chunkStart, count: Int(min(Int64(Self.initialBufferBytes), fileSize - chunkStart)))
            guard chunk.count >= RecordHeader.bytes else { return nil }  // the file shrank while being read
            for index in 0 ... chunk.count - RecordHeader.bytes {
                let lsn = UInt64(littleEndian: chunk.loadUnaligned(fromByteOffset: index + RecordHeader.lsnOffset,
                                                                   as: UInt64.self))
                if lsn >= low && lsn <= high { return chunkStart + Int64(index) }
            }
            chunkStart += Int64(chunk.count - RecordHeader.bytes + 1)
        }
        return nil
    }

    /// Whether every byte from `position` to the end of the file is zero. Cost: reads them once.
    func isZero(from position: Int64) throws(JournalError) -> Bool {
        var start = position
        while start < fileSize {
            let chunk = try window(at: start, count: Int(min(Int64(Self.initialBufferBytes), fileSize - start)))
            if chunk.isEmpty { return true }  // the file shrank while being read
            if chunk.contains(where: { $0 != 0 }) { return false }
            start += Int64(chunk.count)
        }
        return true
    }

    /// Bytes `start ..< start + count` of the file, or fewer when the file ends first. Valid until
    /// the next call.
    private func window(at start: Int64, count: Int) throws(JournalError) -> UnsafeRawBufferPointer {
        precondition(start >= 0 && count >= 0, "negative read")
        let wanted = Int(min(Int64(count), max(0, fileSize - start)))
        if start >= bufferStart && start + Int64(wanted) <= bufferStart + Int64(bufferCount) {
            let from = Int(start - bufferStart)
            return UnsafeRawBufferPointer(rebasing: buffer[from ..< from + wanted])
        }
        if wanted > buffer.count {
            let grownBytes = max(wanted, buffer.count * 2)
            buffer.deallocate()
            buffer = .allocate(byteCount: grownBytes, alignment: 16)
        }
        bufferStart = start
        bufferCount = 0
        let fill = Int(min(Int64(buffer.count), fileSize - start))
        while bufferCount < fill {
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[bufferCount ..< fill])
            let read: Int
            do {
                read = try fileOperations.read(fileDescriptor, target, start + Int64(bufferCount))
            } catch {
                throw .systemCallFailed(operation: "read", path: path, errno: error.code)
            }
            if read == 0 { break }
            bufferCount += read
        }
        return UnsafeRawBufferPointer(rebasing: buffer[0 ..< min(wanted, bufferCount)])
    }
}
