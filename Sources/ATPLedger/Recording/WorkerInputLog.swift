/// Where a ledger worker writes the inputs it processes, so that replaying them rebuilds its state
/// (docs/DURABILITY.md, "The engine's records"). One log per worker; the durability layer backs it
/// with a journal stream. ATPLedger itself does no I/O: it only calls this protocol.
///
/// Threads: `append` is called by the owning worker thread only; `whenDurable` and
/// `lastAppendedLSN` from any thread.
public protocol WorkerInputLog: AnyObject, Sendable {
    /// Copies one record into the log and returns its LSN. Must not block on I/O: `.full` when the
    /// log's buffer has no room (the worker waits and retries), `.refused` when the log failed.
    func append(kind: UInt8, payload: UnsafeRawBufferPointer) -> WorkerInputAppendResult
    /// Runs `completion(nil)` once `lsn` is durable, or `completion(failure)` once it cannot become
    /// durable. May run on any thread; must run exactly once.
    func whenDurable(_ lsn: UInt64, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void)
    /// Runs `completion(nil)` once `lsn` is stable: it survives a power loss (synced) in the modes
    /// that sync (`sync`, `interval`), or, in a mode that never syncs (`none`), once durable; or
    /// `completion(failure)` once it cannot be. A core tells other cores of a change only once its
    /// record is stable, so after any crash no core is ahead of the core that decided. May run on
    /// any thread; must run exactly once. The default is `whenDurable` (right for `sync` and `none`).
    func whenStable(_ lsn: UInt64, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void)
    /// The newest LSN appended (0 before the first record).
    var lastAppendedLSN: UInt64 { get }
}

extension WorkerInputLog {
    public func whenStable(_ lsn: UInt64, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void) {
        whenDurable(lsn, completion)
    }

    /// `whenStable` when `stable`, else `whenDurable`.
    func when(_ lsn: UInt64, stable: Bool, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void) {
        if stable { whenStable(lsn, completion) } else { whenDurable(lsn, completion) }
    }
}

/// What `WorkerInputLog.append` did.
public enum WorkerInputAppendResult: Sendable, Equatable {
    /// Appended with this LSN.
    case appended(lsn: UInt64)
    /// No room now: nothing appended; retry shortly.
    case full
    /// Nothing appended and nothing will be: the log failed.
    case refused(DurabilityFailure)
}

/// Why a change could not be made durable: the journal failed (disk full, I/O error). Write
/// requests are refused until the cause is fixed and the server restarted; queries keep working.
public struct DurabilityFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed and what to do next (the journal's own description).
    public var reason: String

    /// A failure with its reason.
    public init(reason: String) {
        self.reason = reason
    }

    public var description: String { "not durable: \(reason)" }
}

/// The kinds of records a core writes (the journal record's `kind` byte). Stable: they are on disk.
/// Layouts in docs/DURABILITY.md, "The engine's records".
public enum WorkerInputKind: UInt8, Sendable, CaseIterable {
    /// Names of one kind with consecutive ids (kind u8, first id u32, count u32, count × (length
    /// u16, UTF-8 bytes)), written before the first record that uses them.
    case names = 1
    /// The events of one batch this core applied: now i64, event count u32, correlation count u32,
    /// events (the 64-byte in-memory layout), correlation ids (length u8, bytes).
    case events = 2
    /// Version 1 (read only): a reserve, commit or release received at the id's home shard.
    case legacyReservation = 3
    /// Version 1 (read only): a shard message received by one of this worker's shards.
    case legacyShardMessage = 4
    /// Version 1 (read only): the expiry check of one home shard.
    case legacyExpiry = 5
    /// A channel defined (or replaced) on this core.
    case channelDefine = 6
    /// A channel removed on this core.
    case channelRemove = 7
    /// Version 1 (read only): a repair made by recovery's normalisation pass.
    case legacyNormalization = 8
    /// A reserve decided at its home: the request, its state (held or refused), grants, expiry and
    /// the part cores holding units with their hold origins. Replay makes the home's own holds.
    case reserveDecided = 9
    /// A part core's tentative holds for a reservation whose home is elsewhere.
    case prepared = 10
    /// Commits, releases or expiries of records of one home shard.
    case transitions = 11
    /// A part core kept, aborted, committed or released its holds of a reservation.
    case partChange = 12
    /// A part acknowledged a durable change: the home may forget the record after its retention.
    case acknowledged = 13
    /// Recovery started a new journal generation on this core (the previous one's last LSN).
    case generation = 14
    /// Repairs recovery made so that every reservation's record and holds agree.
    case repairs = 15
    /// The whole channel table, as recovery set it on every core (sequence u64, definitions).
    case channelTable = 16
}
