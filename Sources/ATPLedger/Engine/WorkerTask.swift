import Atomics
import Synchronization

/// A unit of work for a shard worker. Tasks are batches: one task carries many events or queries.
///
/// Safety argument for `@unchecked Sendable`: a task is built by its producer, handed over once
/// through a worker's inbox (which orders the hand-over with release/acquire), and from then on
/// touched only by that worker's thread. Shared results go through the fenced aggregates below.
class WorkerTask: @unchecked Sendable {
    /// Set by the producer before the hand-over when the task is counted in
    /// `EngineCore.trackedInternalTasks` (shard messages, batch parts queued past the inbox bound).
    var isTracked = false

    /// Runs on the worker's thread.
    func run(on worker: ShardWorker) {}
}

/// Applies a worker's share of an event batch.
final class EventApplyTask: WorkerTask, @unchecked Sendable {
    let batch: EventBatch
    let indices: [Int32]?
    let aggregate: EventBatchAggregate

    init(batch: EventBatch, indices: [Int32]?, aggregate: EventBatchAggregate) {
        self.batch = batch
        self.indices = indices
        self.aggregate = aggregate
    }

    /// Records the part (when durable), applies it, and counts the part done once its record is
    /// durable. A refused record applies nothing and fails the batch.
    override func run(on worker: ShardWorker) {
        let now = worker.core.clock.nowMilliseconds()
        switch worker.ledger.applyEvents(batch, indices: indices, nowMilliseconds: now, outcomes: aggregate.outcomes) {
        case .success(let lsn):
            guard lsn > 0 else { return aggregate.partDone() }
            let aggregate = aggregate
            worker.whenDurable([DurablePosition(core: worker.index, lsn: lsn)]) { failure in
                if let failure { aggregate.fail(failure) }
                aggregate.partDone()
            }
        case .failure(let failure):
            let unknown = EventOutcomeCode(rejected: .malformed)
            if let indices {
                for index in indices { aggregate.outcomes[Int(index)] = unknown }
            } else {
                for index in 0..<aggregate.count { aggregate.outcomes[index] = unknown }
            }
            aggregate.fail(failure)
            aggregate.partDone()
        }
    }
}

/// Answers a worker's share of a query batch.
final class QueryTask: WorkerTask, @unchecked Sendable {
    let queries: [AvailabilityQuery]
    let indices: [Int32]
    let part: Int32
    let aggregate: QueryBatchAggregate
    /// Whether the answers carry their cells (some request of the batch asked for them).
    let collectingCells: Bool
    /// The most cells this part copies out (`QueryAnswer.cellsOmitted` past it).
    let cellsMax: Int

    init(queries: [AvailabilityQuery], indices: [Int32], part: Int32, aggregate: QueryBatchAggregate,
         collectingCells: Bool = true, cellsMax: Int = .max) {
        self.cellsMax = cellsMax
        self.queries = queries
        self.indices = indices
        self.part = part
        self.aggregate = aggregate
        self.collectingCells = collectingCells
    }

    override func run(on worker: ShardWorker) {
        var cells: [CellAvailability] = []
        if collectingCells { cells.reserveCapacity(indices.count) }
        worker.ledger.answer(queries, indices: indices, part: part, answers: aggregate.answers, cells: &cells,
                             collectingCells: collectingCells, cellsMax: cellsMax)
        aggregate.partDone(part: Int(part), cells: cells)
    }
}

/// A reserve, commit or release, run on the core of the home shard it was routed to.
final class ReservationTask: WorkerTask, @unchecked Sendable {
    let operation: ReservationOperation
    let id: ReservationID
    let home: Int
    let completion: ReservationCompletion

    init(operation: ReservationOperation, id: ReservationID, home: Int, completion: @escaping ReservationCompletion) {
        self.operation = operation
        self.id = id
        self.home = home
        self.completion = completion
    }

    override func run(on worker: ShardWorker) {
        worker.ledger.perform(operation, id: id, homeShard: home, nowMilliseconds: worker.core.clock.nowMilliseconds(),
                              completion: completion)
    }
}

/// A message from another core's ledger.
final class CoreMessageTask: WorkerTask, @unchecked Sendable {
    let message: CoreMessage

    init(_ message: CoreMessage) {
        self.message = message
    }

    override func run(on worker: ShardWorker) {
        worker.ledger.receive(message, nowMilliseconds: worker.core.clock.nowMilliseconds())
    }
}

/// Runs a closure on a worker's thread (channel changes, statistics, barriers, snapshots).
final class ClosureTask: WorkerTask, @unchecked Sendable {
    let body: (ShardWorker) -> Void

    init(_ body: @escaping (ShardWorker) -> Void) {
        self.body = body
    }

    override func run(on worker: ShardWorker) { body(worker) }
}

/// Collects the per-worker parts of one event batch and answers once, from the last worker.
///
/// Safety argument for `@unchecked Sendable`: `outcomes` is written at disjoint indices by the
/// parts (each event index belongs to exactly one part); `remaining` is decremented with
/// acquire-release ordering, so the last part sees every other part's writes before it reads.
final class EventBatchAggregate: @unchecked Sendable {
    let outcomes: UnsafeMutablePointer<EventOutcomeCode>
    let count: Int
    private let remaining: ManagedAtomic<Int>
    private let completion: @Sendable (EventBatchResult) -> Void
    private let failure = Mutex<DurabilityFailure?>(nil)

    init(count: Int, parts: Int, completion: @escaping @Sendable (EventBatchResult) -> Void) {
        self.count = count
        outcomes = .allocate(capacity: max(count, 1))
        outcomes.initialize(repeating: .pending, count: max(count, 1))
        remaining = ManagedAtomic(parts)
        self.completion = completion
    }

    deinit { outcomes.deallocate() }

    /// A part could not be made durable: the batch answers with `durabilityFailure`.
    func fail(_ partFailure: DurabilityFailure) {
        failure.withLock { if $0 == nil { $0 = partFailure } }
    }

    func partDone() {
        guard remaining.loadThenWrappingDecrement(ordering: .acquiringAndReleasing) == 1 else { return }
        var result: [EventOutcome] = []
        result.reserveCapacity(count)
        for i in 0..<count {
            assert(outcomes[i] != .pending, "event \(i) was not applied by any part")
            result.append(outcomes[i].outcome)
        }
        var batchResult = EventBatchResult(outcomes: result)
        batchResult.durabilityFailure = failure.withLock { $0 }
        completion(batchResult)
    }
}

/// Collects the per-worker parts of one query batch.
///
/// Safety argument for `@unchecked Sendable`: parts write `answers` at disjoint indices and `parts`
/// at their own index; the acquire-release countdown orders those writes before the final read.
final class QueryBatchAggregate: @unchecked Sendable {
    let answers: UnsafeMutablePointer<QueryAnswer>
    private let cellParts: UnsafeMutablePointer<[CellAvailability]>
    private let count: Int
    private let partCount: Int
    private let remaining: ManagedAtomic<Int>
    private let completion: @Sendable (QueryBatchResult) -> Void

    init(count: Int, parts: Int, completion: @escaping @Sendable (QueryBatchResult) -> Void) {
        self.count = count
        partCount = parts
        answers = .allocate(capacity: max(count, 1))
        answers.initialize(repeating: .unknown, count: max(count, 1))
        cellParts = .allocate(capacity: max(parts, 1))
        cellParts.initialize(repeating: [], count: max(parts, 1))
        remaining = ManagedAtomic(parts)
        self.completion = completion
    }

    deinit {
        answers.deinitialize(count: max(count, 1))
        answers.deallocate()
        cellParts.deinitialize(count: max(partCount, 1))
        cellParts.deallocate()
    }

    func partDone(part: Int, cells: [CellAvailability]) {
        cellParts[part] = cells
        guard remaining.loadThenWrappingDecrement(ordering: .acquiringAndReleasing) == 1 else { return }
        completion(QueryBatchResult(
            answers: Array(UnsafeBufferPointer(start: answers, count: count)),
            parts: Array(UnsafeBufferPointer(start: cellParts, count: partCount))))
    }
}
