import ATPJournal
import ATPLedger
import ATPSnapshot

/// Why the durable ledger could not start, snapshot or stop. Each says what to do next.
public enum DurabilityError: Error, Sendable, CustomStringConvertible {
    /// Another process (a second atpd) holds `<data>/LOCK`.
    case dataDirectoryLocked(path: String)
    /// The data directory or one of its files cannot be created or opened.
    case dataDirectory(path: String, reason: String)
    /// The data directory was written with another number of workers (one journal stream each).
    case workerCountMismatch(dataDirectory: Int, configuration: Int)
    /// A journal stream failed to open or read (a corrupt segment that is not the tail, a gap...).
    case journal(streamIndex: Int, JournalError)
    /// A journal stream ends before the snapshot's mark: records the snapshot covers are missing.
    case journalBehindSnapshot(streamIndex: Int, lastLSN: UInt64, snapshotMark: UInt64)
    /// The snapshot cannot be restored into this configuration.
    case snapshotDoesNotFit(LedgerImageError)
    /// A snapshot could not be read or written.
    case snapshot(SnapshotError)
    /// A recorded input cannot be replayed.
    case replay(WorkerInputReplayError)
    /// The engine could not start.
    case engine(ConfigurationError)
    /// The journal failed: nothing more can be made durable until a restart.
    case notDurable(DurabilityFailure)
    /// A snapshot cut waited too long for reservations between shards to finish; try again.
    case snapshotCutTimedOut(milliseconds: Int)

    public var description: String {
        switch self {
        case .dataDirectoryLocked(let path):
            "the data directory \(path) is in use by another atpd (\(path)/LOCK is locked); stop it or use another --data-dir"
        case .dataDirectory(let path, let reason): "cannot use \(path): \(reason)"
        case .workerCountMismatch(let written, let configured):
            "the data directory holds \(written) journal streams but \(configured) workers are configured; start with --workers \(written)"
        case .journal(let index, let error): "journal stream \(index): \(error)"
        case .journalBehindSnapshot(let index, let last, let mark):
            "journal stream \(index) ends at record \(last) but the snapshot covers up to \(mark): the journal lost records (power loss with durability none?) or belongs to another data directory"
        case .snapshotDoesNotFit(let error): "the snapshot does not fit the configuration: \(error)"
        case .snapshot(let error): "\(error)"
        case .replay(let error): "\(error)"
        case .engine(let error): "\(error)"
        case .notDurable(let failure): "\(failure)"
        case .snapshotCutTimedOut(let milliseconds):
            "the snapshot cut waited \(milliseconds) ms for reservations between shards to finish; try again"
        }
    }
}
