import HeapModule

/// What one worker copied at its cut.
struct WorkerImagePart: Sendable {
    var mark: UInt64 = 0
    var shards: [(index: Int, cells: ShardCellsImage)] = []
    var reservations: [ReservationImage] = []
    var holds: [HoldImage] = []
    var dedupWindows: [DedupWindowImage] = []
}

/// Copying a shard into an image and rebuilding it from one. Worker thread only.
extension Shard {
    /// Copies this shard's state: the cell buffer and SKU chain heads (two memcpys), then its holds,
    /// records and dedup windows. Reservations in flight are normalised (docs/SNAPSHOT.md): a reserve
    /// not yet answered is left out, a commit in flight is recorded as committed and a release in
    /// flight as released; their callers were never answered, and a retry gets the same outcome.
    func captureImage(nowMilliseconds: Int64, into part: inout WorkerImagePart) {
        let cellsCopy = Array(UnsafeBufferPointer(start: cells.cells, count: cells.count))
        let headsCopy = cells.firstSlotOfSKU.withUnsafeBufferPointer { Array($0) }
        part.shards.append((index, ShardCellsImage(cells: cellsCopy, firstSlotOfSKU: headsCopy)))
        for (id, hold) in holds {
            let lines = hold.lines.map { line -> HoldImage.Line in
                let cell = cellsCopy[Int(line.slot)]
                return HoldImage.Line(sku: cell.sku, location: cell.location, units: line.units)
            }
            part.holds.append(HoldImage(shard: index, id: id, isCommitted: hold.isCommitted, lines: lines))
        }
        for record in records.values {
            guard let image = record.image(nowMilliseconds: nowMilliseconds) else { continue }
            part.reservations.append(image)
        }
        for (source, position) in dedupWindowBySource {
            let window = dedupWindows[position]
            part.dedupWindows.append(DedupWindowImage(shard: index, source: source, newest: window.newest,
                                                      words: window.words))
        }
    }

    /// Rebuilds an empty shard from an image: its cells (slots as in the image), the holds kept by
    /// the restore plan (reserved and committed buckets recomputed from them), its home records with
    /// their expiry and retention order, and its dedup windows. Counters start at zero except
    /// `shortCells`, which is recounted.
    func restore(cells image: ShardCellsImage, holds kept: [HoldImage], records restored: [RestoredRecord],
                 dedupWindows windows: [DedupWindowImage]) {
        // A fresh shard: no cells, holds, records or windows (so no cached window to reset either).
        precondition(cells.count == 0 && holds.isEmpty && records.isEmpty && dedupWindows.isEmpty,
                     "restore into a shard in use")
        image.cells.withUnsafeBufferPointer { cells.restore(cells: $0, firstSlotOfSKU: image.firstSlotOfSKU) }
        restoreHolds(kept)
        var short = 0
        for slot in 0..<cells.count where cells.cell(UInt32(slot)).pointee.isShort { short += 1 }
        counters.shortCells = short
        for restored in restored {
            let record = ReservationRecord(request: restored.image.request)
            record.phase = .settled(restored.image.state)
            record.lineGrants = restored.image.lineGrants
            record.expiresAtMilliseconds = restored.image.expiresAtMilliseconds
            record.settledAtMilliseconds = restored.image.settledAtMilliseconds
            record.partShards = restored.partShards
            records[record.request.id] = record
            if restored.image.state == .held {
                expiries.insert(ExpiryEntry(deadlineMilliseconds: record.expiresAtMilliseconds, id: record.request.id))
            }
        }
        let settled = restored.filter { $0.image.state != .held }
            .sorted { $0.image.settledAtMilliseconds < $1.image.settledAtMilliseconds }
        for restored in settled {
            finishedOutcomes.append(FinishedOutcome(id: restored.image.id,
                                                    settledAtMilliseconds: restored.image.settledAtMilliseconds))
        }
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
            var hold = Hold(isCommitted: image.isCommitted, lines: [])
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

/// A record to restore on its home shard, with the part shards its kept holds are on.
struct RestoredRecord: Sendable {
    var image: ReservationImage
    var partShards: [Int]
}

extension ReservationRecord {
    /// The record as an image, in-flight operations normalised; nil for a reserve not yet answered.
    func image(nowMilliseconds: Int64) -> ReservationImage? {
        let state: ReservationState
        var settledAt = settledAtMilliseconds
        switch phase {
        case .settled(let settledState):
            state = settledState
        case .reserving:
            return nil
        case .committing:
            state = .committed
            settledAt = nowMilliseconds
        case .releasing:
            // An all-or-nothing reserve giving back its units was never answered either.
            guard settleAs == .released else { return nil }
            state = .released
            settledAt = nowMilliseconds
        }
        return ReservationImage(request: request, state: state, lineGrants: lineGrants,
                                expiresAtMilliseconds: expiresAtMilliseconds,
                                settledAtMilliseconds: state == .held ? 0 : settledAt)
    }
}
