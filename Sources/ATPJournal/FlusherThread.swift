#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Atomics
import Synchronization

/// Lets the flusher sleep until the appender (or `whenDurable`, or `close`) wakes it, or a deadline
/// passes, without lost wake-ups. (The same protocol as ATPLedger's worker `Parker`; the journal
/// does not depend on the ledger, so it keeps its own copy.)
///
/// Safety argument for `@unchecked Sendable`: the pthread mutex and condition live in heap memory
/// that never moves and is freed only in `deinit`; `isParked` is atomic. The sleeper sets
/// `isParked`, issues a full fence and re-checks its work under the mutex before waiting; a waker
/// publishes its work, issues a full fence, and signals under the mutex when it sees `isParked`.
/// Either the sleeper sees the work, or the waker sees `isParked` and its signal reaches the wait.
final class FlusherParker: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private let isParked = Atomic<Bool>(false)

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
    }

    /// Sleeps until `unpark()` or `timeoutNanoseconds`, unless `hasWork()` is already true.
    func park(timeoutNanoseconds: UInt64, hasWork: () -> Bool) {
        pthread_mutex_lock(mutex)
        isParked.store(true, ordering: .sequentiallyConsistent)
        Atomics.atomicMemoryFence(ordering: .sequentiallyConsistent)
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

    /// Wakes the sleeper if it is parked. Cheap (a fence and one atomic load) when it is not.
    func unpark() {
        Atomics.atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard isParked.load(ordering: .sequentiallyConsistent) else { return }
        pthread_mutex_lock(mutex)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }
}

/// A joinable OS thread running one closure: the stream's flusher.
struct FlusherThread {
    private let thread: pthread_t

    /// Starts a thread named `name` (Linux keeps 15 bytes) running `body`. Throws when the system
    /// refuses a new thread (`directory` names the stream in the error).
    init(name: String, directory: String, _ body: @escaping @Sendable () -> Void) throws(JournalError) {
        final class Box: @unchecked Sendable {
            let body: @Sendable () -> Void
            let name: String
            init(_ body: @escaping @Sendable () -> Void, _ name: String) {
                self.body = body
                self.name = name
            }
        }
        let box = Unmanaged.passRetained(Box(body, String(decoding: Array(name.utf8.prefix(15)), as: UTF8.self)))
        #if os(Linux)
        var thread = pthread_t()
        #else
        var thread: pthread_t? = nil
        #endif
        let result = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let box = Unmanaged<Box>.fromOpaque(argument).takeRetainedValue()
            nameCurrentThread(box.name)
            box.body()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw .systemCallFailed(operation: "pthread_create", path: directory, errno: result)
        }
        #if os(Linux)
        self.thread = thread
        #else
        guard let thread else { throw .systemCallFailed(operation: "pthread_create", path: directory, errno: EAGAIN) }
        self.thread = thread
        #endif
    }

    /// Waits for the thread to return.
    func join() {
        let result = pthread_join(thread, nil)
        precondition(result == 0, "pthread_join failed: \(result)")
    }
}

/// Monotonic time in nanoseconds (durations only).
func journalMonotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Names the calling thread for `top -H`, `ps -L` and debuggers (Linux; best effort, errors ignored).
private func nameCurrentThread(_ name: String) {
    #if os(Linux)
    let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return }
    _ = name.withCString { write(descriptor, $0, strlen($0)) }
    close(descriptor)
    #endif
}
