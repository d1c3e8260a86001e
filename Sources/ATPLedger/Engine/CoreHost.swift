/// A thread that runs one core's work in its own loop, instead of a worker thread of the engine's:
/// a server's event loop, so that requests for the core's shards run where they are read
/// (thread-per-core, docs/ARCHITECTURE.md). The engine calls `execute` from any thread to have its
/// core drained on the host; the calls are coalesced (at most one drain is outstanding per core).
///
/// The host must run what it is given in order, one at a time, on one thread, and must keep
/// running until `Engine.shutdown()` returned. A blocking engine call (`apply`, `waitUntilIdle`,
/// channel changes, snapshots) must never be made on a host's thread: it would wait for itself.
public protocol CoreHost: Sendable {
    /// Runs `work` soon on the host's thread. Any thread.
    func execute(_ work: @escaping @Sendable () -> Void)
    /// Runs `work` on the host's thread once `nanoseconds` have passed (expiry timers). Any thread.
    func execute(afterNanoseconds nanoseconds: UInt64, _ work: @escaping @Sendable () -> Void)
    /// Whether the calling thread is the host's.
    var isCurrentThread: Bool { get }
}
