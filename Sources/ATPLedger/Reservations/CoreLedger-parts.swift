/// The part side of reservations: lines of a reservation whose home is another core. A part holds
/// its lines tentatively when asked (`prepare`), journals that with the holds it made, and answers;
/// the home's decision, commit, release or expiry reach it only once the home's record of them is
/// durable (docs/DURABILITY.md, "Reservations across cores").
extension CoreLedger {
    /// What one line gets on this core's shards: its grant and the holds that back it.
    struct LinePlan {
        var index: Int
        var shard: Int
        var grant: LineGrant
        var holdLines: [HoldLine]
    }

    /// Plans the given lines of `request` (all on this core's shards) from the units sellable now,
    /// without changing anything. All-or-nothing: every line in full, or every grant 0. A shard on
    /// which the id already holds (a committed reservation whose record was forgotten, shippable by
    /// that id) grants nothing rather than overwrite that hold.
    func allocate(_ request: ReserveRequest, lineIndices: some Collection<Int>) -> [LinePlan] {
        var plans = lineIndices.map { lineIndex in
            LinePlan(index: lineIndex, shard: shardIndex(of: request.lines[lineIndex].sku),
                     grant: LineGrant(requested: request.lines[lineIndex].quantity), holdLines: [])
        }
        let short = takeUnits(request, lineIndices: lineIndices) { lineIndex, shard, slot, units in
            let position = plans.firstIndex { $0.index == lineIndex }!
            plans[position].holdLines.append(HoldLine(slot: slot, units: Int32(units)))
            plans[position].grant.granted += units
            plans[position].grant.allocations.append(LineAllocation(location: shard.cells.cell(slot).pointee.location,
                                                                    quantity: units))
        }
        if short && request.mode == .allOrNothing {
            return plans.map { LinePlan(index: $0.index, shard: $0.shard, grant: LineGrant(requested: $0.grant.requested),
                                        holdLines: []) }
        }
        return plans
    }

    /// `allocate(_:lineIndices:)`'s grants written into `grants` (indexed by line, each fresh:
    /// nothing granted yet), without plans or hold lines: the home's own lines, whose holds
    /// `applyDecision` makes from the grants. One allocation per granted line (its allocations).
    func allocateGrants(_ request: ReserveRequest, lineIndices: some Collection<Int>, into grants: inout [LineGrant]) {
        let short = takeUnits(request, lineIndices: lineIndices) { lineIndex, shard, slot, units in
            grants[lineIndex].granted += units
            grants[lineIndex].allocations.append(LineAllocation(location: shard.cells.cell(slot).pointee.location,
                                                                quantity: units))
        }
        if short && request.mode == .allOrNothing {
            for lineIndex in lineIndices { grants[lineIndex] = LineGrant(requested: grants[lineIndex].requested) }
        }
    }

    /// The choice both `allocate` forms share: for each of `lineIndices`, the (slot, units) it takes
    /// from its shard, handed to `take` in order. Returns whether some line got less than asked.
    private func takeUnits(_ request: ReserveRequest, lineIndices: some Collection<Int>,
                           _ take: (_ lineIndex: Int, _ shard: Shard, _ slot: UInt32, _ units: Int64) -> Void) -> Bool {
        var taken: [Int: Int64] = [:]
        var short = false
        var remaining = lineIndices.count
        for lineIndex in lineIndices {
            remaining -= 1
            let line = request.lines[lineIndex]
            let shard = shard(shardIndex(of: line.sku))
            var granted: Int64 = 0
            if shard.holds.slot(of: request.id) == nil {
                let before = taken
                shard.allocate(line, mode: request.mode, taken: before, channels: channels) { slot, units in
                    // What later lines of this request find taken (the last line has none after it).
                    if remaining > 0 { taken[shard.takenKey(slot), default: 0] += units }
                    granted += units
                    take(lineIndex, shard, slot, units)
                }
            }
            if granted < line.quantity { short = true }
        }
        return short
    }

    /// The home core asks this core to hold `lineIndices` of `request` tentatively.
    func receivePrepare(_ request: ReserveRequest, lineIndices: [Int], homeShard: Int, nowMilliseconds now: Int64) {
        let homeCore = coreIndex(ofShard: homeShard)
        let plans = allocate(request, lineIndices: lineIndices)
        var grants = plans.map { (index: $0.index, grant: $0.grant) }
        var origin = HoldOrigin(generation: generation, prepareLSN: 0)
        var failure: DurabilityFailure?
        if plans.contains(where: { $0.grant.granted > 0 }) {
            if let recorder {
                switch recorder.recordPrepare(request.id, homeShard: homeShard, generation: generation, plans: plans,
                                              lines: request.lines, nowMilliseconds: now) {
                case .appended(let lsn): origin.prepareLSN = lsn
                case .refused(let refusal): failure = refusal
                }
            } else {
                unjournaledPrepares &+= 1
                origin.prepareLSN = unjournaledPrepares
            }
            if failure == nil {
                applyPrepare(request.id, origin: origin, plans: plans)
            } else {
                grants = plans.map { (index: $0.index, grant: LineGrant(requested: $0.grant.requested)) }
            }
        }
        environment.send(.prepared(id: request.id, homeShard: homeShard, from: index, origin: origin, grants: grants,
                                   failure: failure), to: homeCore)
    }

    /// Makes the tentative holds of a prepare (live, and when replaying its record).
    func applyPrepare(_ id: ReservationID, origin: HoldOrigin, plans: [LinePlan]) {
        var linesByShard: [(shard: Int, lines: [HoldLine])] = []
        for plan in plans where !plan.holdLines.isEmpty {
            if let position = linesByShard.firstIndex(where: { $0.shard == plan.shard }) {
                linesByShard[position].lines += plan.holdLines
            } else {
                linesByShard.append((plan.shard, plan.holdLines))
            }
        }
        for (shardIndex, lines) in linesByShard {
            shard(shardIndex).addHold(id, status: .tentative, origin: origin, lines: lines)
        }
    }

    /// The home's decision, commit, release or expiry reached this core (its record is durable at
    /// home). Journaled and applied even when this core's journal failed (the part must not hold
    /// more than the home says; a restart brings it back from the journals). With `acknowledge` the
    /// home hears back once this core's record is durable.
    func receiveChange(_ change: HoldChange, id: ReservationID, homeShard: Int, origin: HoldOrigin, shards: [Int],
                       acknowledge: Bool, nowMilliseconds now: Int64) {
        var lsn: UInt64 = 0
        var journaled = recorder == nil
        if let recorder,
           case .appended(let appended) = recorder.recordPartChange(change, id: id, origin: origin, shards: shards,
                                                                     nowMilliseconds: now) {
            lsn = appended
            journaled = true
        }
        applyPartChange(change, id: id, origin: origin, shards: shards)
        if acknowledge && journaled {
            environment.send(.acknowledged(id: id, homeShard: homeShard, from: index), to: coreIndex(ofShard: homeShard),
                             whenStable: lsn == 0 ? [] : [DurablePosition(core: index, lsn: lsn)])
        }
    }

    /// Applies a change to this core's holds of `id` with `origin` (live, replay and recovery).
    func applyPartChange(_ change: HoldChange, id: ReservationID, origin: HoldOrigin, shards: [Int]) {
        for shardIndex in shards where owns(shard: shardIndex) {
            shard(shardIndex).changeHold(id, origin: origin, change)
        }
    }
}
