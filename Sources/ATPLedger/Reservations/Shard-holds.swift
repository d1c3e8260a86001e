/// Holds: units reservations keep on this shard's cells (the `reserved` and `committed` buckets are
/// exactly the sum of its holds: `checkInvariants`). Allocation decides from sellable units only;
/// every change to a hold goes through `addHold`, `changeHold` or `consumeCommittedHold`.
extension Shard {
    /// Units of `slot` a new hold may take now, after what this request already took (`taken`,
    /// keyed by `takenKey`).
    private func available(_ slot: UInt32, _ taken: [Int: Int64]) -> Int64 {
        max(0, cells.cell(slot).pointee.sellable - taken[takenKey(slot), default: 0])
    }

    /// The key of a slot of this shard in a request's `taken` map (one map serves every shard of a core).
    @inline(__always) func takenKey(_ slot: UInt32) -> Int { index << 32 | Int(slot) }

    /// Chooses (slot, units) for one line within what is sellable now, minus what the same request
    /// already took, in the channel's priority order, and hands each to `take` (units > 0).
    /// All-or-nothing lines get all or nothing. Changes nothing. A location line allocates nothing.
    func allocate(_ line: ReservationLine, mode: ReservationMode, taken: [Int: Int64], channels: ChannelTable,
                  _ take: (_ slot: UInt32, _ units: Int64) -> Void) {
        switch line.target {
        case .location(let location):
            guard let slot = cells.slot(sku: line.sku, location: location) else { return }
            let units = min(line.quantity, available(slot, taken))
            if mode == .allOrNothing && units < line.quantity { return }
            if units > 0 { take(slot, units) }
        case .channel(let channelID, let allowSplit):
            guard let channel = channels[channelID] else { return }
            var candidates: [(slot: UInt32, units: Int64)] = []
            var sum: Int64 = 0
            for location in channel.locations {
                guard let slot = cells.slot(sku: line.sku, location: location) else { continue }
                let units = available(slot, taken)
                sum += units
                if units > 0 { candidates.append((slot, units)) }
            }
            let limit = min(line.quantity, channel.atp(sellableSum: sum))
            if mode == .allOrNothing && limit < line.quantity { return }
            guard limit > 0 else { return }
            if allowSplit {
                var remaining = limit
                for candidate in candidates where remaining > 0 {
                    let units = min(candidate.units, remaining)
                    take(candidate.slot, units)
                    remaining -= units
                }
                return
            }
            if let whole = candidates.first(where: { $0.units >= limit }) { return take(whole.slot, limit) }
            if mode == .allOrNothing { return }
            guard let largest = candidates.max(by: { $0.units < $1.units }) else { return }
            take(largest.slot, min(limit, largest.units))
        }
    }

    /// Creates the hold of `id` on this shard and adds its units to the cells' `reserved` bucket
    /// (`committed` for a committed hold). Precondition: the id holds nothing here yet, and every
    /// unit is sellable (`allocate` chose it), so no cell becomes short by it.
    func addHold(_ id: ReservationID, status: HoldStatus, origin: HoldOrigin, lines: [HoldLine]) {
        var hold = Hold(id: id, status: status, origin: origin)
        for line in lines where line.units > 0 {
            var update = CellUpdate(cells.cell(line.slot).pointee)
            if status == .committed { update.committed += Int64(line.units) } else { update.reserved += Int64(line.units) }
            store(update, slot: line.slot, eventMilliseconds: 0)
        }
        // The lines as given when they are already one per slot, all positive (no copy); else merged.
        if lines.allSatisfy({ $0.units > 0 }) && lines.indices.allSatisfy({ k in !lines[..<k].contains { $0.slot == lines[k].slot } }) {
            hold.lines = lines
        } else {
            for line in lines where line.units > 0 {
                if let existing = hold.lines.firstIndex(where: { $0.slot == line.slot }) {
                    hold.lines[existing].units += line.units
                } else {
                    hold.lines.append(line)
                }
            }
        }
        guard !hold.lines.isEmpty else { return }
        holds.insert(hold)  // precondition: the id holds nothing here yet
    }

    /// Applies `change` to the hold of `id`, when it has `origin` (nil: any origin). Returns the
    /// hold's status before the change, or nil when there is no such hold (nothing changes).
    /// keep: tentative → held. commit: reserved → committed units. abort, release: units given
    /// back (reserved or committed) and the hold forgotten.
    @discardableResult
    func changeHold(_ id: ReservationID, origin: HoldOrigin?, _ change: HoldChange) -> HoldStatus? {
        guard let holdSlot = holds.slot(of: id) else { return nil }
        let before = holds[slot: holdSlot].status
        guard origin == nil || holds[slot: holdSlot].origin == origin else { return nil }
        switch change {
        case .keep:
            if before == .tentative { holds[slot: holdSlot].status = .held }
        case .commit:
            guard before != .committed else { return before }
            for line in holds[slot: holdSlot].lines {
                var update = CellUpdate(cells.cell(line.slot).pointee)
                update.reserved -= Int64(line.units)
                update.committed += Int64(line.units)
                store(update, slot: line.slot, eventMilliseconds: 0)
            }
            holds[slot: holdSlot].status = .committed
        case .abort, .release:
            let committed = before == .committed
            for line in holds[slot: holdSlot].lines {
                var update = CellUpdate(cells.cell(line.slot).pointee)
                if committed { update.committed -= Int64(line.units) } else { update.reserved -= Int64(line.units) }
                store(update, slot: line.slot, eventMilliseconds: 0)
            }
            holds.remove(slot: holdSlot)
        }
        return before
    }

    /// Committed units reservation `id` still holds on `slot` (0 when none).
    func committedHeld(by id: ReservationID, slot: UInt32) -> Int64 {
        guard let holdSlot = holds.slot(of: id), holds[slot: holdSlot].isCommitted else { return 0 }
        return Int64(holds[slot: holdSlot].lines.first(where: { $0.slot == slot })?.units ?? 0)
    }

    /// A shipment fulfilled `units` of the committed hold of `id` on `slot` (the caller lowers the
    /// cell's `committed` bucket by the same units). A hold whose every unit shipped is forgotten.
    func consumeCommittedHold(_ id: ReservationID, slot: UInt32, units: Int64) {
        // In place, by slot, as changeHold does: a copy of the hold made its lines copy on write.
        guard let holdSlot = holds.slot(of: id),
              let line = holds[slot: holdSlot].lines.firstIndex(where: { $0.slot == slot }) else { return }
        holds[slot: holdSlot].lines[line].units -= Int32(units)
        assert(holds[slot: holdSlot].lines[line].units >= 0)
        if holds[slot: holdSlot].lines[line].units == 0 { holds[slot: holdSlot].lines.remove(at: line) }
        if holds[slot: holdSlot].lines.isEmpty { holds.remove(slot: holdSlot) }
    }
}
