import ATPLMDB
import ATPLedger

/// Why a snapshot could not be written or read. A failed write leaves no snapshot behind (its
/// `.tmp` directory is removed) and the engine is unaffected; a snapshot that fails to read is
/// skipped by `SnapshotStore.loadNewestValid(log:)` for the one before it.
public enum SnapshotError: Error, Sendable, CustomStringConvertible {
    /// A file-system call failed: the call, the path, errno and its text (`ENOSPC`: disk full).
    case io(operation: String, path: String, errno: Int32, message: String)
    /// An LMDB call failed.
    case lmdb(LMDBError)
    /// The snapshot did not fit in `mapSizeBytesMax` (LMDB's MDB_MAP_FULL at the largest map
    /// allowed): raise `SnapshotStoreConfiguration.mapSizeBytesMax`.
    case mapFull(mapSizeBytesMax: Int)
    /// No snapshot with this id.
    case notFound(id: UInt64)
    /// A file of the snapshot is missing.
    case missingFile(id: UInt64, path: String)
    /// The snapshot is damaged: the whole-file checksum, a database checksum, a count, or an entry
    /// failed its check. `what` says which.
    case corrupt(id: UInt64, what: String)
    /// Written by an incompatible format version.
    case unsupportedFormat(id: UInt64, version: UInt32)
    /// The parts read back do not form a valid ledger image.
    case invalidImage(id: UInt64, LedgerImageError)

    public var description: String {
        switch self {
        case .io(let operation, let path, let errno, let message): "\(operation)(\(path)) failed: \(message) (errno \(errno))"
        case .lmdb(let error): "LMDB: \(error)"
        case .mapFull(let max): "the snapshot does not fit in the largest LMDB map allowed (\(max) bytes)"
        case .notFound(let id): "no snapshot \(id)"
        case .missingFile(let id, let path): "snapshot \(id): \(path) is missing"
        case .corrupt(let id, let what): "snapshot \(id) is corrupt: \(what)"
        case .unsupportedFormat(let id, let version):
            "snapshot \(id) has format version \(version); this build reads versions \(SnapshotFormat.versionsRead.lowerBound) to \(SnapshotFormat.versionsRead.upperBound)"
        case .invalidImage(let id, let error): "snapshot \(id) does not form a valid ledger image: \(error)"
        }
    }

    /// True when the device ran out of space (`ENOSPC`, from the file system or from LMDB).
    public var isDiskFull: Bool {
        switch self {
        case .io(_, _, let errno, _): errno == 28
        case .lmdb(let error): error.isDiskFull
        default: false
        }
    }
}
