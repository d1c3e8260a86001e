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
    func allocate(_ request: ReserveRequest, lineIndices: [Int]) -> [LinePlan] {
        var taken: [Int: Int64] = [:]
        var plans: [LinePlan] = []
        var short = false
        for lineIndex in lineIndices {
            let line = request.lines[lineIndex]
            let shardIndex = self.shardIndex(of: line.sku)
            let shard = shard(shardIndex)
            var plan = LinePlan(index: lineIndex, shard: shardIndex, grant: LineGrant(requested: line.quantity), holdLines: [])
            if shard.holds[request.id] == nil {
                for (slot, units) in shard.allocate(line, mode: request.mode, taken: taken, channels: channels) where units > 0 {
                    taken[shard.takenKey(slot), default: 0] += units
                    plan.holdLines.append(HoldLine(slot: slot, units: Int32(units)))
                    plan.grant.granted += units
                    plan.grant.allocations.append(LineAllocation(location: shard.cells.cell(slot).pointee.location,
                                                                 quantity: units))
                }
            }
            if plan.grant.granted < line.quantity { short = true }
            plans.append(plan)
        }
        if short && request.mode == .allOrNothing {
            return plans.map { LinePlan(index: $0.index, shard: $0.shard, grant: LineGrant(requested: $0.grant.requested),
                                        holdLines: []) }
        }
        return plans
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
    func receiveChange(_ change: HoldChange, id: ReservationID, origin: HoldOrigin, shards: [Int], acknowledge: Bool,
                       nowMilliseconds now: Int64) {
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
            let homeCore = coreIndex(ofShard: homeShardIndex(of: id))
            environment.send(.acknowledged(id: id, from: index), to: homeCore,
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
