import HeapModule

/// What one core copied at its cut.
///
/// The image's channel table is the table of the core with the newest channel change at its cut:
/// every core restores it with that change's sequence, and a journal's older channel records,
/// replayed after it, change nothing (so restoring a snapshot and replaying the journals gives
/// the table replaying the journals alone gives).
struct WorkerImagePart: Sendable {
    var mark: UInt64 = 0
    var generation = WorkerGenerationImage(generation: 1, ends: [])
    /// The core's channel table at the cut, and the newest channel change in it.
    var channels: [ChannelDefinition] = []
    var channelChangeSequence: UInt64 = 0
    var shards: [(index: Int, cells: ShardCellsImage)] = []
    var reservations: [ReservationImage] = []
    var holds: [HoldImage] = []
    var dedupWindows: [DedupWindowImage] = []

    /// Appends one shard's copy (shards are added in index order).
    mutating func add(_ shard: ShardImagePart) {
        shards.append((shard.index, shard.cells))
        reservations += shard.reservations
        holds += shard.holds
        dedupWindows += shard.dedupWindows
    }
}

/// What one shard copied at its core's cut.
struct ShardImagePart: Sendable, Equatable {
    let index: Int
    var cells = ShardCellsImage(cells: [], firstSlotOfSKU: [])
    var reservations: [ReservationImage] = []
    var holds: [HoldImage] = []
    var dedupWindows: [DedupWindowImage] = []
}

extension CoreLedger {
    /// Copies this core's state at this instant (between two inputs), marked with `mark` (its
    /// journal's position): every shard's cells, holds, records and dedup windows, and the journal
    /// generation. Multi-core reserves still waiting for their parts are not journaled yet and are
    /// left out (their parts' tentative holds are in the parts' images). The whole copy at once:
    /// serving cores cut one shard at a time instead (`beginImageCapture`, CoreLedger-capture.swift).
    func captureImagePart(mark: UInt64) -> WorkerImagePart {
        var part = imagePartHeader(mark: mark)
        for shard in shards { part.add(shard.captureImage()) }
        return part
    }

    /// What a core's image part holds besides its shards, as of now.
    func imagePartHeader(mark: UInt64) -> WorkerImagePart {
        var part = WorkerImagePart()
        part.mark = mark
        part.generation = WorkerGenerationImage(
            generation: generation,
            ends: generationEnds.sorted { $0.key < $1.key }.map { .init(generation: $0.key, lastLSN: $0.value) })
        part.channels = channels.all
        part.channelChangeSequence = channelChangeSequence
        return part
    }

    /// Rebuilds this fresh core's shards from an image (the plan says which holds and records each
    /// shard gets), and its journal generation. With `cellsRestored` the shards' cells and holds
    /// are already in (`Shard.restoreCells`, done for all shards at once by `Engine(restoring:)`).
    /// A version-1 image leaves version-1 state for recovery to settle (`LegacyReservations`).
    func restore(from image: LedgerImage, plan: RestorePlan, cellsRestored: Bool = false) {
        for shard in shards {
            if !cellsRestored { shard.restoreCells(image.shardCells[shard.index], holds: plan.holdsByShard[shard.index]) }
            shard.restoreRecords(plan.recordsByShard[shard.index], dedupWindows: plan.dedupWindowsByShard[shard.index])
        }
        if image.workerMarks.count == configuration.workerCount { lastReplayedLSN = image.workerMarks[index] }
        channelChangeSequence = image.channelChangeSequence
        if index < image.workerGenerations.count, image.workerGenerations.count == configuration.workerCount {
            let restored = image.workerGenerations[index]
            generation = restored.generation
            generationEnds = Dictionary(uniqueKeysWithValues: restored.ends.map { ($0.generation, $0.lastLSN) })
        }
        if image.version == 1 {
            let legacy = legacyReservations
            for shard in shards {
                for restored in plan.recordsByShard[shard.index] where !restored.partShards.isEmpty {
                    legacy.partShards[restored.image.id] = restored.partShards
                    if var record = shard.records[restored.image.id] {
                        record.parts = legacyParts(restored.partShards)
                        shard.setRecord(record, for: record.id)
                    }
                }
            }
        }
    }
}

/// Copying a shard into an image and rebuilding it from one. The owning core's thread only.
extension Shard {
    /// Copies this shard's state: the cell buffer and SKU chain heads (two memcpys), then its holds,
    /// records and dedup windows.
    func captureImage() -> ShardImagePart {
        var part = ShardImagePart(index: index)
        let cellsCopy = Array(UnsafeBufferPointer(start: cells.cells, count: cells.count))
        let headsCopy = cells.firstSlotOfSKU.withUnsafeBufferPointer { Array($0) }
        for (id, hold) in holds {
            let lines = hold.lines.map { line -> HoldImage.Line in
                let cell = cellsCopy[Int(line.slot)]
                return HoldImage.Line(sku: cell.sku, location: cell.location, units: line.units)
            }
            part.holds.append(HoldImage(shard: index, id: id, status: HoldImage.Status(rawValue: hold.status.rawValue)!,
                                        originGeneration: hold.origin.generation,
                                        originPrepareLSN: hold.origin.prepareLSN, lines: lines))
        }
        part.cells = ShardCellsImage(cells: cellsCopy, firstSlotOfSKU: headsCopy)
        for record in records.values {
            part.reservations.append(ReservationImage(
                request: record.request, state: record.state, lineGrants: record.lineGrants,
                expiresAtMilliseconds: record.expiresAtMilliseconds,
                settledAtMilliseconds: record.state == .held ? 0 : record.settledAtMilliseconds,
                parts: record.parts.map {
                    ReservationPartImage(worker: $0.core, generation: $0.origin.generation, prepareLSN: $0.origin.prepareLSN)
                },
                acknowledgementsAwaited: record.acknowledgementsAwaited, homeShard: index))
        }
        for (source, position) in dedupWindowBySource {
            let window = dedupWindows[position]
            part.dedupWindows.append(DedupWindowImage(shard: index, source: source, newest: window.newest,
                                                      words: window.words))
        }
        return part
    }

    /// Rebuilds an empty shard from an image, in two halves. This first half: the cells (slots as in
    /// the image), the holds the restore plan gives it (reserved and committed buckets recomputed
    /// from them) and the short-cell count (counters otherwise start at zero). Touches
    /// nothing but this shard (no engine-wide or core-wide structure), so the shards of an engine
    /// may take it on several threads at once (`Engine(restoring:)`), before their cores start.
    func restoreCells(_ image: ShardCellsImage, holds kept: [HoldImage]) {
        // A fresh shard: no cells, holds, records or windows (so no cached window to reset either).
        precondition(cells.count == 0 && holds.isEmpty && records.isEmpty && dedupWindows.isEmpty,
                     "restore into a shard in use")
        image.cells.withUnsafeBufferPointer { cells.restore(cells: $0, firstSlotOfSKU: image.firstSlotOfSKU) }
        restoreHolds(kept)
        var short = 0
        for slot in 0..<cells.count where cells.cell(UInt32(slot)).pointee.isShort { short += 1 }
        counters.shortCells = short
    }

    /// The second half, on the core's thread: the home records with their expiry and retention order
    /// (into the core's expiry queue and the engine's directory) and the dedup windows.
    func restoreRecords(_ restored: [RestoredRecord], dedupWindows windows: [DedupWindowImage]) {
        precondition(records.isEmpty && dedupWindows.isEmpty, "restore into a shard in use")
        for restored in restored {
            let image = restored.image
            var record = ReservationRecord(request: image.request, state: image.state, lineGrants: image.lineGrants,
                                           expiresAtMilliseconds: image.expiresAtMilliseconds)
            record.settledAtMilliseconds = image.settledAtMilliseconds
            record.parts = image.parts.map {
                PartReference(core: $0.worker, origin: HoldOrigin(generation: $0.generation, prepareLSN: $0.prepareLSN))
            }
            record.acknowledgementsAwaited = image.acknowledgementsAwaited
            insertRecord(record)
        }
        // In (settle time, id) order, so every one is an append.
        let finished = restored.lazy.map(\.image)
            .filter { $0.state != .held && $0.acknowledgementsAwaited == 0 }
            .sorted { ($0.settledAtMilliseconds, $0.id) < ($1.settledAtMilliseconds, $1.id) }
        for image in finished { noteFinished(image.id, sinceMilliseconds: image.settledAtMilliseconds) }
        for window in windows {
            dedupWindowBySource[window.source] = dedupWindows.count
            dedupWindows.append(DedupWindow(size: configuration.dedupWindowSequences, newest: window.newest,
                                            words: window.words))
        }
    }

    /// Zeroes reserved and committed, then adds back exactly what the kept holds say.
    private func restoreHolds(_ kept: [HoldImage]) {
        for slot in 0..<cells.count {
            let cell = cells.cell(UInt32(slot))
            cell.pointee.reserved = 0
            cell.pointee.committed = 0
        }
        for image in kept {
            var hold = Hold(id: image.id, status: HoldStatus(rawValue: image.status.rawValue)!,
                            origin: HoldOrigin(generation: image.originGeneration, prepareLSN: image.originPrepareLSN))
            for line in image.lines {
                guard let slot = cells.slot(sku: line.sku, location: line.location) else {
                    preconditionFailure("a checked image holds on a missing cell")
                }
                let cell = cells.cell(slot)
                if image.isCommitted { cell.pointee.committed += line.units } else { cell.pointee.reserved += line.units }
                if let existing = hold.lines.firstIndex(where: { $0.slot == slot }) {
                    hold.lines[existing].units += line.units
                } else {
                    hold.lines.append(HoldLine(slot: slot, units: line.units))
                }
            }
            holds[image.id] = hold
        }
    }
}

/// A record to restore on its home shard, with the part shards its kept holds are on (version 1).
struct RestoredRecord: Sendable {
    var image: ReservationImage
    var partShards: [Int]
}
