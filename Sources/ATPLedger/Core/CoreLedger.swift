import CATPSupport

/// One core's part of the ledger: the shards it owns (shards `index`, `index + coreCount`, ...) with
/// their cells, holds, reservation records and expiries, its copy of the channel table, and its
/// journal stream. A deterministic, single-threaded state machine: inputs (event batches, queries,
/// reservation operations, messages from other cores, expiry passes) arrive with the time they are
/// processed at; effects leave as journal records, replies and messages through `CoreEnvironment`.
/// It has no thread, clock or I/O of its own: the worker threads drive it in production, the
/// simulator on one thread in tests (docs/ARCHITECTURE.md).
///
/// Invariants (`checkInvariants`): every cell's `reserved` and `committed` equal the sum of the
/// holds on it; every state change is journaled, in the order it is applied, before it is applied,
/// so replaying this core's stream rebuilds exactly this core's state.
final class CoreLedger {
    let index: Int
    let configuration: LedgerConfiguration
    let catalog: Catalog
    let rejectionLog: RejectionLog
    /// The engine's reservation id → home shard map, shared by every core.
    let directory: ReservationDirectory
    unowned(unsafe) let environment: CoreEnvironment
    /// Shards of this core, in index order.
    let shards: [Shard]
    /// Unretained references to the owned shards by shard index (nil for others), for the event
    /// path: a class reference loaded from an array costs a retain/release pair, three per event.
    /// Safe because `shards` keeps every shard alive for the ledger's life.
    private let shardRefs: UnsafeMutableBufferPointer<Unmanaged<Shard>?>
    let channels = ChannelTable()
    /// The newest channel change this core applied (engine-wide numbering; recovery keeps the newest).
    var channelChangeSequence: UInt64 = 0
    /// Records this core's state changes when durable (set once, before serving).
    var recorder: WorkerRecorder?
    /// This core's journal generation: 1 for a fresh data directory, then a number drawn at random by
    /// each recovery (`finishRecovery`): unique, so a generation whose start a crash lost is never
    /// confused with a later one.
    var generation: UInt64 = 1
    /// The last LSN of each earlier generation (recovery tells holds whose prepare a crash lost).
    var generationEnds: [UInt64: UInt64] = [:]
    /// Multi-core reserves waiting for their parts' answers, by id (home side, in memory only).
    var pendingReserves: [ReservationID: PendingReserve] = [:]
    /// Prepares made without a journal, numbered so that their holds' origins still differ.
    var unjournaledPrepares: UInt64 = 0
    /// The LSN of the last journal record replayed (or of the restored image's mark).
    var lastReplayedLSN: UInt64 = 0
    /// Version-1 reservation state while a version-1 journal or image is replayed (recovery only).
    var legacy: LegacyReservations?
    /// Records of this core's home shards plus reserves being decided here: this core's ids in the directory.
    var reservationsRemembered: Int { shards.reduce(0) { $0 + $1.records.count } + pendingReserves.count }
    /// Reservation operations started here whose parts have not all answered (for statistics).
    var reservationsInFlight: Int { pendingReserves.count }

    /// The held records of this core's shards by deadline (every shard adds its own).
    let expiries = ExpiryQueue()
    /// Reusable storage of the reservation path (expiry passes, transitions): taken out while in
    /// use (`Array.take()`), so a reentrant use just allocates.
    var scratch = ReservationScratch()

    /// The image being cut one shard at a time, if any (CoreLedger-capture.swift).
    var imageCapture: ImageCapture?

    /// Reusable storage of the journal replay (`replayEvents`).
    var replayBatch = EventBatch()
    var replayOutcomes: [EventOutcomeCode] = []

    /// Where the simulator's tracing sees what the cores decide (nil in production).
    var trace: ((String) -> Void)?

    init(index: Int, configuration: LedgerConfiguration, catalog: Catalog, rejectionLog: RejectionLog,
         directory: ReservationDirectory, environment: CoreEnvironment) {
        precondition(index >= 0 && index < configuration.workerCount, "core \(index) of \(configuration.workerCount)")
        self.index = index
        self.configuration = configuration
        self.catalog = catalog
        self.rejectionLog = rejectionLog
        self.directory = directory
        self.environment = environment
        var owned: [Shard] = []
        for shardIndex in stride(from: index, to: configuration.shardCount, by: configuration.workerCount) {
            owned.append(Shard(index: shardIndex, configuration: configuration, catalog: catalog, expiries: expiries,
                               expiryPosition: owned.count, directory: directory))
        }
        shards = owned
        shardRefs = .allocate(capacity: configuration.shardCount)
        shardRefs.initialize(repeating: nil)
        for shard in owned { shardRefs[shard.index] = Unmanaged.passUnretained(shard) }
    }

    deinit { shardRefs.deallocate() }

    // MARK: - Routing

    /// The core that owns shard `shard`.
    @inline(__always) func coreIndex(ofShard shard: Int) -> Int { shard % configuration.workerCount }
    /// The shard of a SKU.
    @inline(__always) func shardIndex(of sku: SKUID) -> Int { catalog.shardIndex(of: sku) }
    /// The shard that decides a new reservation (its home): its first line's SKU's shard.
    @inline(__always) func homeShardIndex(of request: ReserveRequest) -> Int {
        ReservationHome.shard(of: request, catalog: catalog, shardCount: configuration.shardCount)
    }
    /// The shard `id` hashes to: the home of reservations made by older builds (`ReservationHome`).
    @inline(__always) func hashedHomeShardIndex(of id: ReservationID) -> Int {
        ReservationHome.hashedShard(of: id, shardCount: configuration.shardCount)
    }
    /// Whether this core owns shard `shard`.
    @inline(__always) func owns(shard: Int) -> Bool {
        shard >= 0 && shard < configuration.shardCount && coreIndex(ofShard: shard) == index
    }

    /// The shard `shard`, which this core must own, to read or change: copied first for an image
    /// being cut (`preserveForImage`), so whatever the caller changes is not in that image.
    @inline(__always) func shard(_ shard: Int) -> Shard {
        guard let reference = shardRefs[shard] else { preconditionFailure("shard \(shard) is not core \(index)'s") }
        preserveForImage(shard)
        return reference.takeUnretainedValue()
    }

    /// Runs `body` with the shard `shard` (owned) without retaining it: for per-item loops that
    /// only read (queries). Not a door for changes: it does not preserve the shard for an image.
    @inline(__always) func withShard<R>(_ shard: Int, _ body: (Shard) -> R) -> R {
        shardRefs[shard].unsafelyUnwrapped._withUnsafeGuaranteedRef(body)
    }

    // MARK: - Events

    /// Events are applied through a rolling software pipeline: an index entry is prefetched this
    /// many events before its event is applied, its cell `prefetchCellDistance` events before.
    static let prefetchIndexDistance = 16
    static let prefetchCellDistance = 8
    /// Ring of pending hashes: a power of two larger than `prefetchIndexDistance`.
    static let prefetchRing = 32
    /// Single-cell queries are answered in groups of this many (index entries, cells, answers).
    static let prefetchGroup = 16

    /// Records (when durable) and applies this core's events of `batch` (all when `indices` is nil)
    /// in batch order, writing each outcome at its index. Returns the record's LSN (0 without a
    /// journal), or the failure when the journal refused it: then nothing is applied and the
    /// outcomes are left as they were.
    func applyEvents(_ batch: EventBatch, indices: [Int32]?, nowMilliseconds: Int64,
                     outcomes: UnsafeMutablePointer<EventOutcomeCode>) -> Result<UInt64, DurabilityFailure> {
        var lsn: UInt64 = 0
        if let recorder {
            switch recorder.recordEvents(batch, indices: indices, nowMilliseconds: nowMilliseconds) {
            case .appended(let appended): lsn = appended
            case .refused(let failure): return .failure(failure)
            }
        }
        apply(batch, indices: indices, nowMilliseconds: nowMilliseconds, outcomes: outcomes)
        collectRejections()
        return .success(lsn)
    }

    /// Applies this core's events of `batch` (all of them when `indices` is nil) in batch order.
    /// Every shard of a core lives on this thread, so no grouping by shard is needed: each event goes
    /// straight to its shard, through a three-step pipeline (prefetch index entries, prefetch cells,
    /// apply). Allocation-free. Does not record (replay and `applyEvents` call it).
    func apply(_ batch: EventBatch, indices: [Int32]?, nowMilliseconds: Int64,
               outcomes: UnsafeMutablePointer<EventOutcomeCode>) {
        let total = indices?.count ?? batch.events.count
        let catalog = self.catalog
        // Checked by its producer against this engine's limit: the shards skip the stateless check.
        let checked = batch.checkedForQuantityMax == configuration.quantityMax
        // An image being cut: the shards this batch changes are copied first, in a pass of their own
        // (so the pipeline below has no per-event check: it cost about 2% over 1M cells).
        if imageCapture != nil {
            for k in 0..<total {
                preserveForImage(catalog.shardIndex(of: batch.events[indices.map { Int($0[k]) } ?? k].sku))
            }
        }
        batch.events.withUnsafeBufferPointer { events in
            batch.correlationIDs.withUnsafeBufferPointer { correlations in
                let shards = shardRefs
                // At step k the index entry of event k is prefetched, the cell of event k - cellLag
                // (whose index entry should have arrived by now), and event k - applyLag is applied
                // (its cell should have arrived): each miss has several steps' time to complete.
                // Each event's hash and shard are computed once, at its first step, and kept in rings.
                // A short batch (a replayed single-event record) has less to overlap: the lags
                // shrink with it, so it takes `total + lag` steps, not `total + 16`.
                let applyLag = min(CoreLedger.prefetchIndexDistance, total)
                let cellLag = applyLag - min(CoreLedger.prefetchCellDistance, applyLag)
                let ringMask = CoreLedger.prefetchRing - 1
                withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * CoreLedger.prefetchRing) { ring in
                    let hashes = ring.baseAddress!
                    let shardOf = hashes + CoreLedger.prefetchRing
                    for k in 0..<(total + applyLag) {
                        if k < total {
                            let event = events[indices.map { Int($0[k]) } ?? k]
                            let hash = CellStore.hash(event.sku, event.location)
                            let shard = catalog.shardIndex(of: event.sku)
                            hashes[k & ringMask] = hash
                            shardOf[k & ringMask] = shard
                            shards[shard].unsafelyUnwrapped._withUnsafeGuaranteedRef {
                                $0.cells.prefetchIndex(hash: hash)
                            }
                        }
                        let c = k - cellLag
                        if c >= 0 && c < total {
                            shards[shardOf[c & ringMask]].unsafelyUnwrapped._withUnsafeGuaranteedRef {
                                $0.cells.prefetchCandidateCell(hash: hashes[c & ringMask])
                            }
                        }
                        let a = k - applyLag
                        if a >= 0 {
                            let index = indices.map { Int($0[a]) } ?? a
                            let event = events[index]
                            outcomes[index] = shards[shardOf[a & ringMask]].unsafelyUnwrapped
                                ._withUnsafeGuaranteedRef {
                                    $0.apply(event, hash: hashes[a & ringMask], correlations: correlations,
                                             nowMilliseconds: nowMilliseconds, checked: checked)
                                }
                        }
                    }
                }
            }
        }
    }

    /// Moves the shards' pending rejections to the engine's rejection log.
    func collectRejections() {
        for shard in shards where !shard.pendingRejections.isEmpty {
            rejectionLog.append(shard.pendingRejections)
            shard.pendingRejections.removeAll(keepingCapacity: true)
        }
    }

    // MARK: - Queries

    /// Answers this core's queries of a batch (`indices` into `queries`), writing each answer at its
    /// index and appending the cells behind them to `cells`. Single-cell queries go through the
    /// event path's prefetch pipeline in groups, so a group's cache misses overlap. Without
    /// `collectingCells` the answers carry no cells and none is copied; an answer whose cells would
    /// take `cells` past `cellsMax` keeps none (`QueryAnswer.cellsOmitted`).
    func answer(_ queries: [AvailabilityQuery], indices: [Int32], part: Int32,
                answers: UnsafeMutablePointer<QueryAnswer>, cells: inout [CellAvailability],
                collectingCells: Bool = true, cellsMax: Int = .max) {
        let group = CoreLedger.prefetchGroup
        queries.withUnsafeBufferPointer { queries in
            indices.withUnsafeBufferPointer { indices in
                withUnsafeTemporaryAllocation(of: Int.self, capacity: group) { shardOf in
                    var start = 0
                    while start < indices.count {
                        let end = min(start + group, indices.count)
                        for j in start..<end {
                            let query = queries[Int(indices[j])]
                            // An unknown SKU has no cells on any shard: any of this core's answers it.
                            let shard = query.sku == .unknown ? shards[0].index : catalog.shardIndex(of: query.sku)
                            shardOf[j - start] = shard
                            guard case .cell(let sku, let location) = query else { continue }
                            withShard(shard) { $0.cells.prefetchIndex(hash: CellStore.hash(sku, location)) }
                        }
                        for j in start..<end {
                            guard case .cell(let sku, let location) = queries[Int(indices[j])] else { continue }
                            withShard(shardOf[j - start]) {
                                $0.cells.prefetchCandidateCell(hash: CellStore.hash(sku, location))
                            }
                        }
                        for j in start..<end {
                            let i = Int(indices[j])
                            answers[i] = withShard(shardOf[j - start]) {
                                $0.answer(queries[i], channels: channels, part: part,
                                          collectingCells: collectingCells, cellsMax: cellsMax, cellsOut: &cells)
                            }
                        }
                        start = end
                    }
                }
            }
        }
    }

    // MARK: - Channels

    /// Applies a channel change on this core, recording it first when durable. Returns the record's
    /// LSN (0 without a journal), or nil when the journal refused it: the change is applied anyway,
    /// so every core reads the same table, and the caller reports the failure (a restart brings the
    /// table back from the cores that journaled it).
    @discardableResult
    func applyChannelChange(define definition: ChannelDefinition?, remove id: ChannelID?, sequence: UInt64)
        -> UInt64?
    {
        var outcome: RecordOutcome?
        if let definition {
            outcome = recorder?.recordChannelDefine(definition, sequence: sequence)
            channels.set(definition)
        } else if let id {
            outcome = recorder?.recordChannelRemove(id, sequence: sequence)
            channels.remove(id)
        }
        channelChangeSequence = max(channelChangeSequence, sequence)
        switch outcome {
        case .appended(let lsn)?: return lsn
        case .refused?: return nil
        case nil: return 0
        }
    }

    // MARK: - Expiry

    /// The earliest pending expiry deadline of this core's home records, if any.
    var nextExpiryMilliseconds: Int64? { expiries.earliestDeadline }

    // MARK: - Checks and figures

    /// Full consistency check of this core's shards (tests; costs a full scan).
    func checkInvariants() {
        for shard in shards { shard.checkInvariants() }
        expiries.checkInvariants()
        let held = shards.reduce(0) { $0 + $1.records.count { $0.value.state == .held } }
        precondition(held == expiries.count, "\(expiries.count) queued to expire, \(held) held")
        for (id, pending) in pendingReserves {
            precondition(pending.outstanding > 0, "pending reserve \(id) waits for nothing")
            precondition(directory.home(of: id) == pending.homeShard, "pending reserve \(id) is not claimed for its home")
            precondition(withShard(pending.homeShard) { $0.records[id] == nil }, "pending reserve \(id) also has a record")
        }
    }
}
