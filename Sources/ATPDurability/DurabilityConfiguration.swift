import ATPJournal
import ATPLedger

/// Where and how the ledger is made durable. Limits carry their unit in their name.
public struct DurabilityConfiguration: Sendable {
    /// The data directory: `journal/stream-<k>` (one journal stream per worker), `snapshots/`, `LOCK`.
    public var dataDirectory: String
    /// The journal streams' settings; `journal.durability` is the `sync` / `interval` / `none` mode
    /// (docs/DURABILITY.md says what each can lose). Default `.sync`.
    public var journal = JournalConfiguration()
    /// What recovery does with journal damage that would lose acknowledged records (a damaged
    /// segment header, a bad record with valid records after it, damage in an earlier segment, a
    /// gap between segments): `.refuse` (the default; `open` throws `DurabilityError.journalDamaged`
    /// and changes nothing) or `.acceptLoss` (the damaged bytes are set aside in `.damaged` files,
    /// the records in them are lost, `RecoveryReport.acceptedJournalLosses` and the log say so).
    /// Damage a crash leaves (a torn tail) is cut under either. docs/DURABILITY.md, "Damaged journals".
    public var journalDamagePolicy: JournalDamagePolicy = .refuse
    /// Snapshots kept (older ones and the journal segments they alone needed are deleted). Default 3.
    public var snapshotsKept = 3
    /// Seconds between scheduled snapshots; 0 turns the schedule off. Default 300.
    public var snapshotIntervalSeconds = 300
    /// Written into each snapshot's metadata.
    public var engineVersion = "atpd"
    /// The journal's system calls (tests inject failures here).
    public var journalFileOperations: JournalFileOperations = .system

    /// Defaults for `dataDirectory`.
    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }

    /// The largest journal record a request of at most `batchItemsMax` items can make: an ingest
    /// frame whose events all live on one core, each with a correlation id of the longest kind
    /// (16 bytes of header fields, then per event its fixed layout and up to 1 + 64 id bytes).
    public static func largestRecordPayloadBytes(batchItemsMax: Int) -> Int {
        16 + batchItemsMax * (MemoryLayout<StockEvent>.size + 1 + ReservationID.bytesMax)
    }

    /// Raises `journal.recordPayloadBytesMax` (and the buffer that must hold two such records) so
    /// that every request of at most `batchItemsMax` items fits one record. With the journal's 1 MiB
    /// default an ingest of 17,000 events on one core was refused as `notDurable` though the
    /// protocol allows 100,000 (12.5 MB with correlation ids).
    public mutating func fitJournal(toBatchItemsMax batchItemsMax: Int) {
        let largest = Self.largestRecordPayloadBytes(batchItemsMax: batchItemsMax)
        journal.recordPayloadBytesMax = max(journal.recordPayloadBytesMax, largest)
        journal.bufferedBytesMax = max(journal.bufferedBytesMax, 2 * (largest + 4096))
    }

    /// `sync`, `none` or `interval:<ms>` (also `<ms>ms`), as in the `durability` configuration key.
    public static func parseDurability(_ text: String) -> JournalDurability? {
        switch text {
        case "sync": return .sync
        case "none": return JournalDurability.none
        default:
            var number = Substring(text)
            if number.hasPrefix("interval:") { number = number.dropFirst("interval:".count) }
            if number.hasSuffix("ms") { number = number.dropLast(2) }
            guard let milliseconds = Int(number), milliseconds >= 1,
                  milliseconds <= JournalConfiguration.intervalMillisecondsMax else { return nil }
            return .interval(milliseconds: milliseconds)
        }
    }
}

/// What recovery did at start.
public struct RecoveryReport: Sendable, CustomStringConvertible {
    /// The snapshot restored, or nil (none, or none valid).
    public var snapshotID: UInt64?
    /// Cells restored from it.
    public var cellsRestored = 0
    /// Snapshots skipped because they failed to open or verify, with the reason.
    public var snapshotsSkipped: [String] = []
    /// Journal records replayed, per worker.
    public var recordsReplayed: [Int] = []
    /// Torn or corrupt journal tails cut (and preserved in `.damaged` files), per stream.
    public var tailRepairs: [(streamIndex: Int, repair: JournalTailRepair)] = []
    /// Journal damage that lost records, cut because `journalDamagePolicy` was `.acceptLoss`, per
    /// stream (the bytes are kept in `.damaged` files).
    public var acceptedJournalLosses: [(streamIndex: Int, loss: JournalLossReport)] = []
    /// Repairs that made every reservation's record and holds agree across workers.
    public var resolution = ResolutionReport()
    /// Wall time of the whole recovery, in milliseconds.
    public var durationMilliseconds: Int64 = 0

    public var description: String {
        let replayed = recordsReplayed.reduce(0, +)
        let snapshot = snapshotID.map { "snapshot \($0) (\(cellsRestored) cells)" } ?? "no snapshot"
        let repairs = "\(resolution.recordsForgotten) records forgotten, \(resolution.holdsChanged) holds brought to their "
            + "record, \(resolution.orphanHoldsReleased) orphan holds released, \(resolution.legacyRecordsSettled) version-1 "
            + "records settled"
        return "\(snapshot), \(replayed) journal records replayed \(recordsReplayed), \(tailRepairs.count) damaged tails cut, "
            + "\(acceptedJournalLosses.count) journal losses accepted, "
            + "\(snapshotsSkipped.count) snapshots skipped, repairs: \(repairs); \(durationMilliseconds) ms"
    }
}

/// How serious a line given to `DurableLedger.open`'s `log` closure is.
public enum RecoveryLogSeverity: Sendable, Equatable {
    /// A step worth knowing (a snapshot skipped, reservations repaired).
    case notice
    /// A crash-damaged journal tail was cut: nothing acknowledged in `.sync` was in it.
    case warning
    /// Journal damage was accepted (`JournalDamagePolicy.acceptLoss`): acknowledged records were lost.
    case error
}

/// The lines recovery logs about journal damage, and their severity, so that a server logs each
/// at its level (atpd: a cut tail at warning, an accepted loss at error).
public enum RecoveryLog {
    static let tailRepairedPrefix = "journal tail cut"
    static let lossAcceptedPrefix = "JOURNAL DAMAGE ACCEPTED"

    /// The line for a crash-damaged tail that was cut.
    static func tailRepaired(streamIndex: Int, _ repair: JournalTailRepair) -> String {
        "\(tailRepairedPrefix): journal stream \(streamIndex), byte \(repair.offset) of \(repair.segmentPath) "
            + "(\(repair.bytesCut) bytes; \(repair.damage); \(repair.cause)), as a crash leaves it; "
            + "the bytes are kept in \(repair.preservedPath)"
    }

    /// The line for damage whose loss was accepted.
    static func lossAccepted(_ loss: JournalLossReport) -> String {
        "\(lossAcceptedPrefix), RECORDS LOST (journal damage policy acceptLoss): \(loss); the stream continues "
            + "at LSN \(loss.lastIntactLSN + 1)"
    }

    /// `.error` for an accepted loss, `.warning` for a cut tail, `.notice` for any other line.
    public static func severity(of line: String) -> RecoveryLogSeverity {
        if line.hasPrefix(lossAcceptedPrefix) { return .error }
        if line.hasPrefix(tailRepairedPrefix) { return .warning }
        return .notice
    }
}

/// Snapshot figures for metrics and `atp stats`.
public struct SnapshotStatistics: Sendable, Equatable {
    /// Snapshots written by this process.
    public var written: UInt64 = 0
    /// Snapshots that failed (disk full, map full, cut timed out, journal failed).
    public var failed: UInt64 = 0
    /// The newest snapshot's id (written or restored), 0 when none.
    public var lastID: UInt64 = 0
    /// Wall-clock time of the newest snapshot's cut, in milliseconds since 1970 (0 when none).
    public var lastCutWallClockMilliseconds: Int64 = 0
    /// How long the last snapshot took (cut, wait for the journal, LMDB write), in milliseconds.
    public var lastDurationMilliseconds: Int64 = 0
    /// Size of the last snapshot's data file, in bytes.
    public var lastSizeBytes: Int = 0
    /// The last failure's description, if any.
    public var lastFailure: String?
}
