import ATPLedger
import Dispatch
import Synchronization

/// Measures how long a request waits in each shard worker's inbox: one tiny query per worker
/// (a cell no one has, routed to a shard that worker owns) goes through the same lock-free inbox as
/// client requests, and the time from submit to its answer is the worker's apply lag. Runs only at
/// a scrape; never on the request path.
final class ApplyLagProbe: Sendable {
    private let engine: Engine
    private let submitted = Atomic<UInt64>(0)
    /// How long one probe may take before it is reported as this long.
    let timeoutSeconds: Double

    init(engine: Engine, timeoutSeconds: Double = 1) {
        self.engine = engine
        self.timeoutSeconds = timeoutSeconds
    }

    /// Probe queries submitted so far (each is one query item in the engine's counters).
    var probesSubmitted: UInt64 { submitted.load(ordering: .relaxed) }

    /// The lag of each worker, in seconds (at most `timeoutSeconds`). Blocks up to `timeoutSeconds`
    /// per worker whose inbox is saturated.
    func measure() -> [Double] {
        let configuration = engine.configuration
        return (0..<configuration.workerCount).map { worker in
            // Shard `worker` belongs to worker `worker` (shard s → worker s % workerCount), and SKU
            // id `worker` maps to shard `worker` (id & (shardCount − 1), workerCount ≤ shardCount).
            let probe = AvailabilityQuery.cell(SKUID(UInt32(worker)), .unknown)
            let done = DispatchSemaphore(value: 0)
            let started = DispatchTime.now().uptimeNanoseconds
            let deadline = DispatchTime.now() + timeoutSeconds
            while engine.submit(queries: [probe], completion: { _ in done.signal() }) == .inboxFull {
                if DispatchTime.now() >= deadline { return timeoutSeconds }
                usleepShort()
            }
            submitted.add(1, ordering: .relaxed)
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
