import ATPThreads
import Atomics
import CATPSupport
import DequeModule
import Synchronization

/// A worker thread and the shards it owns (shards `index`, `index + workerCount`, ...). It drains
/// its inboxes in order, applies each task to its shards, runs reservation expiries, and parks when
/// idle. It is the only thread that touches its shards: no locks on the hot path.
///
/// Safety argument for `@unchecked Sendable`: producers on other threads call only `submit`,
/// `submitInternal` and `wake`, which use the lock-free rings, the mutex-guarded overflow list and
/// the parker. Everything else (shards, channel table, local message queue) is touched only by the
/// worker's own thread, from `run()`.
final class ShardWorker: ShardRouter, @unchecked Sendable {
    let index: Int
    unowned(unsafe) let core: EngineCore
    private var ownedShards: [Shard?]
    /// Unretained references to the owned shards by shard index (nil for others), for the event
    /// path: a class reference loaded from an array costs a retain/release pair, three per event.
    /// Safe because `ownedShards` (set once in init) keeps every shard alive for the worker's life.
    private let shardRefs: UnsafeMutableBufferPointer<Unmanaged<Shard>?>
    /// Shards of this worker, for iteration.
    private(set) var shards: [Shard] = []
    let channels = ChannelTable()

    private let external: TaskRing
    private let internalRing: TaskRing
    private let overflow = Mutex(Deque<WorkerTask>())
    private let overflowCount = ManagedAtomic<Int>(0)
    private var localMessages = Deque<(ShardMessage, Int)>()
    private let parker = Parker()
    private let stopRequested = ManagedAtomic<Bool>(false)
    private let stopped = OneShot<Bool>()
    private var lastExpiryCheckMilliseconds: Int64 = .min
    /// Tasks completed (for statistics), written by the worker only.
    let tasksCompleted = ManagedAtomic<UInt64>(0)
    /// Records this worker's inputs when the engine is durable (set once, before serving).
    var recorder: WorkerRecorder?
    /// True while recorded inputs are replayed: outgoing shard messages are dropped.
    var isReplaying = false
    /// The newest channel change this worker applied (`EngineCore.channelChangeSequence`).
    var channelChangeSequence: UInt64 = 0
    /// Reservation requests held back while a quiescent snapshot cut waits (in arrival order).
    private var gatedReservations = Deque<ReservationTask>()

    init(index: Int, core: EngineCore) {
        self.index = index
        self.core = core
        let configuration = core.configuration
        external = TaskRing(capacity: configuration.inboxCapacityRequests)
        internalRing = TaskRing(capacity: configuration.internalRingCapacityMessages)
        ownedShards = Array(repeating: nil, count: configuration.shardCount)
        for shardIndex in stride(from: index, to: configuration.shardCount, by: configuration.workerCount) {
            let shard = Shard(index: shardIndex, configuration: configuration)
            ownedShards[shardIndex] = shard
            shards.append(shard)
        }
        shardRefs = .allocate(capacity: configuration.shardCount)
        for shardIndex in 0..<configuration.shardCount {
            shardRefs.initializeElement(at: shardIndex, to: ownedShards[shardIndex].map { Unmanaged.passUnretained($0) })
        }
    }

    deinit { shardRefs.deallocate() }

    /// Runs `body` with the shard `index` (which this worker must own) without retaining it: for
    /// per-item loops on the worker thread.
    @inline(__always) func withShard<R>(_ index: Int, _ body: (Shard) -> R) -> R {
        shardRefs[index].unsafelyUnwrapped._withUnsafeGuaranteedRef(body)
    }

    /// The shard `index` when this worker owns it.
    func shardIfOwned(_ index: Int) -> Shard? {
        index >= 0 && index < ownedShards.count ? ownedShards[index] : nil
    }

    /// The shard `index`, which this worker must own.
    @inline(__always) func shard(_ index: Int) -> Shard {
        guard let shard = ownedShards[index] else { preconditionFailure("shard \(index) is not owned by worker \(self.index)") }
        return shard
    }

    // MARK: - Producers (any thread)

    /// Enqueues an external task; false when the inbox is full (back-pressure).
    func submit(_ task: WorkerTask) -> Bool {
        guard external.tryEnqueue(task) else { return false }
        parker.unpark()
        return true
    }

    /// Enqueues a task that must not be refused (shard-to-shard messages, parts of an accepted batch).
    func submitInternal(_ task: WorkerTask) {
        if !internalRing.tryEnqueue(task) {
            overflow.withLock { $0.append(task) }
            overflowCount.wrappingIncrement(ordering: .releasing)
        }
        parker.unpark()
    }

    /// `submitInternal(_:)` for work that `Engine.waitUntilIdle()` must wait for.
    func submitTrackedInternal(_ task: WorkerTask) {
        task.isTracked = true
        core.trackedInternalTasks.wrappingIncrement(ordering: .relaxed)
        submitInternal(task)
    }

    /// Wakes the worker (a manual clock moved, or a stop was requested).
    func wake() { parker.unpark() }

    /// Requests across-the-board stop and waits for the thread to finish what it has.
    func stop() {
        stopRequested.store(true, ordering: .releasing)
        parker.unpark()
        _ = stopped.wait()
    }

    /// External tasks waiting.
    var inboxDepth: Int { external.depth }

    // MARK: - ShardRouter (worker thread)

    func send(_ message: ShardMessage, to shard: Int) {
        if isReplaying { return }
        if ownedShards[shard] != nil {
            localMessages.append((message, shard))
        } else {
            core.workers[shard % core.configuration.workerCount].submitTrackedInternal(
                ShardMessageTask(message: message, target: shard))
        }
    }

    @inline(__always) func shardIndex(of sku: SKUID) -> Int {
        Int(sku.rawValue) & (core.configuration.shardCount - 1)
    }

    func reservationStarted() { core.reservationsInFlight.wrappingIncrement(ordering: .sequentiallyConsistent) }
    func reservationSettled() { core.reservationsInFlight.wrappingDecrement(ordering: .sequentiallyConsistent) }

    /// Delivers a shard message to `target` (owned by this worker), recording it first when durable.
    func receive(_ message: ShardMessage, target: Int) {
        let now = core.clock.nowMilliseconds()
        // A refused record cannot stop a conversation between shards already under way: the message
        // is applied, and the reply it leads to fails (it waits for this log's durability).
        if let recorder { _ = recorder.recordMessage(message, target: target, nowMilliseconds: now) }
        shard(target).receive(message, nowMilliseconds: now, router: self)
    }

    /// Whether a reservation request must wait: a quiescent snapshot cut is being taken, or earlier
    /// requests are still waiting (order is kept). When it must, the worker keeps it.
    func holdsBack(_ task: ReservationTask) -> Bool {
        guard core.reservationGateClosed.load(ordering: .relaxed) || !gatedReservations.isEmpty else { return false }
        gatedReservations.append(task)
        return true
    }

    /// Runs the reservation requests held back, once the gate is open again.
    private func runGatedReservations() {
        while !gatedReservations.isEmpty, !core.reservationGateClosed.load(ordering: .relaxed) {
            let task = gatedReservations.removeFirst()
            task.perform(on: self)
            while let (message, target) = localMessages.popFirst() { receive(message, target: target) }
        }
    }

    /// Applies a channel change on this worker, recording it first when durable.
    func applyChannelChange(define definition: ChannelDefinition?, remove id: ChannelID?, sequence: UInt64) {
        if let definition {
            _ = recorder?.recordChannelDefine(definition, sequence: sequence)
            channels.set(definition)
        } else if let id {
            _ = recorder?.recordChannelRemove(id, sequence: sequence)
            channels.remove(id)
        }
        channelChangeSequence = sequence
    }

    // MARK: - The loop (worker thread)

    func start() {
        startThread(name: "atp-worker-\(index)") { [self] in run() }
    }

    private func run() {
        var idleSpins = 0
        var busyIterations = 0
        while true {
            if drainOnce() {
                idleSpins = 0
                busyIterations &+= 1
                // Reading the clock costs ~20 ns: while busy, check expiries every 64 rounds only.
                if busyIterations & 63 == 0 { runExpiries() }
                continue
            }
            if idleSpins == 0 { runExpiries() }
            if stopRequested.load(ordering: .acquiring) && !hasWork() { break }
            idleSpins += 1
            if idleSpins < core.configuration.workerSpinIterations {
                atp_cpu_relax()
                continue
            }
            idleSpins = 0
            parker.park(timeoutNanoseconds: parkTimeoutNanoseconds()) { hasWork() || stopRequested.load(ordering: .acquiring) }
        }
        stopped.fulfil(true)
    }

    private func hasWork() -> Bool {
        !external.isEmpty || !internalRing.isEmpty || overflowCount.load(ordering: .acquiring) > 0 || !localMessages.isEmpty
    }

    /// Runs what is queued now: shard messages first (they finish work already accepted), then up
    /// to a bounded number of external tasks. Returns whether anything ran.
    private func drainOnce() -> Bool {
        var didWork = false
        if !gatedReservations.isEmpty && !core.reservationGateClosed.load(ordering: .relaxed) {
            runGatedReservations()
            didWork = true
        }
        while true {
            if let (message, target) = localMessages.popFirst() {
                receive(message, target: target)
            } else if let task = internalRing.dequeue() {
                runTask(task)
            } else if overflowCount.load(ordering: .acquiring) > 0, let task = overflow.withLock({ $0.popFirst() }) {
                overflowCount.wrappingDecrement(ordering: .releasing)
                runTask(task)
            } else {
                break
            }
            didWork = true
        }
        var budget = 64
        while budget > 0, let task = external.dequeue() {
            runTask(task)
            budget -= 1
            didWork = true
            while let (message, target) = localMessages.popFirst() {
                receive(message, target: target)
            }
        }
        return didWork
    }

    @inline(__always) private func runTask(_ task: WorkerTask) {
        task.run(on: self)
        // Messages the task sent were counted before this decrement, so the count never dips to 0
        // while work it caused is still queued.
        if task.isTracked { core.trackedInternalTasks.wrappingDecrement(ordering: .releasing) }
        tasksCompleted.wrappingIncrement(ordering: .relaxed)
    }

    /// Expires the reservations due by now, once per clock value. Worker thread only (the run loop,
    /// and `Engine.waitUntilIdle()`'s barriers, which cannot count on the loop reaching this call
    /// between them: `drainOnce()` keeps running internal tasks while more keep arriving).
    func runExpiries() {
        guard !core.expiriesSuspended.load(ordering: .relaxed) else { return }
        let now = core.clock.nowMilliseconds()
        guard now != lastExpiryCheckMilliseconds else { return }
        lastExpiryCheckMilliseconds = now
        for shard in shards where shard.nextExpiryMilliseconds.map({ $0 <= now }) ?? false {
            if let recorder { _ = recorder.recordExpiry(shard: shard.index, nowMilliseconds: now) }
            shard.expireDue(nowMilliseconds: now, router: self)
            while let (message, target) = localMessages.popFirst() { receive(message, target: target) }
        }
    }

    private func parkTimeoutNanoseconds() -> UInt64 {
        let now = core.clock.nowMilliseconds()
        var earliest = Int64.max
        for shard in shards { if let next = shard.nextExpiryMilliseconds { earliest = min(earliest, next) } }
        let cap: UInt64 = 50_000_000
        if earliest == .max || core.clock.isManual { return cap }
        return min(cap, UInt64(max(0, earliest - now)) * 1_000_000 + 100_000)
    }

    /// Events are applied in groups of this many, prefetching the group's index entries and cells
    /// before applying it, so that the DRAM misses of a group overlap.
    static let prefetchGroup = 16

    /// Event-path pipeline distances, in events: an index entry is prefetched this many events
    /// before its event is applied, its cell `prefetchCellDistance` events before.
    static let prefetchIndexDistance = 16
    static let prefetchCellDistance = 8
    /// Ring of pending hashes: a power of two larger than `prefetchIndexDistance`.
    static let prefetchRing = 32

    /// Applies this worker's events of `batch` (all of them when `indices` is nil) in batch order.
    /// Every shard of a worker lives on this thread, so no grouping by shard is needed: each event
    /// goes straight to its shard, through a three-step pipeline (prefetch index entries, prefetch
    /// cells, apply). Allocation-free.
    func apply(_ batch: EventBatch, indices: [Int32]?, nowMilliseconds: Int64,
               outcomes: UnsafeMutablePointer<EventOutcomeCode>) {
        let total = indices?.count ?? batch.events.count
        let shardMask = core.configuration.shardCount - 1
        batch.events.withUnsafeBufferPointer { events in
            batch.correlationIDs.withUnsafeBufferPointer { correlations in
                let shards = shardRefs
                // A rolling software pipeline: at step k the index entry of event k is prefetched,
                // the cell of event k - cellLag (whose index entry should have arrived by now), and
                // event k - applyLag is applied (its cell should have arrived). Each miss has
                // several steps' time to complete, instead of stalling the step right after it.
                let applyLag = ShardWorker.prefetchIndexDistance
                let cellLag = applyLag - ShardWorker.prefetchCellDistance
                let ringMask = ShardWorker.prefetchRing - 1
                withUnsafeTemporaryAllocation(of: Int.self, capacity: ShardWorker.prefetchRing) { hashes in
                    for k in 0..<(total + applyLag) {
                        if k < total {
                            let event = events[indices.map { Int($0[k]) } ?? k]
                            let hash = CellStore.hash(event.sku, event.location)
                            hashes[k & ringMask] = hash
                            shards[Int(event.sku.rawValue) & shardMask].unsafelyUnwrapped._withUnsafeGuaranteedRef {
                                $0.cells.prefetchIndex(hash: hash)
                            }
                        }
                        let c = k - cellLag
                        if c >= 0 && c < total {
                            let event = events[indices.map { Int($0[c]) } ?? c]
                            shards[Int(event.sku.rawValue) & shardMask].unsafelyUnwrapped._withUnsafeGuaranteedRef {
                                $0.cells.prefetchCandidateCell(hash: hashes[c & ringMask])
                            }
                        }
                        let a = k - applyLag
                        if a >= 0 {
                            let index = indices.map { Int($0[a]) } ?? a
                            let event = events[index]
                            outcomes[index] = shards[Int(event.sku.rawValue) & shardMask].unsafelyUnwrapped
                                ._withUnsafeGuaranteedRef {
                                    $0.apply(event, hash: hashes[a & ringMask], correlations: correlations,
                                             nowMilliseconds: nowMilliseconds)
                                }
                        }
                    }
                }
            }
        }
    }

    /// Moves the shards' pending rejections to the engine's log.
    func collectRejections() {
        for shard in shards where !shard.pendingRejections.isEmpty {
            core.rejectionLog.append(shard.pendingRejections)
            shard.pendingRejections.removeAll(keepingCapacity: true)
        }
    }
}
