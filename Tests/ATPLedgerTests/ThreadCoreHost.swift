#if canImport(Glibc)
import Glibc
#endif
import ATPLedger
import Synchronization

/// A plain thread as a `CoreHost`, standing in for a server's event loop: runs what it is given in
/// order, one at a time, and delayed work once due. Stops when released (`stop()`).
final class ThreadCoreHost: CoreHost, @unchecked Sendable {
    private struct State {
        var ready: [@Sendable () -> Void] = []
        var delayed: [(due: UInt64, work: @Sendable () -> Void)] = []
        var stopping = false
        var thread: pthread_t? = nil
    }
    private let state = Mutex(State())
    private let wakeUp = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var threadID = pthread_t()
    /// Delayed work items run so far (expiry timers), for tests that must see a timer fire.
    let delayedRuns = Atomic<Int>(0)

    init() {
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wakeUp, nil)
        let unmanaged = Unmanaged.passRetained(self)
        pthread_create(&threadID, nil, { raw in
            let host = Unmanaged<ThreadCoreHost>.fromOpaque(raw!).takeRetainedValue()
            host.run()
            return nil
        }, unmanaged.toOpaque())
    }

    /// Hosts for every core of a configuration.
    static func hosts(_ count: Int) -> [ThreadCoreHost] { (0..<count).map { _ in ThreadCoreHost() } }

    func execute(_ work: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(lock)
        state.withLock { $0.ready.append(work) }
        pthread_cond_signal(wakeUp)
        pthread_mutex_unlock(lock)
    }

    func execute(afterNanoseconds nanoseconds: UInt64, _ work: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(lock)
        state.withLock { $0.delayed.append((Self.now() + nanoseconds, work)) }
        pthread_cond_signal(wakeUp)
        pthread_mutex_unlock(lock)
    }

    var isCurrentThread: Bool { pthread_equal(pthread_self(), threadID) != 0 }

    /// Ends the thread once what is queued ran (after the engine's shutdown).
    func stop() {
        pthread_mutex_lock(lock)
        state.withLock { $0.stopping = true }
        pthread_cond_signal(wakeUp)
        pthread_mutex_unlock(lock)
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    private func run() {
        while true {
            pthread_mutex_lock(lock)
            var next: (@Sendable () -> Void)? = nil
            var stop = false
            while true {
                let now = Self.now()
                let (work, stopping, wait) = state.withLock { state -> ((@Sendable () -> Void)?, Bool, UInt64?) in
                    if !state.ready.isEmpty { return (state.ready.removeFirst(), false, nil) }
                    if let due = state.delayed.indices.first(where: { state.delayed[$0].due <= now }) {
                        delayedRuns.add(1, ordering: .relaxed)
                        return (state.delayed.remove(at: due).work, false, nil)
                    }
                    let earliest = state.delayed.map(\.due).min()
                    return (nil, state.stopping, earliest.map { $0 - now })
                }
                if let work { next = work; break }
                if stopping { stop = true; break }
                var deadline = timespec()
                clock_gettime(CLOCK_REALTIME, &deadline)
                let sleep = min(wait ?? 50_000_000, 50_000_000)
                let total = UInt64(deadline.tv_nsec) + sleep
                deadline.tv_sec += Int(total / 1_000_000_000)
                deadline.tv_nsec = Int(total % 1_000_000_000)
                pthread_cond_timedwait(wakeUp, lock, &deadline)
            }
            pthread_mutex_unlock(lock)
            if stop { return }
            next?()
        }
    }
}
