#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Atomics
import Synchronization

/// What `submit` did with a request.
public enum SubmitResult: Sendable, Equatable {
    /// Queued; the completion will run once, on a worker thread.
    case accepted
    /// The worker's inbox is full: nothing was queued and the completion will not run. Back off
    /// (stop reading from the client) and submit again.
    case inboxFull
}

/// State shared by the engine facade and its workers.
final class EngineCore: @unchecked Sendable {
    let configuration: LedgerConfiguration
    let catalog: Catalog
    let clock: EngineClock
    let rejectionLog: RejectionLog
    /// Every reservation's home shard by id (shared by the cores; `ReservationDirectory`).
    let reservationDirectory = ReservationDirectory()
    /// Set once in `Engine.init`, read-only afterwards.
    var workers: [ShardWorker] = []
    let channelDefinitions = Mutex<[ChannelID: ChannelDefinition]>([:])
    /// Serialises channel changes so every worker applies them in one order.
    let channelChangeLock = Mutex<Void>(())
    /// Internal tasks queued and not yet run (shard-to-shard messages and batch parts queued past
    /// the inbox bound): `Engine.waitUntilIdle()` waits for it to reach zero. Incremented before the
    /// hand-over, decremented after the task ran, so zero means no such work is in flight.
    let trackedInternalTasks = ManagedAtomic<Int>(0)
    /// One input log per worker when the engine is durable (set once by `attachInputLogs`, before
    /// serving), else empty.
    var inputLogs: [WorkerInputLog] = []
    /// While true the workers run no reservation expiries (recovery replays them from the logs).
    let expiriesSuspended: ManagedAtomic<Bool>
    /// Set once a message to another worker was dropped because its record could not become
    /// stable (a failed journal): records and holds may disagree until the restart.
    let messageDropped = ManagedAtomic<Bool>(false)
    /// Numbers channel changes engine-wide (recorded with them; recovery keeps the newest).
    let channelChangeSequence = ManagedAtomic<UInt64>(0)

    init(configuration: LedgerConfiguration, catalog: Catalog, clock: EngineClock, expiriesSuspended: Bool) {
        self.expiriesSuspended = ManagedAtomic(expiriesSuspended)
        self.configuration = configuration
        self.catalog = catalog
        self.clock = clock
        rejectionLog = RejectionLog(capacity: configuration.rejectionLogCapacity)
    }

    @inline(__always) func workerIndex(ofShard shard: Int) -> Int { shard % configuration.workerCount }
    @inline(__always) func shardIndex(of sku: SKUID) -> Int { catalog.shardIndex(of: sku) }
}

/// The in-memory sharded ATP ledger: applies stock events, answers availability queries, and
/// reserves, commits and releases stock atomically. See docs/ARCHITECTURE.md and docs/SEMANTICS.md.
///
/// Threads: `workerCount` worker threads own the shards. The `submit` functions are lock-free and
/// may be called from any thread (I/O event loops included); their completions run on a worker
/// thread and must be quick. The blocking and `async` conveniences are for tools and tests.
public final class Engine: Sendable {
    let core: EngineCore
    private let isShutDown = ManagedAtomic<Bool>(false)

    /// Starts the worker threads, or with `hosts` (one per worker) runs core `i` on `hosts[i]`
    /// instead: thread-per-core, where a server's event loops own the shards and execute requests
    /// for them where they are read (`answerInline`). Throws when the configuration is invalid.
    /// With `expiriesSuspended` no reservation expires until `resumeExpiries()` (recovery replays first).
    /// `catalog` (default: a new one) must place SKUs as `configuration.placement` says.
    public init(configuration: LedgerConfiguration = LedgerConfiguration(), catalog: Catalog? = nil,
                clock: EngineClock = .system(), expiriesSuspended: Bool = false,
                hosts: [any CoreHost]? = nil) throws(ConfigurationError) {
        try configuration.validate()
        if let hosts, hosts.count != configuration.workerCount {
            throw ConfigurationError(key: "workerCount", value: "\(configuration.workerCount)",
                                     reason: "must equal the number of core hosts (\(hosts.count))")
        }
        let catalog = catalog ?? Catalog(placement: configuration.placement)
        guard catalog.placement == configuration.placement else {
            throw ConfigurationError(key: "skuPlacement", value: "\(configuration.placement)",
                                     reason: "the catalog places SKUs \(catalog.placement)")
        }
        core = EngineCore(configuration: configuration, catalog: catalog, clock: clock,
                          expiriesSuspended: expiriesSuspended)
        core.workers = (0..<configuration.workerCount).map { ShardWorker(index: $0, core: core, host: hosts?[$0]) }
        for worker in core.workers { worker.start() }
    }

    /// Whether the cores run on hosts (thread-per-core) rather than worker threads of their own.
    public var isHosted: Bool { core.workers.first?.host != nil }

    /// The core whose host thread is the calling thread, or nil (also for an engine with worker
    /// threads of its own). Cost: one check per core.
    public func coreOfCurrentThread() -> Int? {
        guard isHosted else { return nil }
        return core.workers.firstIndex { $0.isDrivingThread }
    }

    /// The core (worker) that owns `sku`'s shard.
    public func coreIndex(of sku: SKUID) -> Int { core.workerIndex(ofShard: core.shardIndex(of: sku)) }

    /// Whether core `coreIndex` can answer `query` by itself: it owns the SKU's shard, or the SKU
    /// is unknown (`SKUID.unknown` has no cells anywhere, and every core has the channel table).
    @inline(__always) public func canAnswer(_ query: AvailabilityQuery, onCore coreIndex: Int) -> Bool {
        query.sku == .unknown || self.coreIndex(of: query.sku) == coreIndex
    }

    deinit { shutdown() }

    /// The configuration in force.
    public var configuration: LedgerConfiguration { core.configuration }
    /// The name tables.
    public var catalog: Catalog { core.catalog }
    /// The clock expiries are measured against.
    public var clock: EngineClock { core.clock }

    /// The shard that owns `sku`'s cells.
    public func shardIndex(of sku: SKUID) -> Int { core.shardIndex(of: sku) }
    /// The shard that decides a new reservation (its home): its first line's SKU's shard, or the
    /// id's hashed shard when the first SKU is unknown (docs/ARCHITECTURE.md, "Reservations").
    public func homeShardIndex(of request: ReserveRequest) -> Int {
        ReservationHome.shard(of: request, catalog: catalog, shardCount: configuration.shardCount)
    }

    /// The shard where reservation `id` lives: its record's (or its reserve's, while decided), or
    /// for an id the engine does not know the id's hashed shard, which answers that it is unknown.
    /// Costs one lookup in the shared directory (a striped lock).
    public func homeShardIndex(of id: ReservationID) -> Int {
        core.reservationDirectory.home(of: id)
            ?? ReservationHome.hashedShard(of: id, shardCount: configuration.shardCount)
    }

    /// Stops the workers after they finish the work already queued. Idempotent.
    public func shutdown() {
        guard isShutDown.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        for worker in core.workers { worker.stop() }
    }

    // MARK: - Events

    /// Queues a batch of events. Each event goes to its SKU's shard; the completion gets one
    /// outcome per event once every shard has applied its part. Cost: O(batch) routing, lock-free.
    @discardableResult
    public func submit(_ batch: EventBatch, completion: @escaping @Sendable (EventBatchResult) -> Void) -> SubmitResult {
        let workerCount = configuration.workerCount
        if workerCount == 1 || batch.events.isEmpty {
            let aggregate = EventBatchAggregate(count: batch.events.count, parts: 1, completion: completion)
            return core.workers[0].submit(EventApplyTask(batch: batch, indices: nil, aggregate: aggregate))
                ? .accepted : .inboxFull
        }
        var indicesByWorker = [[Int32]](repeating: [], count: workerCount)
        for (i, event) in batch.events.enumerated() {
            indicesByWorker[core.workerIndex(ofShard: core.shardIndex(of: event.sku))].append(Int32(i))
        }
        let parts = indicesByWorker.filter { !$0.isEmpty }.count
        let aggregate = EventBatchAggregate(count: batch.events.count, parts: parts, completion: completion)
        return dispatch(indicesByWorker) { EventApplyTask(batch: batch, indices: $0, aggregate: aggregate) }
    }

    /// Queues the parts of a batch: the first part may be refused (then nothing is queued); once
    /// one part is queued, the rest are queued past the inbox bound so the batch stays whole.
    private func dispatch(_ indicesByWorker: [[Int32]], _ makeTask: ([Int32]) -> WorkerTask) -> SubmitResult {
        var queuedAny = false
        for (worker, indices) in indicesByWorker.enumerated() where !indices.isEmpty {
            let task = makeTask(indices)
            if queuedAny {
                if !core.workers[worker].submit(task) { core.workers[worker].submitTrackedInternal(task) }
            } else {
                guard core.workers[worker].submit(task) else { return .inboxFull }
                queuedAny = true
            }
        }
        return .accepted
    }

    // MARK: - Queries

    /// Queues a batch of availability queries; the completion gets the answers in batch order, with
    /// the cells behind them unless `collectingCells` is false (then `cells(of:)` is empty for all);
    /// each core copies at most `cellsMax` cells (answers past it: `QueryAnswer.cellsOmitted`).
    @discardableResult
    public func submit(queries: [AvailabilityQuery], collectingCells: Bool = true, cellsMax: Int = .max,
                       completion: @escaping @Sendable (QueryBatchResult) -> Void) -> SubmitResult
    {
        let workerCount = configuration.workerCount
        var indicesByWorker = [[Int32]](repeating: [], count: workerCount)
        for (i, query) in queries.enumerated() {
            indicesByWorker[core.workerIndex(ofShard: core.shardIndex(of: query.sku))].append(Int32(i))
        }
        if queries.isEmpty { indicesByWorker[0] = [] }
        let nonEmpty = indicesByWorker.filter { !$0.isEmpty }.count
        let aggregate = QueryBatchAggregate(count: queries.count, parts: max(1, nonEmpty), completion: completion)
        if nonEmpty == 0 {
            return core.workers[0].submit(QueryTask(queries: [], indices: [], part: 0, aggregate: aggregate))
                ? .accepted : .inboxFull
        }
        var part: Int32 = 0
        return dispatch(indicesByWorker) { indices in
            defer { part += 1 }
            return QueryTask(queries: queries, indices: indices, part: part, aggregate: aggregate,
                             collectingCells: collectingCells, cellsMax: cellsMax)
        }
    }

    /// Queues a task that does nothing but call `completion` on core `coreIndex`'s thread, through
    /// the same inbox as requests: the time until it runs is how long that core's queue is (the
    /// apply-lag probe of a metrics scrape). Counted in no counter.
    @discardableResult
    public func submitProbe(toCore coreIndex: Int, completion: @escaping @Sendable () -> Void) -> SubmitResult {
        precondition(coreIndex >= 0 && coreIndex < configuration.workerCount, "core \(coreIndex)")
        return core.workers[coreIndex].submit(ClosureTask { _ in completion() }) ? .accepted : .inboxFull
    }

    /// Queues queries that `resolve` builds on the core's own thread (name lookups there instead of
    /// on the caller's: an event loop's time is the scarcer one), then answers them there. Only for
    /// an engine with one core, where every SKU is the core's; with more it is a programming error
    /// (which core owns a SKU is only known once its name is resolved).
    @discardableResult
    public func submit(resolvingOnCore resolve: @escaping @Sendable (inout [AvailabilityQuery]) -> Void,
                       collectingCells: Bool = true, cellsMax: Int = .max,
                       completion: @escaping @Sendable (QueryBatchResult) -> Void) -> SubmitResult {
        precondition(configuration.workerCount == 1, "resolving on the core needs a one-core engine")
        let task = ClosureTask { worker in
            var queries: [AvailabilityQuery] = []
            resolve(&queries)
            let aggregate = QueryBatchAggregate(count: queries.count, parts: 1, completion: completion)
            QueryTask(queries: queries, indices: Array(0..<Int32(queries.count)), part: 0, aggregate: aggregate,
                      collectingCells: collectingCells, cellsMax: cellsMax)
                .run(on: worker)
        }
        return core.workers[0].submit(task) ? .accepted : .inboxFull
    }

    /// Answers `queries` at once on the calling thread, when it is the host of `coreIndex` and every
    /// query's SKU belongs to that core (an unknown name's id routes like any other); otherwise returns nil and
    /// does nothing. The inline path of a thread-per-core server: no hand-off, no wake-up. Messages
    /// from other cores queued before the call are applied first (so a reply another core sent
    /// before is never overtaken), and reservations due by now expire first.
    public func answerInline(_ queries: [AvailabilityQuery], onCore coreIndex: Int) -> QueryBatchResult? {
        var batch = InlineQueryBatch()
        batch.queries = queries
        guard answerInline(&batch, onCore: coreIndex) else { return nil }
        return QueryBatchResult(answers: batch.answers, parts: [batch.cells])
    }

    /// `answerInline(_:onCore:)` into reusable storage: answers `batch.queries` into `batch.answers`
    /// (and its cells) and returns true, or returns false with nothing done. Allocates nothing once
    /// the batch's arrays have grown to the request's size.
    public func answerInline(_ batch: inout InlineQueryBatch, onCore coreIndex: Int) -> Bool {
        let worker = core.workers[coreIndex]
        guard worker.isDrivingThread else { return false }
        for query in batch.queries where !canAnswer(query, onCore: coreIndex) { return false }
        worker.prepareInline()
        let count = batch.queries.count
        batch.answers.removeAll(keepingCapacity: true)
        batch.cells.removeAll(keepingCapacity: true)
        guard count > 0 else { return true }
        if batch.indices.count > count { batch.indices.removeLast(batch.indices.count - count) }
        while batch.indices.count < count { batch.indices.append(Int32(batch.indices.count)) }
        batch.answers.append(contentsOf: repeatElement(QueryAnswer.unknown, count: count))
        batch.answers.withUnsafeMutableBufferPointer { answers in
            worker.ledger.answer(batch.queries, indices: batch.indices, part: 0, answers: answers.baseAddress!,
                                 cells: &batch.cells, collectingCells: batch.collectsCells, cellsMax: batch.cellsMax)
        }
        return true
    }

    // MARK: - Reservations

    /// Queues a reservation. Idempotent by id: a known id answers with its first result.
    @discardableResult
    public func submitReserve(_ request: ReserveRequest, completion: @escaping ReservationCompletion) -> SubmitResult {
        submitReservation(.reserve(request), id: request.id, home: homeShardIndex(of: request), completion: completion)
    }

    /// Queues a commit: held units become committed units.
    @discardableResult
    public func submitCommit(_ id: ReservationID, completion: @escaping ReservationCompletion) -> SubmitResult {
        submitReservation(.commit, id: id, home: homeShardIndex(of: id), completion: completion)
    }

    /// Queues a release: held (or committed, not yet shipped) units return to sellable.
    @discardableResult
    public func submitRelease(_ id: ReservationID, completion: @escaping ReservationCompletion) -> SubmitResult {
        submitReservation(.release, id: id, home: homeShardIndex(of: id), completion: completion)
    }

    private func submitReservation(_ operation: ReservationOperation, id: ReservationID, home: Int,
                                   completion: @escaping ReservationCompletion) -> SubmitResult {
        let task = ReservationTask(operation: operation, id: id, home: home, completion: completion)
        return core.workers[core.workerIndex(ofShard: home)].submit(task) ? .accepted : .inboxFull
    }

    /// The core that owns reservation `id`'s home shard: where its record lives and every operation
    /// on it is decided (`homeShardIndex(of:)` for an id).
    public func coreIndex(ofReservation id: ReservationID) -> Int {
        core.workerIndex(ofShard: homeShardIndex(of: id))
    }

    /// The core that decides a new reserve: the owner of its first line's SKU (`homeShardIndex(of:)`
    /// for a request). A shard-aware client that sends the reserve there has it run inline.
    public func coreIndex(ofReserve request: ReserveRequest) -> Int {
        core.workerIndex(ofShard: homeShardIndex(of: request))
    }

    /// Reserves at once on the calling thread, when it is the host of `coreIndex` and that core owns
    /// the reserve's home shard (`coreIndex(ofReserve:)`); otherwise returns false and does
    /// nothing. The inline path of a thread-per-core server: no hand-off, no wake-up. Lines on other
    /// cores are prepared there as for `submitReserve`.
    ///
    /// `completion` is called exactly once: before this returns when nothing has to be waited for
    /// (no journal, a refusal, a replay of a settled id), or later — on a journal flusher's thread
    /// once the record is durable, or on this thread once other cores answered.
    public func reserveInline(_ request: ReserveRequest, onCore coreIndex: Int,
                              completion: @escaping ReservationCompletion) -> Bool {
        performInline(.reserve(request), id: request.id, home: homeShardIndex(of: request), onCore: coreIndex,
                      completion: completion)
    }

    /// `commit` inline, as `reserveInline(_:onCore:completion:)`.
    public func commitInline(_ id: ReservationID, onCore coreIndex: Int,
                             completion: @escaping ReservationCompletion) -> Bool {
        performInline(.commit, id: id, home: homeShardIndex(of: id), onCore: coreIndex, completion: completion)
    }

    /// `release` inline, as `reserveInline(_:onCore:completion:)`.
    public func releaseInline(_ id: ReservationID, onCore coreIndex: Int,
                              completion: @escaping ReservationCompletion) -> Bool {
        performInline(.release, id: id, home: homeShardIndex(of: id), onCore: coreIndex, completion: completion)
    }

    private func performInline(_ operation: ReservationOperation, id: ReservationID, home: Int, onCore coreIndex: Int,
                               completion: @escaping ReservationCompletion) -> Bool {
        let worker = core.workers[coreIndex]
        guard worker.isDrivingThread, core.workerIndex(ofShard: home) == coreIndex else { return false }
        worker.performInline(operation, id: id, homeShard: home, completion: completion)
        return true
    }

    // MARK: - Channels

    /// Defines or replaces a channel. Blocks until every worker uses the new definition (and, when
    /// durable, until it is recorded durably: `.notDurable` when the journal failed).
    public func defineChannel(_ definition: ChannelDefinition) throws(ChannelDefinitionError) {
        try definition.validate(quantityMax: configuration.quantityMax)
        let refused = ManagedAtomic<Bool>(false)
        core.channelChangeLock.withLock { _ in
            let sequence = core.channelChangeSequence.wrappingIncrementThenLoad(ordering: .relaxed)
            core.channelDefinitions.withLock { $0[definition.id] = definition }
            onEveryWorker { worker in
                if worker.ledger.applyChannelChange(define: definition, remove: nil, sequence: sequence) == nil {
                    refused.store(true, ordering: .relaxed)
                }
            }
        }
        if refused.load(ordering: .relaxed) || waitUntilDurable() != nil { throw .notDurable }
    }

    /// Removes a channel. Throws `.unknownChannel` when it does not exist (`.notDurable` as in
    /// `defineChannel`).
    public func removeChannel(_ id: ChannelID) throws(ChannelDefinitionError) {
        let refused = ManagedAtomic<Bool>(false)
        let removed: Bool = core.channelChangeLock.withLock { _ in
            guard core.channelDefinitions.withLock({ $0.removeValue(forKey: id) }) != nil else { return false }
            let sequence = core.channelChangeSequence.wrappingIncrementThenLoad(ordering: .relaxed)
            onEveryWorker { worker in
                if worker.ledger.applyChannelChange(define: nil, remove: id, sequence: sequence) == nil {
                    refused.store(true, ordering: .relaxed)
                }
            }
            return true
        }
        if !removed { throw .unknownChannel }
        if refused.load(ordering: .relaxed) || waitUntilDurable() != nil { throw .notDurable }
    }

    /// Every channel, by id.
    public func channels() -> [ChannelDefinition] {
        core.channelDefinitions.withLock { Array($0.values) }.sorted { $0.id < $1.id }
    }

    /// One channel's definition.
    public func channel(_ id: ChannelID) -> ChannelDefinition? {
        core.channelDefinitions.withLock { $0[id] }
    }

    // MARK: - Rejections

    /// Up to `limit` rejected events after log position `afterSequence`, oldest first.
    public func rejections(afterSequence: UInt64 = 0, limit: Int = 1000) -> RejectionLogPage {
        core.rejectionLog.read(afterSequence: afterSequence, limit: limit)
    }

    /// Logs events refused before they reached a shard (a decoder's invalid names, say).
    /// They are counted by reason in `statistics()` like the shards' own rejections.
    public func recordRejections(_ rejections: [RejectedEvent]) {
        core.rejectionLog.record(rejections)
    }

    // MARK: - Worker control

    /// Stops with a clear message when a blocking call is made on a core's host thread, where it
    /// would wait for work that only that thread can do.
    func preconditionNotOnAHost(_ function: StaticString = #function) {
        precondition(!core.workers.contains { $0.isDrivingThread },
                     "Engine.\(function) blocks and was called on a core's host thread")
    }

    /// Runs `body` on every worker thread and waits for all. Not for event loops: it blocks.
    func onEveryWorker(_ body: @escaping (ShardWorker) -> Void) {
        preconditionNotOnAHost()
        let waits = core.workers.map { worker -> OneShot<Bool> in
            let done = OneShot<Bool>()
            worker.submitInternal(ClosureTask { worker in
                body(worker)
                done.fulfil(true)
            })
            return done
        }
        for wait in waits { _ = wait.wait() }
    }

    /// Runs `body` on every core's thread (worker or host) and returns what each returned, in core
    /// order (diagnostics and tests: per-thread counters). Blocks; not on a host's thread.
    package func onEveryCore<T: Sendable>(_ body: @escaping @Sendable () -> T) -> [T] {
        let results = OneShotCollector<T>(count: configuration.workerCount)
        onEveryWorker { worker in results.add(body(), at: worker.index) }
        return results.values
    }

    /// Moves a manual clock forward and wakes the workers so due reservations expire.
    public func advanceClock(byMilliseconds milliseconds: Int64) {
        clock.advance(byMilliseconds: milliseconds)
        for worker in core.workers { worker.wake() }
    }

    /// Waits until the work queued before this call, and the shard messages it caused, is done,
    /// including the expiry of every reservation due by the clock's current time. Work submitted
    /// concurrently by other threads may delay the return; it never makes it return early.
    public func waitUntilIdle() {
        preconditionNotOnAHost()
        // 1. A barrier through every external inbox: inboxes are FIFO, so once it ran, every task
        //    accepted before this call has run its first step.
        let waits = core.workers.map { worker -> OneShot<Bool> in
            let done = OneShot<Bool>()
            let barrier = ClosureTask { _ in done.fulfil(true) }
            while !worker.submit(barrier) { usleep(50) }
            return done
        }
        for wait in waits { _ = wait.wait() }
        // 2. Rounds of internal barriers until no shard message is in flight. Each barrier runs the
        //    worker's expiry check itself (back-to-back barriers may all run in one drain of the
        //    internal queue, without the loop's own check in between); an expiry's messages to other
        //    shards are tracked, so the loop goes on until they are done too.
        repeat {
            onEveryWorker { $0.runExpiries() }
        } while core.trackedInternalTasks.load(ordering: .acquiring) > 0
    }
}
