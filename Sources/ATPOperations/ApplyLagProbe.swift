import ATPLedger
import Dispatch
import Synchronization

/// Measures how long a request waits in each shard worker's inbox: a no-op task per worker
/// (`Engine.submitProbe`) goes through the same lock-free inbox as client requests, and the time
/// from submit to its run is the worker's apply lag. Runs only at a scrape; never on the request path.
final class ApplyLagProbe: Sendable {
    private let engine: Engine
    /// How long one probe may take before it is reported as this long.
    let timeoutSeconds: Double

    init(engine: Engine, timeoutSeconds: Double = 1) {
        self.engine = engine
        self.timeoutSeconds = timeoutSeconds
    }

    /// The lag of each worker, in seconds (at most `timeoutSeconds`). Blocks up to `timeoutSeconds`
    /// per worker whose inbox is saturated.
    func measure() -> [Double] {
        let configuration = engine.configuration
        return (0..<configuration.workerCount).map { worker in
            let done = DispatchSemaphore(value: 0)
            let started = DispatchTime.now().uptimeNanoseconds
            let deadline = DispatchTime.now() + timeoutSeconds
            while engine.submitProbe(toCore: worker, completion: { done.signal() }) == .inboxFull {
                if DispatchTime.now() >= deadline { return timeoutSeconds }
                usleepShort()
            }
            guard done.wait(timeout: deadline) == .success else { return timeoutSeconds }
            return Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        }
    }

    private func usleepShort() {
        var pause = timespec(tv_sec: 0, tv_nsec: 100_000)
        nanosleep(&pause, nil)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
