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
    /// The newest LSN appended (0 before the first record).
    var lastAppendedLSN: UInt64 { get }
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

/// The kinds of records a worker writes (the journal record's `kind` byte). Stable: they are on disk.
public enum WorkerInputKind: UInt8, Sendable, CaseIterable {
    /// Names of one kind with consecutive ids (kind u8, first id u32, count u32, count × (length
    /// u16, UTF-8 bytes)), written before the first record that uses them.
    case names = 1
    /// The events of one batch this worker applied: now i64, event count u32, correlation count u32,
    /// events (the 64-byte in-memory layout), correlation ids (length u8, bytes).
    case events = 2
    /// A reserve, commit or release received at the id's home shard.
    case reservation = 3
    /// A shard message received by one of this worker's shards.
    case shardMessage = 4
    /// The expiry check of one home shard at a time (the heap says which reservations expire).
    case expiry = 5
    /// A channel defined (or replaced) on this worker.
    case channelDefine = 6
    /// A channel removed on this worker.
    case channelRemove = 7
    /// A repair made by recovery's normalisation pass (see `Engine.normalizeAfterReplay()`).
    case normalization = 8
}
