#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong in the journal. Each case says what failed and where; the
/// `description` also says what to do next.
public enum JournalError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed: `operation` (e.g. "write", "fdatasync") on `path` with `errno`.
    /// When the stream's own writing fails it enters the failed state: every record not yet durable
    /// fails, later appends are refused with this error. Reopen the stream (recovery cuts any torn
    /// tail) once the cause (full disk, I/O error, file size limit) is fixed.
    case systemCallFailed(operation: String, path: String, errno: Int32)
    /// A segment other than the last one holds a damaged record or header at `offset`. The reader
    /// does not skip it: the records from there on cannot be trusted or reached. (Recovery reports
    /// such damage as `damageWouldLoseRecords`.)
    case corruptSegment(path: String, offset: Int64, damage: JournalDamage)
    /// Recovery found damage that a crash alone does not leave and that would lose records if it
    /// were cut: a damaged segment header, a bad record with valid records after it, damage in a
    /// segment that is not the last, a gap between segments. Nothing was changed. The report says
    /// where, what, and what would be lost. Restore the files, or reopen with
    /// `JournalDamagePolicy.acceptLoss` (docs/DURABILITY.md, "Damaged journals").
    case damageWouldLoseRecords(JournalLossReport)
    /// The segment at `path` starts at `foundLSN` where `expectedLSN` was due: records are missing
    /// between two segments (a segment was deleted or renamed by hand).
    case lsnGap(path: String, expectedLSN: UInt64, foundLSN: UInt64)
    /// The segment at `path` belongs to stream `foundStreamIndex`, not `expectedStreamIndex`.
    case wrongStream(path: String, expectedStreamIndex: Int, foundStreamIndex: Int)
    /// The segment at `path` was written in a format `version` this build does not read.
    case unsupportedFormatVersion(path: String, version: UInt32)
    /// A read from `requestedLSN` was asked for, but the oldest record kept is `firstAvailableLSN`
    /// (older segments were deleted once a snapshot covered them).
    case recordsUnavailable(requestedLSN: UInt64, firstAvailableLSN: UInt64)
    /// An append carried `payloadBytes`, more than `JournalConfiguration.recordPayloadBytesMax`.
    case payloadTooLarge(payloadBytes: Int, payloadBytesMax: Int)
    /// Another journal stream (in this or another process) has the directory at `path` open.
    case directoryLocked(path: String)
    /// A configuration value is out of range.
    case invalidConfiguration(key: String, value: String, reason: String)
    /// The stream was closed: nothing more is appended.
    case closed

    /// The `errno` of a failed system call, else nil.
    public var errno: Int32? {
        if case .systemCallFailed(_, _, let errno) = self { return errno }
        return nil
    }

    /// One line: what failed, where, and what to do next.
    public var description: String {
        switch self {
        case .systemCallFailed(let operation, let path, let errno):
            return "journal \(operation) failed on \(path): \(JournalErrno(errno)); the stream refuses further "
                + "writes; fix the cause and reopen it (recovery cuts any torn tail)"
        case .corruptSegment(let path, let offset, let damage):
            return "journal segment \(path) is damaged at byte \(offset) (\(damage)) and is not the last segment; "
                + "restore it from a backup or recover from a snapshot that covers it"
        case .damageWouldLoseRecords(let report):
            return "\(report); nothing was changed: restore the damaged files from a backup, or open the stream with "
                + "JournalDamagePolicy.acceptLoss to set the damaged bytes aside (never deleted) and continue at LSN "
                + "\(report.lastIntactLSN + 1)"
        case .lsnGap(let path, let expectedLSN, let foundLSN):
            return "journal segment \(path) starts at LSN \(foundLSN) but LSN \(expectedLSN) was due: records "
                + "\(expectedLSN)..<\(foundLSN) are missing; restore the missing segment"
        case .wrongStream(let path, let expectedStreamIndex, let foundStreamIndex):
            return "journal segment \(path) belongs to stream \(foundStreamIndex), not \(expectedStreamIndex); "
                + "check the data directory layout"
        case .unsupportedFormatVersion(let path, let version):
            return "journal segment \(path) has format version \(version), this build reads version "
                + "\(SegmentHeader.formatVersion); use a matching build"
        case .recordsUnavailable(let requestedLSN, let firstAvailableLSN):
            return "journal records from LSN \(requestedLSN) were asked for but the oldest kept is "
                + "\(firstAvailableLSN); recover from a snapshot that covers LSN \(firstAvailableLSN - 1)"
        case .payloadTooLarge(let payloadBytes, let payloadBytesMax):
            return "journal record payload of \(payloadBytes) bytes exceeds recordPayloadBytesMax "
                + "(\(payloadBytesMax)); split it"
        case .directoryLocked(let path):
            return "journal directory \(path) is already open in another stream or process; close that one first"
        case .invalidConfiguration(let key, let value, let reason):
            return "journal configuration \(key) = \(value) refused: \(reason)"
        case .closed:
            return "journal stream is closed"
        }
    }
}

/// Why a segment header or record failed verification.
public enum JournalDamage: Sendable, Equatable, CustomStringConvertible {
    /// The file ends inside the segment header (`bytesPresent` of `SegmentHeader.bytes`).
    case truncatedSegmentHeader(bytesPresent: Int)
    /// The segment header's magic, checksum or first LSN is wrong.
    case badSegmentHeader(reason: String)
    /// The file ends inside a record header (`bytesPresent` of 17 bytes).
    case truncatedRecordHeader(bytesPresent: Int)
    /// The file ends inside a record's payload: `payloadBytes` announced, `bytesPresent` there.
    case truncatedPayload(payloadBytes: Int, bytesPresent: Int)
    /// The record's stored CRC32C does not match the one computed over its LSN, kind and payload.
    case checksumMismatch(stored: UInt32, computed: UInt32)
    /// The record is intact but carries `found` where LSN `expected` was due.
    case unexpectedLSN(expected: UInt64, found: UInt64)
    /// The segment starts at LSN `found` where `expected` was due: the records in between are in
    /// no segment (one was deleted or renamed by hand), or two segments overlap.
    case segmentGap(expected: UInt64, found: UInt64)

    /// A short phrase naming the damage.
    public var description: String {
        switch self {
        case .truncatedSegmentHeader(let bytesPresent):
            "segment header cut short: \(bytesPresent) of \(SegmentHeader.bytes) bytes"
        case .badSegmentHeader(let reason):
            "bad segment header: \(reason)"
        case .truncatedRecordHeader(let bytesPresent):
            "record header cut short: \(bytesPresent) of \(RecordHeader.bytes) bytes"
        case .truncatedPayload(let payloadBytes, let bytesPresent):
            "payload cut short: \(bytesPresent) of \(payloadBytes) bytes"
        case .checksumMismatch(let stored, let computed):
            "CRC32C mismatch: stored \(hex(stored)), computed \(hex(computed))"
        case .unexpectedLSN(let expected, let found):
            "LSN \(found) where \(expected) was due"
        case .segmentGap(let expected, let found) where found > expected:
            "the segment starts at LSN \(found) where \(expected) was due: records \(expected)..<\(found) are in no segment"
        case .segmentGap(let expected, let found):
            "the segment starts at LSN \(found) where \(expected) was due: it overlaps the segment before it"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

/// An `errno` value returned by a `JournalFileOperations` call; the journal turns it into a
/// `JournalError.systemCallFailed` naming the operation and path.
public struct JournalErrno: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `errno` value, e.g. `ENOSPC`.
    public var code: Int32

    /// Wraps `code`.
    public init(_ code: Int32) {
        self.code = code
    }

    /// The value of `errno` right now (after a failed call).
    public static var current: JournalErrno { JournalErrno(errno) }

    /// The symbolic name when known, the number and the system's message, e.g.
    /// "ENOSPC (28): No space left on device".
    public var description: String {
        let message = String(cString: strerror(code))
        if let name = Self.names[code] { return "\(name) (\(code)): \(message)" }
        return "errno \(code): \(message)"
    }

    private static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", EBADF: "EBADF", EAGAIN: "EAGAIN",
        ENOMEM: "ENOMEM", EACCES: "EACCES", EEXIST: "EEXIST", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR",
        EINVAL: "EINVAL", EMFILE: "EMFILE", ENFILE: "ENFILE", EFBIG: "EFBIG", ENOSPC: "ENOSPC",
        EROFS: "EROFS", EDQUOT: "EDQUOT", ENAMETOOLONG: "ENAMETOOLONG", ESTALE: "ESTALE",
    ]
}
