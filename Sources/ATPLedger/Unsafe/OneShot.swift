#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPThreads

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

/// Starts a named OS thread running `body`. The engine cannot run without its workers, so a thread
/// the system refuses is fatal.
func startThread(name: String, _ body: @escaping @Sendable () -> Void) {
    do {
        _ = try NamedThread(name: name, body)
    } catch {
        preconditionFailure("pthread_create failed: \(error.errno)")
    }
}
