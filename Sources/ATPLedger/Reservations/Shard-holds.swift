/// The part side of reservations: units held on this shard's cells.
extension Shard {
    /// Units of `slot` a new hold may take now, after what this request already took (`taken`).
    private func available(_ slot: UInt32, _ taken: [UInt32: Int64]) -> Int64 {
        max(0, cells.cell(slot).pointee.sellable - taken[slot, default: 0])
    }

    /// Tries to hold the given lines of `request`. All-or-nothing: every line here in full or none.
    /// Returns the grant of each line index; records a `Hold` when anything was granted.
    func hold(_ request: ReserveRequest, lineIndices: [Int], channels: ChannelTable) -> [(index: Int, grant: LineGrant)] {
        // An id holds at most once per shard. A committed reservation whose record has left the
        // retention window may still hold unshipped units here under the same id (shippable by that
        // id): a new reservation reusing the id gets nothing on this shard rather than overwrite them.
        if holds[request.id] != nil {
            return lineIndices.map { ($0, LineGrant(requested: request.lines[$0].quantity)) }
        }
        var taken: [UInt32: Int64] = [:]
        var grants: [(index: Int, grant: LineGrant)] = []
        var plan: [HoldLine] = []
        for lineIndex in lineIndices {
            let line = request.lines[lineIndex]
            var grant = LineGrant(requested: line.quantity)
            let allocations = allocate(line, mode: request.mode, taken: taken, channels: channels)
            for (slot, units) in allocations where units > 0 {
                taken[slot, default: 0] += units
                plan.append(HoldLine(slot: slot, units: Int32(units)))
                grant.granted += units
                grant.allocations.append(LineAllocation(location: cells.cell(slot).pointee.location, quantity: units))
            }
            if request.mode == .allOrNothing && grant.granted < line.quantity {
                return lineIndices.map { ($0, LineGrant(requested: request.lines[$0].quantity)) }
            }
            grants.append((lineIndex, grant))
        }
        guard !plan.isEmpty else { return grants }
        var hold = Hold()
        for line in plan {
            var update = CellUpdate(cells.cell(line.slot).pointee)
            update.reserved += Int64(line.units)
            store(update, slot: line.slot, eventMilliseconds: 0)
            if let existing = hold.lines.firstIndex(where: { $0.slot == line.slot }) {
                hold.lines[existing].units += line.units
            } else {
                hold.lines.append(line)
            }
        }
        assert(holds[request.id] == nil, "a reservation id holds once per shard")
        holds[request.id] = hold
        return grants
    }

    /// Chooses (slot, units) for one line within what is available, in the channel's priority order.
    private func allocate(
        _ line: ReservationLine, mode: ReservationMode, taken: [UInt32: Int64], channels: ChannelTable
    ) -> [(UInt32, Int64)] {
        switch line.target {
        case .location(let location):
            guard let slot = cells.slot(sku: line.sku, location: location) else { return [] }
            let units = min(line.quantity, available(slot, taken))
            if mode == .allOrNothing && units < line.quantity { return [] }
            return [(slot, units)]
        case .channel(let channelID, let allowSplit):
            guard let channel = channels[channelID] else { return [] }
            var candidates: [(UInt32, Int64)] = []
            var sum: Int64 = 0
            for location in channel.locations {
                guard let slot = cells.slot(sku: line.sku, location: location) else { continue }
                let units = available(slot, taken)
                sum += units
                if units > 0 { candidates.append((slot, units)) }
            }
            let limit = min(line.quantity, channel.atp(sellableSum: sum))
            if mode == .allOrNothing && limit < line.quantity { return [] }
            guard limit > 0 else { return [] }
            if allowSplit {
                var result: [(UInt32, Int64)] = []
                var remaining = limit
                for (slot, units) in candidates where remaining > 0 {
                    let take = min(units, remaining)
                    result.append((slot, take))
                    remaining -= take
                }
                return result
            }
            if let whole = candidates.first(where: { $0.1 >= limit }) { return [(whole.0, limit)] }
            if mode == .allOrNothing { return [] }
            guard let largest = candidates.max(by: { $0.1 < $1.1 }) else { return [] }
            return [(largest.0, min(limit, largest.1))]
        }
    }

    /// Turns the held units of `id` into committed units.
    func commitHold(_ id: ReservationID) {
        guard var hold = holds[id], !hold.isCommitted else { return }
        for line in hold.lines {
            var update = CellUpdate(cells.cell(line.slot).pointee)
            update.reserved -= Int64(line.units)
            update.committed += Int64(line.units)
            store(update, slot: line.slot, eventMilliseconds: 0)
        }
        hold.isCommitted = true
        holds[id] = hold
    }

    /// Returns the units of `id` (reserved, or committed and not yet shipped) and forgets the hold.
    func releaseHold(_ id: ReservationID) {
        guard let hold = holds.removeValue(forKey: id) else { return }
        for line in hold.lines {
            var update = CellUpdate(cells.cell(line.slot).pointee)
            if hold.isCommitted {
                update.committed -= Int64(line.units)
            } else {
                update.reserved -= Int64(line.units)
            }
            store(update, slot: line.slot, eventMilliseconds: 0)
        }
    }

    /// Committed units reservation `id` still holds on `slot` (0 when none).
    func committedHeld(by id: ReservationID, slot: UInt32) -> Int64 {
        guard let hold = holds[id], hold.isCommitted else { return 0 }
        return Int64(hold.lines.first(where: { $0.slot == slot })?.units ?? 0)
    }

    /// A shipment fulfilled `units` of the committed hold of `id` on `slot`.
    func consumeCommittedHold(_ id: ReservationID, slot: UInt32, units: Int64) {
        guard var hold = holds[id], let line = hold.lines.firstIndex(where: { $0.slot == slot }) else { return }
        hold.lines[line].units -= Int32(units)
        assert(hold.lines[line].units >= 0)
        if hold.lines[line].units == 0 { hold.lines.remove(at: line) }
        holds[id] = hold.lines.isEmpty ? nil : hold
    }
}
