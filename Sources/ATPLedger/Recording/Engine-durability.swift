#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPThreads
import Atomics
import Synchronization

/// One recorded input, as read back from a worker's log.
public struct RecordedInput: Sendable {
    /// Its position in the worker's log.
    public var lsn: UInt64
    /// `WorkerInputKind` raw value.
    public var kind: UInt8
    /// The record's payload.
    public var payload: [UInt8]

    /// A record read back from a log.
    public init(lsn: UInt64, kind: UInt8, payload: [UInt8]) {
        self.lsn = lsn
        self.kind = kind
        self.payload = payload
    }
}

/// A recorded input that cannot be replayed: the log does not belong to this engine's state or
/// configuration (worker or shard count), or it is damaged in a way the checksums missed.
public struct WorkerInputReplayError: Error, Sendable, CustomStringConvertible {
    /// The worker whose log holds the record.
    public var workerIndex: Int
    /// The record's LSN (0 when the log itself could not be read).
    public var lsn: UInt64
    /// What is wrong.
    public var reason: String

    public var description: String {
        "worker \(workerIndex) record \(lsn) cannot be replayed: \(reason). Restore the journal or start from a snapshot that covers it."
    }
}

/// Durable operation: each worker records its inputs in a `WorkerInputLog` and answers only once
/// they are durable; recovery replays the logs (docs/DURABILITY.md).
extension Engine {
    /// Attaches one log per worker (index = worker index). From now on every input that changes
    /// state is recorded before it is applied, and replies wait for durability. `nameWatermarks`
    /// are the numbers of names of each kind (sku, location, channel, source) the logs may assume
    /// known: those of the snapshot the engine was restored from (0 without one). Call once, before
    /// serving; blocks until every worker switched.
    public func attachInputLogs(_ logs: [WorkerInputLog], nameWatermarks: [Int]) {
        precondition(logs.count == configuration.workerCount, "one log per worker")
        precondition(core.inputLogs.isEmpty, "logs are attached once")
        core.inputLogs = logs
        let catalog = catalog
        onEveryWorker { worker in
            worker.ledger.recorder = WorkerRecorder(log: logs[worker.index], catalog: catalog,
                                                    nameWatermarks: nameWatermarks)
        }
    }

    /// Whether logs are attached.
    public var isRecordingInputs: Bool { !core.inputLogs.isEmpty }

    /// Replays each worker's journal on that worker, all workers in parallel; `inputs[w]` yields
    /// worker `w`'s records in LSN order and is called on that worker's thread. Nothing is answered
    /// or sent to another worker and no expiry runs: each record is applied as it was journaled.
    /// Call on an engine restored from the snapshot the logs continue (or a fresh one), started with
    /// `expiriesSuspended`, then `resolveAfterReplay()`. Returns the number of records replayed per
    /// worker. Throws the first record that cannot be replayed.
    public func replayInputs(_ inputs: [() throws -> RecordedInput?]) throws(WorkerInputReplayError) -> [Int] {
        precondition(inputs.count == configuration.workerCount, "one input source per worker")
        let results = Mutex<[Int: Result<Int, WorkerInputReplayError>]>([:])
        onEveryWorker { worker in
            var count = 0
            var lsn: UInt64 = 0
            do {
                while let input = try inputs[worker.index]() {
                    lsn = input.lsn
                    let problem: RecordDecodingError? = input.payload.withUnsafeBytes { bytes in
                        do throws(RecordDecodingError) {
                            try worker.ledger.replay(kind: input.kind, lsn: input.lsn, payload: bytes)
                            return nil
                        } catch {
                            return error
                        }
                    }
                    if let problem { throw problem }
                    worker.ledger.lastReplayedLSN = input.lsn
                    count += 1
                }
                results.withLock { $0[worker.index] = .success(count) }
            } catch let error as RecordDecodingError {
                results.withLock {
                    $0[worker.index] = .failure(WorkerInputReplayError(workerIndex: worker.index, lsn: lsn,
                                                                        reason: error.description))
                }
            } catch {
                results.withLock {
                    $0[worker.index] = .failure(WorkerInputReplayError(workerIndex: worker.index, lsn: lsn,
                                                                        reason: "reading the log: \(error)"))
                }
            }
        }
        let collected = results.withLock { $0 }
        var counts: [Int] = []
        for index in 0..<configuration.workerCount {
            switch collected[index] {
            case .success(let count): counts.append(count)
            case .failure(let error): throw error
            case nil: throw WorkerInputReplayError(workerIndex: index, lsn: 0, reason: "the worker did not replay")
            }
        }
        return counts
    }

    /// After `replayInputs`, makes every reservation's record and holds agree across workers, once
    /// (docs/DURABILITY.md, "Recovery"; `Resolution` has the rules), starts a new journal generation
    /// on every worker, and brings every worker's channel table to the newest change any journaled.
    /// With logs attached each worker journals its repairs, so a later replay repeats them; wait
    /// for `waitUntilDurable()` before serving. `endLSNs` are the workers' journal ends before
    /// recovery (default: each attached log's last LSN, else the last record replayed). Blocks.
    public func resolveAfterReplay(endLSNs: [UInt64]? = nil) -> ResolutionReport {
        let ends = (0..<configuration.workerCount).map { worker in
            endLSNs?[worker] ?? (core.inputLogs.isEmpty ? nil : core.inputLogs[worker].lastAppendedLSN)
        }
        let collected = OneShotCollector<CoreCensus>(count: configuration.workerCount)
        onEveryWorker { worker in
            let end = ends[worker.index] ?? worker.ledger.lastReplayedLSN
            collected.add(worker.ledger.census(endLSN: end), at: worker.index)
        }
        let censuses = collected.values
        let now = clock.nowMilliseconds()
        let resolution = Resolution(censuses, shardCount: configuration.shardCount, nowMilliseconds: now)
        onEveryWorker { worker in
            worker.ledger.beginFinishingRecovery(endLSN: censuses[worker.index].endLSN,
                                                 nextGeneration: UInt64.random(in: 2...UInt64.max),
                                                 holdRepairs: resolution.holdRepairsByCore[worker.index],
                                                 channels: resolution.channels,
                                                 channelSequence: resolution.channelSequence, nowMilliseconds: now)
        }
        // Records go only once the holds they account for have gone for good (see `Resolution`).
        if resolution.recordRepairsByCore.contains(where: { !$0.isEmpty }) {
            _ = waitUntilStable()
            onEveryWorker { worker in
                worker.ledger.completeRecovery(recordRepairs: resolution.recordRepairsByCore[worker.index],
                                               nowMilliseconds: now)
            }
        }
        core.channelDefinitions.withLock { definitions in
            definitions = [:]
            for definition in resolution.channels { definitions[definition.id] = definition }
        }
        core.channelChangeSequence.store(resolution.channelSequence, ordering: .releasing)
        return resolution.report
    }

    /// Lets the workers run reservation expiries again (after recovery). Expiries that came due
    /// while the engine was down or replaying run at once.
    public func resumeExpiries() {
        core.expiriesSuspended.store(false, ordering: .releasing)
        for worker in core.workers { worker.wake() }
    }

    /// Blocks until everything every worker recorded so far is durable; returns the failure when
    /// some of it cannot become durable. Returns nil at once when no logs are attached.
    public func waitUntilDurable() -> DurabilityFailure? {
        waitForLogs(stable: false)
    }

    /// `waitUntilDurable`, for stable (`WorkerInputLog.whenStable`: synced where the mode syncs).
    public func waitUntilStable() -> DurabilityFailure? {
        waitForLogs(stable: true)
    }

    private func waitForLogs(stable: Bool) -> DurabilityFailure? {
        let logs = core.inputLogs
        guard !logs.isEmpty else { return nil }
        let done = OneShot<DurabilityOutcome>()
        let waiter = DurabilityWaiter(count: logs.count) { done.fulfil(DurabilityOutcome(failure: $0)) }
        for log in logs { log.when(log.lastAppendedLSN, stable: stable, waiter.partDone) }
        return done.wait().failure
    }

}

private struct DurabilityOutcome: Sendable {
    var failure: DurabilityFailure?
}

/// Counts down the durability of several logs and calls `completion` once, with the first failure.
final class DurabilityWaiter: @unchecked Sendable {
    private let remaining: ManagedAtomic<Int>
    private let failure = Mutex<DurabilityFailure?>(nil)
    private let completion: @Sendable (DurabilityFailure?) -> Void

    init(count: Int, completion: @escaping @Sendable (DurabilityFailure?) -> Void) {
        precondition(count > 0)
        remaining = ManagedAtomic(count)
        self.completion = completion
    }

    @Sendable func partDone(_ partFailure: DurabilityFailure?) {
        if let partFailure { failure.withLock { if $0 == nil { $0 = partFailure } } }
        guard remaining.loadThenWrappingDecrement(ordering: .acquiringAndReleasing) == 1 else { return }
        completion(failure.withLock { $0 })
    }
}

