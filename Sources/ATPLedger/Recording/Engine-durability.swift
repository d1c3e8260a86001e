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
            worker.recorder = WorkerRecorder(log: logs[worker.index], catalog: catalog, nameWatermarks: nameWatermarks)
        }
    }

    /// Whether logs are attached.
    public var isRecordingInputs: Bool { !core.inputLogs.isEmpty }

    /// Replays each worker's recorded inputs on that worker, all workers in parallel; `inputs[w]`
    /// yields worker `w`'s records in LSN order and is called on that worker's thread. Replies are
    /// not sent, shard messages are not sent (each shard's own log has what it received) and
    /// expiries are not run. Call on an engine restored from the snapshot the logs continue (or a
    /// fresh one), started with `expiriesSuspended`, before `attachInputLogs`. Returns the number
    /// of records replayed per worker. Throws the first record that cannot be replayed.
    public func replayInputs(_ inputs: [() throws -> RecordedInput?]) throws(WorkerInputReplayError) -> [Int] {
        precondition(inputs.count == configuration.workerCount, "one input source per worker")
        let results = Mutex<[Int: Result<Int, WorkerInputReplayError>]>([:])
        onEveryWorker { worker in
            worker.isReplaying = true
            defer { worker.isReplaying = false }
            var count = 0
            var lsn: UInt64 = 0
            do {
                while let input = try inputs[worker.index]() {
                    lsn = input.lsn
                    let problem: RecordDecodingError? = input.payload.withUnsafeBytes { bytes in
                        do throws(RecordDecodingError) {
                            try worker.replay(kind: input.kind, payload: bytes)
                            return nil
                        } catch {
                            return error
                        }
                    }
                    if let problem { throw problem }
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

    /// Lets the workers run reservation expiries again (after recovery). Expiries that came due
    /// while the engine was down or replaying run at once.
    public func resumeExpiries() {
        core.expiriesSuspended.store(false, ordering: .releasing)
        for worker in core.workers { worker.wake() }
    }

    /// Blocks until everything every worker recorded so far is durable; returns the failure when
    /// some of it cannot become durable. Returns nil at once when no logs are attached.
    public func waitUntilDurable() -> DurabilityFailure? {
        let logs = core.inputLogs
        guard !logs.isEmpty else { return nil }
        let done = OneShot<DurabilityOutcome>()
        let waiter = DurabilityWaiter(count: logs.count) { done.fulfil(DurabilityOutcome(failure: $0)) }
        for log in logs { log.whenDurable(log.lastAppendedLSN, waiter.partDone) }
        return done.wait().failure
    }

    /// `captureImage(mark:)` taken when no reservation operation is between its shards, so that
    /// every home record and hold is exactly as its worker's log says at its mark, and replaying
    /// the logs from the marks gives back the engine's state. New reserve, commit and release
    /// requests wait (on their worker) while the operations in flight finish, at most
    /// `waitMillisecondsMax`; events and queries go on. Returns nil when they did not finish in
    /// time (try again later). Blocks the caller; not for event loops.
    public func captureQuiescentImage(waitMillisecondsMax: Int = 2000,
                                      mark: @escaping @Sendable (Int) -> UInt64) -> LedgerImage? {
        core.reservationGateClosed.store(true, ordering: .sequentiallyConsistent)
        defer {
            core.reservationGateClosed.store(false, ordering: .sequentiallyConsistent)
            for worker in core.workers { worker.wake() }
        }
        let deadline = monotonicMilliseconds() + Int64(waitMillisecondsMax)
        while core.reservationsInFlight.load(ordering: .sequentiallyConsistent) > 0 {
            if monotonicMilliseconds() > deadline { return nil }
            usleep(100)
        }
        return captureImage(mark: mark)
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

extension ShardWorker {
    /// Wraps a reservation's completion so that its reply waits until every record it depends on
    /// is durable: all were appended before the reply is made (the home's own, and the parts'
    /// records, appended before their answers were sent), so waiting for each log's position at
    /// reply time covers them. A failure turns the reply into `ReservationError.notDurable`.
    func durableCompletion(_ completion: @escaping ReservationCompletion) -> ReservationCompletion {
        let logs = core.inputLogs
        return { reply in
            let waiter = DurabilityWaiter(count: logs.count) { failure in
                guard let failure else { return completion(reply) }
                completion(ReservationReply(id: reply.id, state: reply.state, lines: [], expiresAtMilliseconds: 0,
                                            replayed: false, error: .notDurable(failure.reason)))
            }
            for log in logs { log.whenDurable(log.lastAppendedLSN, waiter.partDone) }
        }
    }
}
