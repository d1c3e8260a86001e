import ATPThreads
import Atomics
import CATPSupport
import DequeModule
import Synchronization

/// What drives one `CoreLedger` (the shards `index`, `index + workerCount`, ...): its own worker
/// thread, or a `CoreHost` (a server's event loop, thread-per-core). Either way it drains its
/// inboxes in order, hands each task to its ledger and runs reservation expiries; an own thread
/// parks when idle, a host is asked to drain again when work arrives. One thread only ever touches
/// the ledger: no locks on the hot path. As the ledger's `CoreEnvironment` it carries messages to
/// other workers and waits for the journal.
///
/// Safety argument for `@unchecked Sendable`: producers on other threads call only `submit`,
/// `submitInternal` and `wake`, which use the lock-free rings, the mutex-guarded overflow list, the
/// parker and the atomic `driveScheduled`; durability callbacks (journal flusher threads) only
/// submit tasks. Everything else (the ledger, the local message queue, the expiry timer state) is
/// touched only by the driving thread: `run()` on an own thread, `drive()` on the host's.
final class ShardWorker: CoreEnvironment, @unchecked Sendable {
    let index: Int
    unowned(unsafe) let core: EngineCore
    /// The core's state machine (set once in init).
    private(set) var ledger: CoreLedger!
    /// The thread that drives this core when it is not a thread of its own (set once in init).
    let host: (any CoreHost)?
    /// Hosted: a `drive()` is queued on the host and has not started yet (coalesces wake-ups).
    private let driveScheduled = ManagedAtomic<Bool>(false)
    /// Hosted: the deadline of the expiry timer armed on the host, or nil (driving thread only).
    private var expiryTimerMilliseconds: Int64? = nil
    /// Hosted: `stopped` was fulfilled (driving thread only).
    private var stopFulfilled = false

    private let external: TaskRing
    private let internalRing: TaskRing
    private let overflow = Mutex(Deque<WorkerTask>())
    private let overflowCount = ManagedAtomic<Int>(0)
    private var localMessages = Deque<CoreMessage>()
    private let parker = Parker()
    private let stopRequested = ManagedAtomic<Bool>(false)
    private let stopped = OneShot<Bool>()
    private var lastExpiryCheckMilliseconds: Int64 = .min
    /// Tasks completed (for statistics), written by the worker only.
    let tasksCompleted = ManagedAtomic<UInt64>(0)

    init(index: Int, core: EngineCore, host: (any CoreHost)? = nil) {
        self.index = index
        self.core = core
        self.host = host
        let configuration = core.configuration
        external = TaskRing(capacity: configuration.inboxCapacityRequests)
        internalRing = TaskRing(capacity: configuration.internalRingCapacityMessages)
        ledger = CoreLedger(index: index, configuration: configuration, catalog: core.catalog,
                            rejectionLog: core.rejectionLog, directory: core.reservationDirectory, environment: self)
    }

    /// Wakes whatever drives the core: the parked thread, or a drive queued on the host.
    @inline(__always) private func signal() {
        if host == nil { parker.unpark() } else { scheduleDrive() }
    }

    /// Queues one `drive()` on the host unless one is queued already. The exchange pairs with the
    /// one at the start of `drive()`: work published before it is seen by that drive or a later one.
    private func scheduleDrive() {
        guard let host, !driveScheduled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // The closure keeps the worker alive until it ran, even past the engine's shutdown.
        host.execute { [self] in drive() }
    }

    // MARK: - Producers (any thread)

    /// Enqueues an external task; false when the inbox is full (back-pressure).
    func submit(_ task: WorkerTask) -> Bool {
        guard external.tryEnqueue(task) else { return false }
        signal()
        return true
    }

    /// Enqueues a task that must not be refused (messages between cores, parts of an accepted batch).
    func submitInternal(_ task: WorkerTask) {
        if !internalRing.tryEnqueue(task) {
            overflow.withLock { $0.append(task) }
            overflowCount.wrappingIncrement(ordering: .releasing)
        }
        signal()
    }

    /// `submitInternal(_:)` for work that `Engine.waitUntilIdle()` must wait for.
    func submitTrackedInternal(_ task: WorkerTask) {
        task.isTracked = true
        core.trackedInternalTasks.wrappingIncrement(ordering: .relaxed)
        submitInternal(task)
    }

    /// Wakes the worker (a manual clock moved, or a stop was requested).
    func wake() { signal() }

    /// Requests a stop and waits for the thread (or the host) to finish what it has. Not on the
    /// host's own thread: it would wait for itself.
    func stop() {
        precondition(host?.isCurrentThread != true, "Engine.shutdown() on a core's host thread")
        stopRequested.store(true, ordering: .releasing)
        signal()
        _ = stopped.wait()
    }

    /// Whether the calling thread drives this core (hosted cores only; an own thread is never the caller).
    var isDrivingThread: Bool { host?.isCurrentThread == true }

    /// External tasks waiting.
    var inboxDepth: Int { external.depth }

    // MARK: - CoreEnvironment (worker thread; durability actions on flusher threads)

    func send(_ message: CoreMessage, to target: Int) {
        if target == index {
            localMessages.append(message)
        } else {
            core.workers[target].submitTrackedInternal(CoreMessageTask(message))
        }
    }

    func whenDurable(_ positions: [DurablePosition], _ action: @escaping @Sendable (DurabilityFailure?) -> Void) {
        wait(for: positions, stable: false, action)
    }

    func whenStable(_ positions: [DurablePosition], _ action: @escaping @Sendable (DurabilityFailure?) -> Void) {
        wait(for: positions, stable: true, action)
    }

    private func wait(for positions: [DurablePosition], stable: Bool, _ action: @escaping @Sendable (DurabilityFailure?) -> Void) {
        let logs = core.inputLogs
        guard !logs.isEmpty, !positions.isEmpty else { return action(nil) }
        if positions.count == 1 { return logs[positions[0].core].when(positions[0].lsn, stable: stable, action) }
        let waiter = DurabilityWaiter(count: positions.count, completion: action)
        for position in positions { logs[position.core].when(position.lsn, stable: stable, waiter.partDone) }
    }

    func send(_ message: CoreMessage, to target: Int, whenStable positions: [DurablePosition]) {
        guard !core.inputLogs.isEmpty, positions.contains(where: { $0.lsn > 0 }) else { return send(message, to: target) }
        // Counted from now, so `waitUntilIdle` also waits for the journal and the message.
        let task = CoreMessageTask(message)
        task.isTracked = true
        core.trackedInternalTasks.wrappingIncrement(ordering: .relaxed)
        let recipient = core.workers[target]
        let tracked = core.trackedInternalTasks
        let dropped = core.messageDropped
        whenStable(positions) { failure in
            if failure == nil {
                recipient.submitInternal(task)
            } else {
                dropped.store(true, ordering: .relaxed)
                tracked.wrappingDecrement(ordering: .releasing)
            }
        }
    }

    // MARK: - The loop (worker thread)

    func start() {
        if host != nil {
            scheduleDrive()
            return
        }
        startThread(name: "atp-worker-\(index)") { [self] in run() }
    }

    // MARK: - Hosted (the host's thread)

    /// One turn on the host: runs what is queued, up to a bounded amount so the host's own work
    /// (socket reads and writes) goes on, runs due expiries and arms the next expiry's timer.
    private func drive() {
        _ = driveScheduled.exchange(false, ordering: .acquiringAndReleasing)
        // After the stop the engine (and `core`) may be gone: a late drive or timer does nothing.
        guard !stopFulfilled else { return }
        var rounds = 0
        while rounds < 16, drainOnce() { rounds += 1 }
        runExpiries()
        if hasWork() {
            scheduleDrive()
        } else if stopRequested.load(ordering: .acquiring) {
            ledger.finishImageCapture()
            stopFulfilled = true
            stopped.fulfil(true)
            return
        }
        armExpiryTimer()
    }

    /// Runs on the host's thread before a request is executed there (inline): messages from other
    /// cores first, so a change sent before a reply went out is applied before a request the client
    /// sent after that reply; then due expiries. Cost when nothing is queued: a few loads.
    func prepareInline() {
        assert(isDrivingThread, "inline work off the core's host thread")
        _ = drainMessages()
        runExpiries()
    }

    /// Runs one reservation operation on the host's thread (inline), after `prepareInline()`; then
    /// applies the messages it sent this core and arms the expiry timer for a new deadline.
    func performInline(_ operation: ReservationOperation, id: ReservationID, homeShard: Int,
                       completion: @escaping ReservationCompletion) {
        prepareInline()
        let now = core.clock.nowMilliseconds()
        ledger.perform(operation, id: id, homeShard: homeShard, nowMilliseconds: now, completion: completion)
        while let message = localMessages.popFirst() { ledger.receive(message, nowMilliseconds: now) }
        armExpiryTimer()
    }

    // MARK: - Images (the core's thread)

    /// Cuts this core's image now (`CoreLedger.beginImageCapture`) and copies its shards one per
    /// turn, each queued behind the work waiting by then (the host's queue, or the inbox), so no
    /// request waits for more than one shard's copy. `completion` runs on this thread with the part.
    func beginImageCapture(mark: UInt64, completion: @escaping (WorkerImagePart) -> Void) {
        ledger.beginImageCapture(mark: mark, completion: completion)
        scheduleImageShardCopy()
    }

    /// How long a hosted core waits before its next shard copy: long enough that the host handles
    /// the socket events ready by then first. (A SwiftNIO loop runs every queued task, including
    /// tasks queued by those tasks, before it polls its sockets again: copies chained with plain
    /// `execute` ran back to back and stalled queries for the whole cut, 168 ms at 10M cells.)
    static let imageCopyYieldNanoseconds: UInt64 = 50_000

    private func scheduleImageShardCopy() {
        guard ledger.isCapturingImage else { return }
        if let host {
            host.execute(afterNanoseconds: Self.imageCopyYieldNanoseconds) { [self] in
                guard !stopFulfilled else { return }
                copyImageShard()
            }
        } else {
            let task = ClosureTask { $0.copyImageShard() }
            if !submit(task) { submitInternal(task) }
        }
    }

    private func copyImageShard() {
        if ledger.copyNextImageShard() { scheduleImageShardCopy() }
    }

    /// Asks the host to drive the core once the earliest reservation is due (a wall clock only:
    /// a manual clock's moves wake the core themselves).
    private func armExpiryTimer() {
        guard let host, !core.clock.isManual, let due = ledger.nextExpiryMilliseconds else { return }
        if let armed = expiryTimerMilliseconds, armed <= due { return }
        expiryTimerMilliseconds = due
        let now = core.clock.nowMilliseconds()
        let delay = UInt64(max(0, due - now)) * 1_000_000 + 100_000
        host.execute(afterNanoseconds: delay) { [self] in
            if expiryTimerMilliseconds == due { expiryTimerMilliseconds = nil }
            drive()
        }
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
        ledger.finishImageCapture()
        stopped.fulfil(true)
    }

    private func hasWork() -> Bool {
        !external.isEmpty || !internalRing.isEmpty || overflowCount.load(ordering: .acquiring) > 0 || !localMessages.isEmpty
    }

    /// Runs what is queued now: messages between cores first (they finish work already accepted),
    /// then up to a bounded number of external tasks. Returns whether anything ran.
    ///
    /// Before each external task the messages between cores are drained again, after the task was
    /// taken: a message enqueued before a reply went out (a multi-core commit's change to its parts)
    /// is then always applied before a request the client sent after that reply (a shipment naming
    /// the reservation), since the task's dequeue sees everything enqueued before it was submitted.
    private func drainOnce() -> Bool {
        var didWork = drainMessages()
        var budget = 64
        while budget > 0, let task = external.dequeue() {
            _ = drainMessages()
            runTask(task)
            budget -= 1
            didWork = true
        }
        return drainMessages() || didWork
    }

    /// Runs every queued message (local, internal ring, overflow). Returns whether any ran.
    private func drainMessages() -> Bool {
        var didWork = false
        while true {
            if let message = localMessages.popFirst() {
                ledger.receive(message, nowMilliseconds: core.clock.nowMilliseconds())
            } else if let task = internalRing.dequeue() {
                runTask(task)
            } else if overflowCount.load(ordering: .acquiring) > 0, let task = overflow.withLock({ $0.popFirst() }) {
                overflowCount.wrappingDecrement(ordering: .releasing)
                runTask(task)
            } else {
                return didWork
            }
            didWork = true
        }
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
        guard let next = ledger.nextExpiryMilliseconds, next <= now else { return }
        ledger.expireDue(nowMilliseconds: now)
        while let message = localMessages.popFirst() { ledger.receive(message, nowMilliseconds: now) }
    }

    private func parkTimeoutNanoseconds() -> UInt64 {
        let cap: UInt64 = 50_000_000
        guard let earliest = ledger.nextExpiryMilliseconds, !core.clock.isManual else { return cap }
        let now = core.clock.nowMilliseconds()
        return min(cap, UInt64(max(0, earliest - now)) * 1_000_000 + 100_000)
    }
}

extension CoreLedger {
    /// Handles a message from another core (or this one).
    func receive(_ message: CoreMessage, nowMilliseconds now: Int64) {
        switch message {
        case .prepare(let request, let lineIndices, let homeShard):
            receivePrepare(request, lineIndices: lineIndices, homeShard: homeShard, nowMilliseconds: now)
        case .prepared(let id, let homeShard, let from, let origin, let grants, let failure):
            receivePrepared(id: id, homeShard: homeShard, from: from, origin: origin, grants: grants, failure: failure,
                            nowMilliseconds: now)
        case .change(let id, let homeShard, let origin, let change, let shards, let acknowledge):
            receiveChange(change, id: id, homeShard: homeShard, origin: origin, shards: shards, acknowledge: acknowledge,
                          nowMilliseconds: now)
        case .acknowledged(let id, let homeShard, let from):
            receiveAcknowledged(id: id, homeShard: homeShard, from: from, nowMilliseconds: now)
        case .redirect(let operation, let id, let homeShard, let hops, let completion):
            perform(operation, id: id, homeShard: homeShard, hops: hops, nowMilliseconds: now, completion: completion)
        }
    }
}
