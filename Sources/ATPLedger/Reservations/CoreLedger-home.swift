/// The home side of reservations (docs/ARCHITECTURE.md, "Reservations"; docs/DURABILITY.md,
/// "Reservations across cores"). A reservation's home shard keeps its record and expiry and is the
/// only place its state changes:
///
/// - every line on this core: decided at once, one journal record (`reserveDecided`), holds made;
/// - lines on other cores: each part core holds its lines tentatively and journals that
///   (`prepared`); once all answered, the home decides and journals one decision record; only once
///   that record is durable does it tell the parts to keep or give back their holds. The reply waits
///   for the decision and for every part's prepare record;
/// - commit, release and expiry: one record at home (`transitions`), applied to the home's own
///   holds at once, told to the parts once durable. The reply waits for the home's record only.
///
/// So a part's holds never run ahead of the home's durable record, and recovery brings every part
/// to the home's state (`Resolution`).
extension CoreLedger {
    /// The most times one operation is sent on to another core (`redirect`) before it is refused:
    /// one to the core the directory names, one back to the first line's home when the record
    /// there was forgotten meanwhile, and one spare.
    static let redirectsMax = 3

    /// Starts or answers one operation on reservation `id` routed to `homeShard` (this core's):
    /// for a reserve its first line's shard, for commit and release the home the directory named
    /// when the request was routed (the id's hashed shard when it named none).
    ///
    /// Commit and release find their record there, or the id is unknown: records never move, so
    /// one routed by the directory finds it unless it was forgotten since, and one routed while
    /// the id was unknown takes effect as of then (before a reserve still on its way), which keeps
    /// the operations on one known id in the order their home received them. A reserve whose id is
    /// already claimed for another home is sent on there (`redirect`; `hops` counts the sends) and
    /// answered from that record as a retry.
    func perform(_ operation: ReservationOperation, id: ReservationID, homeShard: Int, hops: Int = 0,
                 nowMilliseconds now: Int64, completion: @escaping ReservationCompletion) {
        precondition(owns(shard: homeShard), "reservation \(id) routed to shard \(homeShard), not core \(index)'s")
        trace?("core \(index) perform \(operation) \(id) at \(homeShard) hop \(hops): pending \(pendingReserves[id] != nil), record \(String(describing: shard(homeShard).records[id]?.state))")
        // A valid reserve at its own home claims its id first: a new id (the common case) then needs
        // no look at the records, a cache miss less per reservation (a claim exists for every
        // record and every reserve being decided, so a free id has neither).
        var claimedHere = false
        if case .reserve(let request) = operation, homeShardIndex(of: request) == homeShard, validate(request) == nil {
            switch directory.claim(id, home: homeShard) {
            case nil:
                return startReserve(request, homeShard: homeShard, nowMilliseconds: now, completion: completion)
            case let claimed? where claimed != homeShard:
                // A retry naming another first line: answered from the first one's record.
                return redirect(operation, id: id, to: claimed, hops: hops, nowMilliseconds: now, completion: completion)
            default:
                claimedHere = true  // a retry of a record or of a reserve being decided here
            }
        }
        if !pendingReserves.isEmpty, let pending = pendingReserves[id] {
            pending.deferred.append((operation, completion))
            return
        }
        if let slot = shard(homeShard).records.slot(of: id) {
            expireIfDue(slot, homeShard: homeShard, nowMilliseconds: now)
            continueOperation(operation, slot: slot, homeShard: homeShard, nowMilliseconds: now, completion: completion)
            return
        }
        // Not where it was routed: a reserve is new, or a retry of an id claimed elsewhere.
        guard case .reserve(let request) = operation else {
            return completion(ReservationReply(id: id, state: .refused, lines: [], expiresAtMilliseconds: 0,
                                               replayed: false, error: .unknownReservation))
        }
        if claimedHere {
            // Claimed for this shard above, yet neither recorded nor being decided here: another id
            // with the same 112-bit fingerprint (about n²/2¹¹³). Refused, not confused with it.
            return completion(ReservationReply(id: id, state: .refused, lines: [], expiresAtMilliseconds: 0,
                                               replayed: false, error: .notDurable(
                                                   "reservation id \(id) shares its fingerprint with another id; retry with another id or after a restart")))
        }
        // Invalid, or a redirected reserve not at its own first line's home.
        if let home = directory.home(of: id), home != homeShard {
            // A retry of a known id answers with its first result, even when it is not a valid
            // request itself (a retry without its lines).
            return redirect(operation, id: id, to: home, hops: hops, nowMilliseconds: now, completion: completion)
        }
        if let problem = validate(request) {
            return completion(ReservationReply(id: id, state: .refused, lines: [], expiresAtMilliseconds: 0,
                                               replayed: false, error: .invalidRequest(problem)))
        }
        // Sent on to a record that was forgotten on the way: back to its own first line's home.
        redirect(operation, id: id, to: homeShardIndex(of: request), hops: hops, nowMilliseconds: now,
                 completion: completion)
    }

    /// Sends an operation on to the core of `homeShard` (or performs it here when this core owns
    /// that shard), refusing it once it was sent on `redirectsMax` times.
    private func redirect(_ operation: ReservationOperation, id: ReservationID, to homeShard: Int, hops: Int,
                          nowMilliseconds now: Int64, completion: @escaping ReservationCompletion) {
        guard hops < Self.redirectsMax else {
            return completion(ReservationReply(id: id, state: .refused, lines: [], expiresAtMilliseconds: 0,
                                               replayed: false, error: .notDurable(
                                                   "reservation \(id) moved between cores \(hops) times while routed; retry")))
        }
        if owns(shard: homeShard) {
            return perform(operation, id: id, homeShard: homeShard, hops: hops + 1, nowMilliseconds: now,
                           completion: completion)
        }
        environment.send(.redirect(operation: operation, id: id, homeShard: homeShard, hops: hops + 1,
                                   completion: completion), to: coreIndex(ofShard: homeShard))
    }

    private func validate(_ request: ReserveRequest) -> ReservationRequestProblem? {
        if request.lines.isEmpty { return .noLines }
        if request.lines.count > configuration.reservationLinesMax { return .tooManyLines }
        if request.ttlMilliseconds < 1 || request.ttlMilliseconds > configuration.reservationTTLMillisecondsMax {
            return .ttlOutOfRange
        }
        for line in request.lines {
            if line.quantity <= 0 { return .quantityNotPositive }
            if line.quantity > configuration.quantityMax { return .quantityTooLarge }
        }
        return nil
    }

    /// Whether every line of `request` is on one of this core's shards.
    @inline(__always) func allLinesAreLocal(_ request: ReserveRequest) -> Bool {
        configuration.workerCount == 1 || request.lines.allSatisfy { coreIndex(ofShard: shardIndex(of: $0.sku)) == index }
    }

    /// The line indices of `request` by owning core, in core order.
    func lineIndicesByCore(_ request: ReserveRequest) -> [(core: Int, indices: [Int])] {
        var byCore: [(core: Int, indices: [Int])] = []
        for (lineIndex, line) in request.lines.enumerated() {
            let core = coreIndex(ofShard: shardIndex(of: line.sku))
            if let position = byCore.firstIndex(where: { $0.core == core }) {
                byCore[position].indices.append(lineIndex)
            } else {
                byCore.append((core, [lineIndex]))
            }
        }
        return byCore.sorted { $0.core < $1.core }
    }

    /// The shards of `core` that hold lines of `request`, ascending.
    func shards(of request: ReserveRequest, onCore core: Int) -> [Int] {
        var result: [Int] = []
        for line in request.lines {
            let shard = shardIndex(of: line.sku)
            if coreIndex(ofShard: shard) == core && !result.contains(shard) { result.append(shard) }
        }
        return result.sorted()
    }

    /// The shards where a part's answer granted units, ascending.
    private func grantedShards(_ answer: PrepareAnswer, of request: ReserveRequest) -> [Int] {
        var result: [Int] = []
        for (lineIndex, grant) in answer.grants where grant.granted > 0 {
            let shard = shardIndex(of: request.lines[lineIndex].sku)
            if !result.contains(shard) { result.append(shard) }
        }
        return result.sorted()
    }

    /// The shards of `core` where `record` holds units (lines granted something), ascending. Only
    /// those are changed: another hold of the same id (a forgotten committed reservation's, still
    /// shippable) may sit where this one was granted nothing.
    func heldShards(of record: ReservationRecord, onCore core: Int) -> [Int] {
        var result: [Int] = []
        forEachHeldShard(of: record, onCore: core) { result.append($0) }
        return result.sorted()
    }

    /// Calls `body` once for each shard `heldShards(of:onCore:)` returns, in no particular order,
    /// without building the list.
    func forEachHeldShard(of record: ReservationRecord, onCore core: Int, _ body: (Int) -> Void) {
        let lines = record.request.lines
        let grants = record.lineGrants
        for line in 0..<lines.count where grants[line].granted > 0 {
            let shard = shardIndex(of: lines[line].sku)
            guard coreIndex(ofShard: shard) == core else { continue }
            // Each shard once: skip it when an earlier granted line was on it.
            var seen = false
            for earlier in 0..<line where grants[earlier].granted > 0 && shardIndex(of: lines[earlier].sku) == shard {
                seen = true
                break
            }
            if !seen { body(shard) }
        }
    }

    private func startReserve(_ request: ReserveRequest, homeShard: Int, nowMilliseconds now: Int64,
                              completion: @escaping ReservationCompletion) {
        // Every line on this core (every one-line reservation of a one-core engine): decided now,
        // without grouping the lines by core.
        if allLinesAreLocal(request) {
            return decide(request, homeShard: homeShard, answers: [], nowMilliseconds: now, completion: completion)
        }
        let byCore = lineIndicesByCore(request)
        let remote = byCore.filter { $0.core != index }
        if remote.isEmpty {
            return decide(request, homeShard: homeShard, answers: [], nowMilliseconds: now, completion: completion)
        }
        // All-or-nothing with a local line that cannot be covered: refused here and now.
        if request.mode == .allOrNothing, let local = byCore.first(where: { $0.core == index }),
           allocate(request, lineIndices: local.indices).contains(where: { $0.grant.granted < $0.grant.requested }) {
            return decide(request, homeShard: homeShard, answers: [], nowMilliseconds: now, completion: completion,
                          refuseLocally: true)
        }
        pendingReserves[request.id] = PendingReserve(request: request, homeShard: homeShard, nowMilliseconds: now,
                                                     outstanding: remote.count, completion: completion)
        for part in remote {
            environment.send(.prepare(request: request, lineIndices: part.indices, homeShard: homeShard), to: part.core)
        }
    }

    /// A part core answered a prepare.
    func receivePrepared(id: ReservationID, homeShard: Int, from core: Int, origin: HoldOrigin,
                         grants: [(index: Int, grant: LineGrant)], failure: DurabilityFailure?,
                         nowMilliseconds now: Int64) {
        guard let pending = pendingReserves[id] else {
            preconditionFailure("core \(index): a prepare answer for \(id), which waits for none")
        }
        precondition(pending.outstanding > 0 && !pending.answers.contains { $0.core == core }, "core \(core) answered twice")
        pending.answers.append(PrepareAnswer(core: core, origin: origin, grants: grants, failure: failure))
        pending.outstanding -= 1
        guard pending.outstanding == 0 else { return }
        pendingReserves[id] = nil
        decide(pending.request, homeShard: homeShard, answers: pending.answers, nowMilliseconds: now,
               completion: pending.completion)
        for (operation, completion) in pending.deferred {
            perform(operation, id: id, homeShard: homeShard, nowMilliseconds: now, completion: completion)
        }
    }

    /// Decides a reserve from the parts' answers and this core's own lines, journals the decision,
    /// applies it, answers once the decision and the parts' prepares are durable, and tells the
    /// parts to keep or give back their holds once the decision is durable.
    private func decide(_ request: ReserveRequest, homeShard: Int, answers: [PrepareAnswer], nowMilliseconds now: Int64,
                        completion: ReservationCompletion?, refuseLocally: Bool = false) {
        var grants = request.lines.map { LineGrant(requested: $0.quantity) }
        for answer in answers { for (lineIndex, grant) in answer.grants { grants[lineIndex] = grant } }
        if !refuseLocally {
            if allLinesAreLocal(request) {
                allocateGrants(request, lineIndices: request.lines.indices, into: &grants)
            } else {
                allocateGrants(request, lineIndices: lineIndicesByCore(request).first { $0.core == index }?.indices ?? [],
                               into: &grants)
            }
        }
        if let failure = answers.lazy.compactMap(\.failure).first {
            // A part could not journal its prepare: nothing is decided, the other parts give back.
            return abandon(request, homeShard: homeShard, answers: answers, completion: completion,
                           reason: failure.reason)
        }
        let complete = grants.allSatisfy { $0.granted == $0.requested }
        let total = grants.reduce(0) { $0 + $1.granted }
        let held = total > 0 && (complete || request.mode == .partial)
        if !held { grants = request.lines.map { LineGrant(requested: $0.quantity) } }
        var decision = ReservationRecord(request: request, state: held ? .held : .refused, lineGrants: grants,
                                         expiresAtMilliseconds: now + request.ttlMilliseconds)
        decision.parts = held ? answers.filter { $0.grantedUnits > 0 }.map { PartReference(core: $0.core, origin: $0.origin) } : []
        var lsn: UInt64 = 0
        if let recorder {
            switch recorder.recordReserveDecision(decision, homeShard: homeShard, nowMilliseconds: now) {
            case .appended(let appended): lsn = appended
            case .refused(let refusal):
                return abandon(request, homeShard: homeShard, answers: answers, completion: completion,
                               reason: refusal.reason)
            }
        }
        let record = applyDecision(decision, homeShard: homeShard, lsn: lsn, nowMilliseconds: now)
        trace?("core \(index) decided \(record.id) \(record.state) \(record.lineGrants.map(\.granted)) parts \(record.parts.map(\.core)) lsn \(lsn)")
        for answer in answers where answer.grantedUnits > 0 {
            environment.send(.change(id: request.id, homeShard: homeShard, origin: answer.origin,
                                     change: held ? .keep : .abort,
                                     shards: grantedShards(answer, of: request), acknowledge: false),
                             to: answer.core, whenStable: [DurablePosition(core: index, lsn: lsn)])
        }
        if let completion { answer(record.reply(replayed: false), after: dependencies(of: record), completion) }
    }

    /// Gives up a reserve nothing was journaled for at home: the parts give their tentative holds
    /// back at once (recovery would too: no home record), the id's claim is given up, and the
    /// caller hears `notDurable`.
    private func abandon(_ request: ReserveRequest, homeShard: Int, answers: [PrepareAnswer],
                         completion: ReservationCompletion?, reason: String) {
        directory.remove(request.id, home: homeShard)
        for answer in answers where answer.grantedUnits > 0 {
            environment.send(.change(id: request.id, homeShard: homeShard, origin: answer.origin, change: .abort,
                                     shards: grantedShards(answer, of: request), acknowledge: false),
                             to: answer.core)
        }
        completion?(ReservationReply(id: request.id, state: .refused, lines: [], expiresAtMilliseconds: 0,
                                     replayed: false, error: .notDurable(reason)))
    }

    /// Applies a decided reserve (live, and when replaying its record): the record, the holds on
    /// this core's cells (recomputed from the grants), the expiry and the counters.
    @discardableResult
    func applyDecision(_ decision: ReservationRecord, homeShard: Int, lsn: UInt64, nowMilliseconds now: Int64)
        -> ReservationRecord
    {
        let home = shard(homeShard)
        // Forgetting runs before the change, never on the record being decided (replay does the same).
        forgetOldOutcomes(home, nowMilliseconds: now)
        var record = decision
        record.lastRecordLSN = lsn
        if record.state == .held {
            addLocalHolds(of: record)
            if record.lineGrants.allSatisfy({ $0.granted == $0.requested }) {
                home.counters.reservationsGranted &+= 1
            } else {
                home.counters.reservationsPartial &+= 1
            }
        } else {
            record.settledAtMilliseconds = now
            home.noteFinished(record.id, sinceMilliseconds: now)
            home.counters.reservationsRefused &+= 1
        }
        home.insertRecord(record)
        return record
    }

    /// Holds the granted units of the lines on this core's shards (state held, local origin).
    private func addLocalHolds(of record: ReservationRecord) {
        // One line (the flash-sale case): its hold lines straight from its allocations.
        if record.request.lines.count == 1 {
            let line = record.request.lines[0]
            let shardIndex = self.shardIndex(of: line.sku)
            guard record.lineGrants[0].granted > 0, owns(shard: shardIndex) else { return }
            let shard = shard(shardIndex)
            var lines: [HoldLine] = []
            lines.reserveCapacity(record.lineGrants[0].allocations.count)
            for allocation in record.lineGrants[0].allocations where allocation.quantity > 0 {
                guard let slot = shard.cells.slot(sku: line.sku, location: allocation.location) else {
                    preconditionFailure("reservation \(record.id) holds on a cell that does not exist")
                }
                lines.append(HoldLine(slot: slot, units: Int32(allocation.quantity)))
            }
            shard.addHold(record.id, status: .held, origin: .local, lines: lines)
            return
        }
        var linesByShard: [(shard: Int, lines: [HoldLine])] = []
        for (line, grant) in zip(record.request.lines, record.lineGrants) where grant.granted > 0 {
            let shardIndex = self.shardIndex(of: line.sku)
            guard owns(shard: shardIndex) else { continue }
            let shard = shard(shardIndex)
            var lines: [HoldLine] = []
            for allocation in grant.allocations where allocation.quantity > 0 {
                guard let slot = shard.cells.slot(sku: line.sku, location: allocation.location) else {
                    preconditionFailure("reservation \(record.id) holds on a cell that does not exist")
                }
                lines.append(HoldLine(slot: slot, units: Int32(allocation.quantity)))
            }
            if let position = linesByShard.firstIndex(where: { $0.shard == shardIndex }) {
                linesByShard[position].lines += lines
            } else {
                linesByShard.append((shardIndex, lines))
            }
        }
        for (shardIndex, lines) in linesByShard {
            shard(shardIndex).addHold(record.id, status: .held, origin: .local, lines: lines)
        }
    }

    // MARK: - Commit, release, expiry

    /// Answers or starts an operation on the record in `slot` of the home shard's records.
    private func continueOperation(_ operation: ReservationOperation, slot: Int, homeShard: Int,
                                   nowMilliseconds now: Int64, completion: @escaping ReservationCompletion) {
        let home = shard(homeShard)
        switch (operation, home.records[slot: slot].state) {
        case (.reserve, _), (.commit, .committed), (.release, .released), (.release, .expired), (.release, .refused):
            let record = home.records[slot: slot]
            answer(record.reply(replayed: true), after: dependencies(of: record), stable: answersWaitForStability(record),
                   completion)
        case (.commit, .held):
            transition(CollectionOfOne(slot), homeShard: homeShard, to: .committed, nowMilliseconds: now, completion: completion)
        case (.commit, let state):
            let record = home.records[slot: slot]
            answer(record.reply(replayed: false, error: .notHeld(state)), after: dependencies(of: record),
                   stable: answersWaitForStability(record), completion)
        case (.release, .held), (.release, .committed):
            transition(CollectionOfOne(slot), homeShard: homeShard, to: .released, nowMilliseconds: now, completion: completion)
        }
    }

    /// Expires the record in `slot` when it is held and its deadline has passed (before an
    /// operation on it answers).
    private func expireIfDue(_ slot: Int, homeShard: Int, nowMilliseconds now: Int64) {
        let home = shard(homeShard)
        guard let deadline = home.records[slot: slot].heldUntilMilliseconds, deadline <= now else { return }
        transition(CollectionOfOne(slot), homeShard: homeShard, to: .expired, nowMilliseconds: now, completion: nil)
    }

    /// Transitions journaled in one record at most. An expiry pass after a stall of the core (a
    /// backlog of tens of thousands due at once in a flash sale) built one record of them all; past
    /// the journal's `recordPayloadBytesMax` (1 MiB) the journal refused it, every pass rebuilt and
    /// re-sent the growing batch, and the core spent its time there while nothing expired and its
    /// replies starved (atpbench, shard-aware reserves with 1 s ttls). 4,096 entries of the longest
    /// id are 4,096 × 67 + 16 = 274,448 bytes.
    static let transitionsPerRecordMax = 4096

    /// Expires every held reservation of this core whose deadline is at or before `now`: one
    /// journal record per home shard with due reservations, per `transitionsPerRecordMax` of them.
    /// Cost: the due records only (the expiry queue holds exactly the held ones). A refused journal
    /// record leaves its records held and queued: the next pass tries again.
    func expireDue(nowMilliseconds now: Int64) {
        guard let earliest = expiries.earliestDeadline, earliest <= now else { return }
        var nodes = scratch.dueNodes.take()
        var slots = scratch.dueSlots.take()
        defer {
            nodes.removeAll(keepingCapacity: true)
            scratch.dueNodes = nodes
            scratch.dueSlots = slots
        }
        expiries.due(nowMilliseconds: now, into: &nodes, scratch: &scratch.due)
        // One transition per home shard, in shard order, each shard's records in deadline order.
        for shard in shards {
            slots.removeAll(keepingCapacity: true)
            for node in nodes where ExpiryQueue.position(of: node) == shard.expiryPosition {
                slots.append(ExpiryQueue.slot(of: node))
            }
            // Each chunk's slots stay valid while the earlier chunks settle: they are still held, so
            // forgetting never takes them.
            var start = 0
            while start < slots.count {
                let end = min(start + Self.transitionsPerRecordMax, slots.count)
                transition(slots[start..<end], homeShard: shard.index, to: .expired, nowMilliseconds: now, completion: nil)
                start = end
            }
        }
    }

    /// Moves the records in `recordSlots` of the home shard's records (all held, or held/committed
    /// for a release) to `state`: one journal record, then the home's own holds, the record, and
    /// once durable the parts' holds. Answers `completion` (one record only) once the record is
    /// durable. The slots stay valid throughout: a record stays in the table until its own
    /// transition (forgetting spares it, and the others of the batch are held, so not forgettable).
    private func transition(_ recordSlots: some Collection<Int>, homeShard: Int, to state: ReservationState,
                            nowMilliseconds now: Int64, completion: ReservationCompletion?) {
        precondition(completion == nil || recordSlots.count == 1, "one completion per transition")
        let home = shard(homeShard)
        var entries = scratch.transitionEntries.take()
        defer {
            entries.removeAll(keepingCapacity: true)
            scratch.transitionEntries = entries
        }
        for slot in recordSlots {
            let acknowledge = !home.records[slot: slot].parts.isEmpty
                && (state == .committed || home.records[slot: slot].state == .committed)
            entries.append(TransitionEntry(id: home.records[slot: slot].id, state: state, acknowledge: acknowledge))
        }
        var lsn: UInt64 = 0
        if let recorder {
            switch recorder.recordTransitions(entries, homeShard: homeShard, nowMilliseconds: now) {
            case .appended(let appended): lsn = appended
            case .refused(let failure):
                // Not applied; a refused expiry stays queued and is retried by the next pass.
                if let completion, let slot = recordSlots.first {
                    let record = home.records[slot: slot]
                    completion(ReservationReply(id: record.id, state: record.state, lines: [], expiresAtMilliseconds: 0,
                                                replayed: false, error: .notDurable(failure.reason)))
                }
                return
            }
        }
        for (entry, slot) in zip(entries, recordSlots) {
            let before: ReservationRecord? = home.records[slot: slot].parts.isEmpty ? nil : home.records[slot: slot]
            applyTransition(entry, slot: slot, home: home, lsn: lsn, nowMilliseconds: now)
            guard let before else { continue }
            for part in before.parts {
                environment.send(.change(id: entry.id, homeShard: homeShard, origin: part.origin,
                                         change: state == .committed ? .commit : .release,
                                         shards: heldShards(of: before, onCore: part.core),
                                         acknowledge: entry.acknowledge),
                                 to: part.core, whenStable: [DurablePosition(core: index, lsn: lsn)])
            }
        }
        if let completion, let slot = recordSlots.first {
            let record = home.records[slot: slot]
            answer(record.reply(replayed: false), after: dependencies(of: record),
                   stable: answersWaitForStability(record), completion)
        }
    }

    /// Whether an answer about `record` waits for its home's newest record to be stable, not only
    /// durable: when it tells a multi-core reservation is committed. Its parts hear of the commit
    /// only once that record is stable (`send(_:to:whenStable:)`, queued ahead of the answer), so
    /// a shipment the client sends after the answer finds the units committed on the part. Every
    /// answer telling it — the commit's own, a replay to a retried reserve or commit — waits alike
    /// (seed 97370: a replay that did not let the client ship against units the part still held
    /// uncommitted, and the shipment lowered only onHand).
    func answersWaitForStability(_ record: ReservationRecord) -> Bool {
        record.state == .committed && !record.parts.isEmpty
    }

    /// Applies one transition (live, and when replaying its record): the home's own holds, the
    /// record's state, acknowledgements awaited, the retention clock and the counters.
    func applyTransition(_ entry: TransitionEntry, homeShard: Int, lsn: UInt64, nowMilliseconds now: Int64) {
        let home = shard(homeShard)
        // Forgetting (first thing in the slot form) spares this record, so its slot stays valid.
        guard let slot = home.records.slot(of: entry.id) else {
            forgetOldOutcomes(home, nowMilliseconds: now, sparing: entry.id)
            return
        }
        applyTransition(entry, slot: slot, home: home, lsn: lsn, nowMilliseconds: now)
    }

    /// `applyTransition(_:homeShard:lsn:nowMilliseconds:)` for the record in `slot` of `home`.
    private func applyTransition(_ entry: TransitionEntry, slot: Int, home: Shard, lsn: UInt64, nowMilliseconds now: Int64) {
        forgetOldOutcomes(home, nowMilliseconds: now, sparing: entry.id)
        assert(home.records[slot: slot].id == entry.id)
        let change: HoldChange = entry.state == .committed ? .commit : .release
        forEachHeldShard(of: home.records[slot: slot], onCore: index) { shardIndex in
            shard(shardIndex).changeHold(entry.id, origin: .local, change)
        }
        switch entry.state {
        case .committed: home.counters.reservationsCommitted &+= 1
        case .released: home.counters.reservationsReleased &+= 1
        case .expired: home.counters.reservationsExpired &+= 1
        case .held, .refused: preconditionFailure("no transition to \(entry.state)")
        }
        let finished = home.modifyRecord(slot: slot) { record -> Bool in
            record.state = entry.state
            record.lastRecordLSN = lsn
            if entry.acknowledge { record.acknowledgementsAwaited += record.parts.count }
            record.settledAtMilliseconds = now
            return record.acknowledgementsAwaited == 0
        }
        if finished { home.noteFinished(entry.id, sinceMilliseconds: now) }
    }

    /// A part's change (a commit, or a release of committed units) is durable there.
    func receiveAcknowledged(id: ReservationID, homeShard: Int, from core: Int, nowMilliseconds now: Int64) {
        if let recorder {
            // A refused record only delays forgetting the record until a restart; nothing to refuse.
            _ = recorder.recordAcknowledgement(id, homeShard: homeShard, from: core, nowMilliseconds: now)
        }
        applyAcknowledgement(id, homeShard: homeShard, nowMilliseconds: now)
    }

    /// Counts one acknowledgement (live, and when replaying its record).
    func applyAcknowledgement(_ id: ReservationID, homeShard: Int, nowMilliseconds now: Int64) {
        let home = shard(homeShard)
        forgetOldOutcomes(home, nowMilliseconds: now)
        guard var record = home.records[id], record.acknowledgementsAwaited > 0 else { return }
        record.acknowledgementsAwaited -= 1
        if record.acknowledgementsAwaited == 0 && record.state != .held {
            // The retention window runs from the settle; only forgetting waited for the parts.
            home.noteFinished(id, sinceMilliseconds: record.settledAtMilliseconds)
        }
        home.setRecord(record, for: id)
    }

    /// Forgets settled records past the retention window or beyond the per-shard maximum, oldest
    /// first. A record still awaiting part acknowledgements is not in the queue yet (it joins it
    /// with its settle time once they arrived, so the queue is oldest first up to those few).
    /// Runs at the start of every decision, transition and acknowledgement (live and replayed), so
    /// it never forgets the record being changed (`sparing`: a batch of expiries spares each in turn).
    func forgetOldOutcomes(_ home: Shard, nowMilliseconds now: Int64, sparing spared: ReservationID? = nil) {
        let retention = configuration.reservationOutcomeRetentionMilliseconds
        let maximum = configuration.reservationOutcomesRememberedMaxPerShard
        while let since = home.finishedOutcomes.oldestMilliseconds {
            // Past the retention the whole millisecond goes, in any order; by count, smallest id first.
            let pastRetention = since + retention < now
            guard pastRetention || home.forgettableRecords > maximum,
                  let oldest = home.finishedOutcomes.removeOldest(inIDOrder: !pastRetention) else { break }
            if let record = home.records[oldest.id], record.isForgettable, oldest.id != spared,
               record.settledAtMilliseconds == oldest.sinceMilliseconds {
                trace?("core \(index) forgets \(oldest.id) (\(record.state))")
                home.setRecord(nil, for: oldest.id)
            }
        }
    }

    // MARK: - Replies

    /// The journal positions a reply about `record` waits for: the home's newest record about it and
    /// every part's prepare (a reserve is acknowledged only once all of them are durable).
    func dependencies(of record: ReservationRecord) -> [DurablePosition] {
        guard recorder != nil else { return [] }
        var positions: [DurablePosition] = []
        if record.lastRecordLSN > 0 { positions.append(DurablePosition(core: index, lsn: record.lastRecordLSN)) }
        for part in record.parts where part.origin.prepareLSN > 0 {
            positions.append(DurablePosition(core: part.core, lsn: part.origin.prepareLSN))
        }
        return positions
    }

    /// Sends `reply` once `positions` are durable (with `stable`, stable), a failure turning it
    /// into `notDurable`.
    func answer(_ reply: ReservationReply, after positions: [DurablePosition], stable: Bool = false,
                _ completion: @escaping ReservationCompletion) {
        if positions.isEmpty { return completion(reply) }
        let action: @Sendable (DurabilityFailure?) -> Void = { failure in
            guard let failure else { return completion(reply) }
            completion(ReservationReply(id: reply.id, state: reply.state, lines: [], expiresAtMilliseconds: 0,
                                        replayed: false, error: .notDurable(failure.reason)))
        }
        if stable { environment.whenStable(positions, action) } else { environment.whenDurable(positions, action) }
    }
}

/// One record's move to a new state, as journaled in a `transitions` record.
struct TransitionEntry: Equatable {
    var id: ReservationID
    var state: ReservationState
    /// Whether the parts acknowledge the change once durable (commits, releases of committed units).
    var acknowledge: Bool
}
