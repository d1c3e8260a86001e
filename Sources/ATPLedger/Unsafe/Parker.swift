#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Atomics
import CATPSupport

/// Lets one thread sleep until another wakes it or a deadline passes, without lost wake-ups.
///
/// Safety argument for `@unchecked Sendable`: the pthread mutex and condition live in heap memory
/// that never moves and is freed only in `deinit`; `isParked` is atomic. The sleeper sets
/// `isParked`, issues a full fence and re-checks its work under the mutex before waiting; a waker
/// publishes its work, issues a full fence, and signals under the mutex when it sees `isParked`.
/// Either the sleeper sees the work, or the waker sees `isParked` and its signal reaches the wait.
final class Parker: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let isParked = UnsafeAtomic<Bool>.create(false)

    init() {
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

    /// Sleeps until `unpark()` or `timeoutNanoseconds`, unless `hasWork()` is already true.
    func park(timeoutNanoseconds: UInt64, hasWork: () -> Bool) {
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

    /// Wakes the sleeper if it is parked. Cheap (one atomic load) when it is not.
    func unpark() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard isParked.load(ordering: .sequentiallyConsistent) else { return }
        pthread_mutex_lock(mutex)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }
}

/// A one-shot value handed from one thread to a thread that blocks for it (sync wrappers, tests).
final class OneShot<Value: Sendable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value?

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    func fulfil(_ newValue: Value) {
        pthread_mutex_lock(mutex)
        precondition(value == nil, "fulfilled twice")
        value = newValue
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    func wait() -> Value {
        pthread_mutex_lock(mutex)
        while value == nil { pthread_cond_wait(condition, mutex) }
        let result = value!
        pthread_mutex_unlock(mutex)
        return result
    }
}

/// Starts a named OS thread running `body`.
func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, _ name: String) {
            self.body = body
            self.name = name
        }
    }
    let box = Unmanaged.passRetained(Box(body, name)).toOpaque()
    #if os(Linux)
    var thread = pthread_t()
    #else
    var thread: pthread_t? = nil
    #endif
    let result = pthread_create(&thread, nil, { argument in
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        _ = box.name.withCString { atp_set_current_thread_name($0) }
        box.body()
        return nil
    }, box)
    precondition(result == 0, "pthread_create failed: \(result)")
    #if os(Linux)
    return thread
    #else
    return thread!
    #endif
}
