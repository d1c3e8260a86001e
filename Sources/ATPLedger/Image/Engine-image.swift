import Dispatch

/// Ledger images: a consistent copy of the engine's state, and an engine rebuilt from one.
extension Engine {
    /// Copies the engine's state into an immutable image. Each worker, at a barrier on its own
    /// thread (between two of its tasks), calls `mark(workerIndex)` — the journal passes its current
    /// position there — and cuts its state at that same instant. It then copies its shards one per
    /// turn, between its other work (the cell buffer and SKU chain heads by memcpy, about 1 ms per
    /// 100k cells, plus the shard's holds, records and dedup windows); a shard about to change is
    /// copied first, so every copy is the shard as of the cut (`ImageCapture`). Workers copy in
    /// parallel. The name tables and channel definitions are read afterwards (names are
    /// append-only, so every id a cell uses is there). Blocks the caller until every worker has
    /// copied; not for event loops.
    public func captureImage(mark: @escaping @Sendable (Int) -> UInt64) -> LedgerImage {
        let cutWallClock = wallClockMilliseconds()
        let cutClock = clock.nowMilliseconds()
        let collector = OneShotCollector<WorkerImagePart>(count: configuration.workerCount)
        onEveryWorker { worker in
            worker.beginImageCapture(mark: mark(worker.index)) { collector.add($0, at: worker.index) }
        }
        let parts = collector.values
        var shardCells = [ShardCellsImage](repeating: ShardCellsImage(cells: [], firstSlotOfSKU: []),
                                           count: configuration.shardCount)
        for part in parts { for (index, cells) in part.shards { shardCells[index] = cells } }
        let newest = parts.max { $0.channelChangeSequence < $1.channelChangeSequence }!
        let skuNames = catalog.image(.sku)
        return LedgerImage(
            workerGenerations: parts.map(\.generation), channelChangeSequence: newest.channelChangeSequence,
            shardCount: configuration.shardCount, skuPlacements: catalog.placementMap(of: skuNames),
            dedupWindowSequences: configuration.dedupWindowSequences,
            workerMarks: parts.map(\.mark), cutWallClockMilliseconds: cutWallClock, clockMilliseconds: cutClock,
            skuNames: skuNames, locationNames: catalog.image(.location),
            channelNames: catalog.image(.channel), sourceNames: catalog.image(.source),
            channels: newest.channels, reservations: parts.flatMap(\.reservations), holds: parts.flatMap(\.holds),
            dedupWindows: parts.flatMap(\.dedupWindows), shardCells: shardCells)
    }

    /// Starts an engine whose state is `image`'s: every cell, the names with their ids, channels,
    /// reservation records with their original expiry, holds, dedup windows and each worker's
    /// journal generation. Reservations between workers at the cut are resolved by recovery after
    /// the journals are replayed (`resolveAfterReplay`); a version-1 image is resolved as
    /// `RestorePlan` describes. Counters and the rejection log start empty.
    /// `configuration.shardCount` and `dedupWindowSequences` must equal the image's; the worker count
    /// may differ only when no reservation is between workers. Cost: O(names + cells) on the
    /// workers, in parallel. Throws `LedgerImageError` when the image does not fit the
    /// configuration or is inconsistent.
    ///
    /// With `expiriesSuspended` no reservation expires until `resumeExpiries()` (recovery replays
    /// the journal first).
    public convenience init(restoring image: LedgerImage, configuration: LedgerConfiguration = LedgerConfiguration(),
                            clock: EngineClock = .system(), expiriesSuspended: Bool = false,
                            hosts: [any CoreHost]? = nil) throws(LedgerImageError) {
        guard image.shardCount == configuration.shardCount else {
            throw .shardCountMismatch(image: image.shardCount, configuration: configuration.shardCount)
        }
        guard image.skuPlacement == configuration.skuPlacement else {
            throw .skuPlacementMismatch(image: image.skuPlacement, configuration: configuration.skuPlacement)
        }
        guard image.dedupWindowSequences == configuration.dedupWindowSequences else {
            throw .dedupWindowMismatch(image: image.dedupWindowSequences, configuration: configuration.dedupWindowSequences)
        }
        for channel in image.channels {
            do { try channel.validate(quantityMax: configuration.quantityMax) } catch { throw .invalidChannel(channel.id, error) }
        }
        let plan = try RestorePlan(image: image, workerCount: configuration.workerCount)
        let catalog = try Catalog(restoring: image)
        do {
            try self.init(configuration: configuration, catalog: catalog, clock: clock,
                          expiriesSuspended: expiriesSuspended, hosts: hosts)
        } catch {
            throw .configuration(error)
        }
        core.channelDefinitions.withLock { definitions in
            for channel in image.channels { definitions[channel.id] = channel }
        }
        core.channelChangeSequence.store(image.channelChangeSequence, ordering: .releasing)
        // The cells are most of the work and each shard's are its own: every shard's cells and holds
        // are restored at once on the machine's threads, before the cores take the rest in turn.
        // The cores are idle and serve nothing yet; `onEveryWorker` below orders these writes
        // before anything a core does next.
        let shards = IdleShards(core.workers.flatMap { $0.ledger.shards })
        DispatchQueue.concurrentPerform(iterations: shards.all.count) { position in
            let shard = shards.all[position]
            shard.restoreCells(image.shardCells[shard.index], holds: plan.holdsByShard[shard.index])
        }
        onEveryWorker { worker in
            for channel in image.channels { worker.ledger.channels.set(channel) }
            worker.ledger.restore(from: image, plan: plan, cellsRestored: true)
        }
    }
}

/// The shards of an engine that is being built, handed to restoring threads. Safety of
/// `@unchecked Sendable`: while an engine restores, no core has run anything on its shards and no
/// request can reach them; each thread touches only its own shard (`Shard.restoreCells` touches
/// nothing shared), and `concurrentPerform` returns only once all are done, before the cores'
/// barrier tasks publish the shards to their threads.
private struct IdleShards: @unchecked Sendable {
    let all: [Shard]
    init(_ all: [Shard]) { self.all = all }
}

extension Catalog {
    /// The placement numbers of the SKUs `names` (this catalog's, `image(.sku)`), in id order, as
    /// the table assigned them.
    func placementMap(of names: NameListImage) -> SKUPlacementMap {
        let placements = placement.scheme == .nameHash
            ? (0..<UInt32(names.count)).map { placementNumber(of: SKUID($0)) } : []
        return SKUPlacementMap(scheme: placement.scheme, shardCount: placement.shardCount, placements: placements)
    }

    /// The names of `kind` as a packed list, in id order.
    func image(_ kind: NameKind) -> NameListImage {
        var list = NameListImage()
        for id in 0..<count(kind) { withName(kind, id: UInt32(id)) { list.append($0) } }
        return list
    }

    /// A catalog holding `image`'s names with the same ids and placements. Throws when a name is
    /// invalid or repeated.
    convenience init(restoring image: LedgerImage) throws(LedgerImageError) {
        self.init(placement: SKUPlacement(scheme: image.skuPlacement, shardCount: image.shardCount))
        for kind in [NameKind.sku, .location, .channel, .source] {
            let names = image.names(kind)
            for id in 0..<names.count {
                let result: Result<UInt32, InvalidNameError> = names.withName(id) { bytes in
                    do throws(InvalidNameError) { return .success(try intern(bytes, kind: kind)) } catch { return .failure(error) }
                }
                switch result {
                case .success(let interned) where Int(interned) == id: continue
                case .success(let interned): throw .invalidName(kind: kind, id: id, "the same name as id \(interned)")
                case .failure(let error): throw .invalidName(kind: kind, id: id, error.description)
                }
            }
        }
    }
}
