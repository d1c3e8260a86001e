#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Atomics

/// Lets one thread sleep until another wakes it or a deadline passes, without lost wake-ups. Used by
/// the ledger's workers and the journal's flushers.
///
/// Safety argument for `@unchecked Sendable`: the pthread mutex and condition live in heap memory
/// that never moves and is freed only in `deinit`; `isParked` is atomic. The sleeper sets
/// `isParked`, issues a full fence and re-checks its work under the mutex before waiting; a waker
/// publishes its work, issues a full fence, and signals under the mutex when it sees `isParked`.
/// Either the sleeper sees the work, or the waker sees `isParked` and its signal reaches the wait.
public final class Parker: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let isParked = UnsafeAtomic<Bool>.create(false)

    /// A parker with nobody asleep.
    public init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        #if os(Linux)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
        isParked.destroy()
    }

    /// Sleeps until `unpark()` or `timeoutNanoseconds`, unless `hasWork()` is already true. One
    /// sleeper at a time.
    public func park(timeoutNanoseconds: UInt64, hasWork: () -> Bool) {
        pthread_mutex_lock(mutex)
        isParked.store(true, ordering: .sequentiallyConsistent)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if !hasWork() {
            var deadline = timespec()
            #if os(Linux)
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            #else
            clock_gettime(CLOCK_REALTIME, &deadline)
            #endif
            let total = UInt64(deadline.tv_nsec) + timeoutNanoseconds
            deadline.tv_sec += Int(total / 1_000_000_000)
            deadline.tv_nsec = Int(total % 1_000_000_000)
            pthread_cond_timedwait(condition, mutex, &deadline)
        }
        isParked.store(false, ordering: .relaxed)
        pthread_mutex_unlock(mutex)
    }

    /// Wakes the sleeper if it is parked. Cheap (a fence and one atomic load) when it is not. Any
    /// thread, after publishing the work the sleeper checks in `hasWork`.
    public func unpark() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard isParked.load(ordering: .sequentiallyConsistent) else { return }
        pthread_mutex_lock(mutex)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }
}
