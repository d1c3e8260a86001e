#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CATPSupport

/// A joinable OS thread running one closure, named for `top -H`, `ps -L` and debuggers (Linux
/// keeps the first 15 bytes of the name).
public struct NamedThread: Sendable {
    /// Why a thread could not be started: the `pthread_create` result (an errno value).
    public struct StartError: Error, Sendable {
        public let errno: Int32
    }

    private let thread: pthread_t

    /// Starts a thread named `name` running `body`. Throws when the system refuses a new thread.
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(StartError) {
        final class Box: @unchecked Sendable {
            let body: @Sendable () -> Void
            let name: String
            init(_ body: @escaping @Sendable () -> Void, _ name: String) {
                self.body = body
                self.name = name
            }
        }
        let box = Unmanaged.passRetained(Box(body, name))
        #if os(Linux)
        var thread = pthread_t()
        #else
        var thread: pthread_t? = nil
        #endif
        let result = pthread_create(&thread, nil, { argument in
            guard let argument else { return nil }
            let box = Unmanaged<Box>.fromOpaque(argument).takeRetainedValue()
            _ = box.name.withCString { atp_set_current_thread_name($0) }
            box.body()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw StartError(errno: result)
        }
        #if os(Linux)
        self.thread = thread
        #else
        guard let thread else { throw StartError(errno: EAGAIN) }
        self.thread = thread
        #endif
    }

    /// Waits for the thread to return. Once, from another thread.
    public func join() {
        let result = pthread_join(thread, nil)
        precondition(result == 0, "pthread_join failed: \(result)")
    }
}

/// Monotonic time in nanoseconds (for durations, never persisted). The one monotonic clock of the
/// package's own code: the ledger re-exports it.
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Monotonic time in whole milliseconds (for durations and deadlines).
public func monotonicMilliseconds() -> Int64 {
    Int64(monotonicNanoseconds() / 1_000_000)
}
