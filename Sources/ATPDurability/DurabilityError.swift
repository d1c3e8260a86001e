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
    /// `<data>/placement` and the newest snapshot place SKUs differently (one of them is foreign).
    case placementMismatch(file: SKUPlacement, snapshot: SKUPlacement)
    /// The data directory was written with another number of shards.
    case shardCountMismatch(dataDirectory: Int, configuration: Int)
    /// A journal stream failed to open or read: a segment of another stream or an unknown format
    /// version, a failed system call (damage that would lose records is `journalDamaged`).
    case journal(streamIndex: Int, JournalError)
    /// Journal streams hold damage that would lose acknowledged records (a damaged segment header,
    /// a bad record with valid records after it, damage in an earlier segment, a gap between
    /// segments); nothing was changed. One report per damaged stream says where, what, and what
    /// would be lost. Restore the files, or open with `journalDamagePolicy = .acceptLoss` (atpd:
    /// `--accept-journal-damage`) after keeping a copy of the data directory.
    case journalDamaged([JournalLossReport])
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

    public var description: String {
        switch self {
        case .dataDirectoryLocked(let path):
            "the data directory \(path) is in use by another atpd (\(path)/LOCK is locked); stop it or use another --data-dir"
        case .dataDirectory(let path, let reason): "cannot use \(path): \(reason)"
        case .workerCountMismatch(let written, let configured):
            "the data directory holds \(written) journal streams but \(configured) workers are configured; start with --workers \(written)"
        case .placementMismatch(let file, let snapshot):
            "the data directory's placement file says SKUs are placed \(file) but its newest snapshot \(snapshot): "
                + "one of them belongs to another data directory"
        case .shardCountMismatch(let written, let configured):
            "the data directory was written with \(written) shards but \(configured) are configured; "
                + "set ledger.shardCount = \(written)"
        case .journal(let index, let error): "journal stream \(index): \(error)"
        case .journalDamaged(let reports):
            "the journal is damaged and opening it would lose acknowledged records: "
                + reports.map(\.description).joined(separator: "; ")
                + "; nothing was changed: restore the damaged files from a backup, or keep a copy of the data directory "
                + "and start atpd with --accept-journal-damage (journalDamagePolicy acceptLoss) to set the damaged bytes "
                + "aside (never deleted) and start without those records"
        case .journalBehindSnapshot(let index, let last, let mark):
            "journal stream \(index) ends at record \(last) but the snapshot covers up to \(mark): the journal lost records (power loss with durability none?) or belongs to another data directory"
        case .snapshotDoesNotFit(let error): "the snapshot does not fit the configuration: \(error)"
        case .snapshot(let error): "\(error)"
        case .replay(let error): "\(error)"
        case .engine(let error): "\(error)"
        case .notDurable(let failure): "\(failure)"
        }
    }
}

extension DurabilityError {
    /// For `.journalDamaged`, what a server that refuses to start tells its operator, on several
    /// lines: per damaged stream what is damaged, what is intact, what would be lost and where the
    /// bytes are; then how to start anyway (copy `dataDirectory`, then `--accept-journal-damage`).
    /// Nil for any other error.
    public func journalDamageExplanation(dataDirectory: String) -> String? {
        guard case .journalDamaged(let reports) = self else { return nil }
        var lines = ["atpd will not start: the journal is damaged, and starting would lose acknowledged records.", ""]
        for report in reports {
            let survivors = report.lsnRangeAfterDamage.map { range in
                "\(report.recordsAfterDamage) record\(report.recordsAfterDamage == 1 ? "" : "s") in them still "
                    + "verif\(report.recordsAfterDamage == 1 ? "ies" : "y") (LSN \(range.lowerBound)...\(range.upperBound))"
            } ?? "no record in them verifies"
            let later = report.filesAffected.count - 1
            lines += [
                "journal stream \(report.streamIndex):",
                "  damaged:       \(report.segmentPath) at byte \(report.offset): \(report.damage)",
                "  intact:        " + (report.lastIntactLSN == 0 ? "no record precedes the damage"
                                                  : "the records up to LSN \(report.lastIntactLSN) (kept)"),
                "  would be lost: \(report.bytesLost) bytes, from byte \(report.offset) of that segment to its end"
                    + (later == 0 ? "" : " and \(later) later segment\(later == 1 ? "" : "s")") + "; \(survivors)",
                "  the bytes:     still in place, nothing was changed: " + report.filesAffected.joined(separator: ", "),
                "",
            ]
        }
        lines += [
            "To start anyway, accepting this loss:",
            "  1. keep a copy of the data directory first: cp -a '\(dataDirectory)' '\(dataDirectory).before-accepting-damage'",
            "  2. start atpd with --accept-journal-damage (or \"acceptJournalDamage\": true in the configuration file; remove",
            "     it again afterwards). The damaged bytes are moved aside to <file>.damaged (never deleted), atpd starts",
            "     without those records and logs what was lost at error level.",
            "Or restore the damaged files from a backup. docs/DURABILITY.md, \"Damaged journals\", explains both.",
        ]
        return lines.joined(separator: "\n")
    }
}
