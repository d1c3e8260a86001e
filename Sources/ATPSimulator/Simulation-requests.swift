import ATPLedger

/// The simulated clients: what they send, and what they make of the answers.
extension SimulationRunner {
    /// Sends one random request.
    func request() {
        let roll = random.next(below: 100)
        switch roll {
        case 0..<34: sendEvents(randomEvents())
        case 34..<63: reserveNew()
        case 63..<68: retryReserve()
        case 68..<80: commitOrRelease(commit: true)
        case 80..<93: commitOrRelease(commit: false)
        case 93..<96: shipAgainstReservation()
        case 96..<98: changeChannel()
        default: resendBatch()
        }
    }

    /// Stocks every cell with a generous receive first (reservations need something to take).
    func stockEveryCell() {
        var events: [StockEvent] = []
        for sku in skus {
            for location in locations {
                events.append(event(.receive, sku, location, Int64(20 + random.next(below: 60))))
            }
        }
        sendEvents(events)
    }

    // MARK: - Events

    private func event(_ kind: StockEventKind, _ sku: SKUID, _ location: LocationID, _ quantity: Int64) -> StockEvent {
        let source = random.next(below: sources.count)
        let sequence = model.nextSequence[source]
        model.nextSequence[source] += 1
        return StockEvent(kind: kind, sku: sku, location: location, quantity: quantity, source: sources[source],
                          sequence: sequence, eventMilliseconds: cluster.nowMilliseconds)
    }

    /// 1–4 valid events of every kind on random cells (the engine applies them all).
    private func randomEvents() -> [StockEvent] {
        (0..<(1 + random.next(below: 4))).map { _ in randomEvent() }
    }

    private func randomEvent() -> StockEvent {
        let sku = skus[random.next(below: skus.count)]
        let location = locations[random.next(below: locations.count)]
        let q = Int64(1 + random.next(below: 12))
        switch random.next(below: 22) {
        case 0..<6:
            var receive = event(.receive, sku, location, q * 2)
            if random.next(below: 5) == 0 { receive.flags.insert(.intoQuarantine) }
            if random.next(below: 5) == 0 { receive.flags.insert(.closesInbound) }
            return receive
        case 6, 7: return event(.ship, sku, location, q)
        case 8:
            guard locations.count > 1 else { return event(.damage, sku, location, q) }
            var transfer = event(.transferOut, sku, location, q)
            transfer.toLocation = locations.first { $0 != location }!
            return transfer
        case 9, 10:
            var adjust = event(.adjust, sku, location, random.next(below: 2) == 0 ? q : -q)
            adjust.bucket = [Bucket.onHand, .damaged, .quarantine, .inbound, .returnPending, .safetyStock]
                .randomElement(using: &random)!
            return adjust
        case 11:
            var count = event(.count, sku, location, Int64(random.next(below: 80)))
            if random.next(below: 3) == 0 {
                count.flags.insert(.countsDamaged)
                count.countDamaged = Int32(random.next(below: 4))
            }
            if random.next(below: 3) == 0 {
                count.flags.insert(.countsQuarantine)
                count.countQuarantine = Int32(random.next(below: 4))
            }
            return count
        case 12, 13: return event(.returnAuthorized, sku, location, q)
        case 14, 15: return event(.returnReceived, sku, location, q)
        case 16, 17:
            var disposition = event(.disposition, sku, location, q)
            disposition.outcome = DispositionOutcome.allCases.randomElement(using: &random)!
            return disposition
        case 18: return event(.damage, sku, location, q)
        case 19:
            var writeOff = event(.writeOff, sku, location, q)
            writeOff.bucket = [Bucket.onHand, .damaged, .quarantine].randomElement(using: &random)!
            return writeOff
        case 20: return event(.setSafetyStock, sku, location, Int64(random.next(below: 4)))
        default: return event(.receive, sku, location, q * 3)
        }
    }

    /// Sends a batch; its answer goes in the model.
    func sendEvents(_ events: [StockEvent], correlations: [ReservationID] = [], isResend: Bool = false,
                    onAnswer: ((EventBatchResult) -> Void)? = nil) {
        let tag = model.batches.count
        model.batches.append(.init(events: events, correlations: correlations, acknowledged: nil, isResend: isResend))
        var batch = EventBatch(events: events)
        batch.correlationIDs = correlations
        result.trace(20, tag, events.count)
        log("send batch \(tag)\(isResend ? " (resend)" : ""): \(events.map { "\($0.kind) \($0.sku)@\($0.location) q\($0.quantity) s\($0.source)#\($0.sequence)" })")
        cluster.submit(batch, tag: tag) { [unowned self] answer in
            log("answer batch \(tag): \(answer.durabilityFailure.map { "\($0)" } ?? "\(answer.outcomes)")")
            guard !model.batches[tag].unknown else { return }
            onAnswer?(answer)
            if let failure = answer.durabilityFailure {
                _ = failure
                model.batches[tag].acknowledged = false
                model.batches[tag].unknown = true
                return
            }
            model.batches[tag].acknowledged = true
            result.acknowledged[isResend ? "resend" : "events", default: 0] += 1
            for (index, outcome) in answer.outcomes.enumerated() {
                if isResend {
                    if case .rejected(let reason) = outcome, reason != .sequenceTooOld {
                        violation("a resent event was rejected: \(reason)")
                    } else if outcome == .applied {
                        violation("a resent event of an acknowledged batch applied again: \(events[index])")
                    }
                } else if outcome != .applied {
                    violation("a valid new event answered \(outcome): \(events[index])")
                }
            }
        }
    }

    /// Sends an acknowledged batch again, as a feed retrying does: every event must be a duplicate.
    private func resendBatch() {
        let acknowledged = model.batches.indices.filter { model.batches[$0].acknowledged == true && !model.batches[$0].isResend
            && model.batches[$0].correlations.isEmpty && !model.batches[$0].partLost }
        guard !acknowledged.isEmpty else { return sendEvents(randomEvents()) }
        let original = model.batches[acknowledged[random.next(below: acknowledged.count)]]
        sendEvents(original.events, isResend: true)
    }

    // MARK: - Reservations

    private func randomLines() -> [ReservationLine] {
        var chosen: [SKUID] = []
        let count = 1 + random.next(below: min(3, skus.count))
        while chosen.count < count {
            let sku = skus[random.next(below: skus.count)]
            if !chosen.contains(sku) { chosen.append(sku) }
        }
        let channels = cluster.channels
        return chosen.map { sku in
            let quantity = Int64(1 + random.next(below: 6))
            if !channels.isEmpty && random.next(below: 4) == 0 {
                let channel = channels[random.next(below: channels.count)]
                return ReservationLine(sku: sku, target: .channel(channel.id, allowSplit: random.next(below: 2) == 0),
                                       quantity: quantity)
            }
            return ReservationLine(sku: sku, target: .location(locations[random.next(below: locations.count)]),
                                   quantity: quantity)
        }
    }

    private func reserveNew() {
        reservationNumber += 1
        let id: ReservationID
        do { id = try ReservationID("R-\(reservationNumber)") } catch { preconditionFailure("\(error)") }
        let short = random.next(below: 3) == 0
        let ttl = short ? Int64(50 + random.next(below: 900)) : Int64(60_000 + random.next(below: 600_000))
        let request = ReserveRequest(id: id, lines: randomLines(), ttlMilliseconds: ttl,
                                     mode: random.next(below: 10) < 7 ? .allOrNothing : .partial)
        model.reservations[id] = .init(request: request)
        model.reservationOrder.append(id)
        send(.reserve, id: id)
    }

    /// The same id again with the same request: the first answer again, never a second hold.
    private func retryReserve() {
        guard let id = randomReservation() else { return reserveNew() }
        send(.reserve, id: id)
    }

    private func commitOrRelease(commit: Bool) {
        guard let id = randomReservation(), !shipping.contains(id) else { return reserveNew() }
        send(commit ? .commit : .release, id: id)
    }

    private func randomReservation() -> ReservationID? {
        guard !model.reservationOrder.isEmpty else { return nil }
        // Recent ones more often: they are the ones still held.
        let count = model.reservationOrder.count
        let index = random.next(below: 2) == 0 ? count - 1 - random.next(below: min(count, 8)) : random.next(below: count)
        return model.reservationOrder[index]
    }

    enum Operation: String { case reserve, commit, release }

    private func send(_ operation: Operation, id: ReservationID) {
        var known = model.reservations[id]!
        known.requestsSent += 1
        let number = known.requestsSent
        let sentBeforeReserveAnswered = operation != .reserve && known.reservesOutstanding > 0
        known.unanswered += 1
        if operation == .commit {
            known.commitsOutstanding += 1
            known.commitSent = true
        }
        if operation == .release { known.releasesOutstanding += 1 }
        if operation == .reserve { known.reservesOutstanding += 1 }
        model.reservations[id] = known
        result.trace(30, operation == .reserve ? 0 : operation == .commit ? 1 : 2, Int(truncatingIfNeeded: id.stableHash))
        let crashes = result.crashes
        log("send \(operation) \(id)\(operation == .reserve ? " \(known.request.lines) \(known.request.mode) ttl \(known.request.ttlMilliseconds)" : "")")
        let answer: (ReservationReply) -> Void = { [unowned self] reply in
            log("answer \(operation) \(id): \(reply.state) \(reply.lines.map(\.allocations)) replayed \(reply.replayed) \(reply.error.map { "\($0)" } ?? "")")
            // An answer from before a crash cannot arrive; the cluster dropped its waits.
            precondition(result.crashes == crashes, "an answer survived a crash")
            if reply.error == nil || { if case .notHeld = reply.error { return true } else { return false } }() {
                result.acknowledged[operation.rawValue, default: 0] += 1
            }
            if let problem = model.answered(reply, to: operation.rawValue, request: number,
                                            nowMilliseconds: cluster.nowMilliseconds, forgets: setup.forgets,
                                            sentBeforeReserveAnswered: sentBeforeReserveAnswered) {
                if case .unknownReservation? = reply.error, setup.forgets {
                    model.reservations[id]!.state = nil
                } else {
                    violation(problem)
                }
            }
        }
        switch operation {
        case .reserve: cluster.reserve(known.request, completion: answer)
        case .commit: cluster.commit(id, completion: answer)
        case .release: cluster.release(id, completion: answer)
        }
    }

    /// Ships units of a committed reservation, naming it (its committed units go down with onHand).
    private func shipAgainstReservation() {
        // Where records are forgotten, an id may hold twice (a forgotten committed hold and a new
        // reservation under the same id): the shipment's share is not the model's to tell.
        guard !setup.forgets else { return sendEvents(randomEvents()) }
        let candidates = model.reservationOrder.filter { id in
            let known = model.reservations[id]!
            return known.state == .committed && known.unanswered == 0 && !known.uncertain && !shipping.contains(id)
                && known.grants.contains { !$0.allocations.isEmpty }
        }
        guard !candidates.isEmpty else { return sendEvents(randomEvents()) }
        let id = candidates[random.next(below: candidates.count)]
        let known = model.reservations[id]!
        let lines = zip(known.request.lines, known.grants).filter { !$0.1.allocations.isEmpty }
        let (line, grant) = lines[random.next(below: lines.count)]
        let allocation = grant.allocations[random.next(below: grant.allocations.count)]
        var ship = event(.ship, line.sku, allocation.location, Int64(1 + random.next(below: Int(allocation.quantity) + 1)))
        ship.correlation = 1
        shipping.insert(id)
        sendEvents([ship], correlations: [id]) { [unowned self] _ in shipping.remove(id) }
    }

    // MARK: - Channels

    private func changeChannel() {
        let id = channelIDs[random.next(below: channelIDs.count)]
        let defined = cluster.channels.contains { $0.id == id }
        let remove = defined && random.next(below: 3) == 0
        var definition: ChannelDefinition?
        if !remove {
            var chosen = locations.filter { _ in random.next(below: 2) == 0 }
            if chosen.isEmpty { chosen = [locations[0]] }
            definition = ChannelDefinition(id: id, locations: chosen, bufferUnits: Int64(random.next(below: 3)),
                                           capPercent: [100, 100, 80, 50].randomElement(using: &random)!)
        }
        var knowledge = model.channels[id] ?? ChannelKnowledge(definition: nil, isKnown: true, outstanding: 0)
        knowledge.isKnown = false
        knowledge.outstanding += 1
        model.channels[id] = knowledge
        result.trace(40, Int(id.rawValue), remove ? 1 : 0)
        log("change channel \(id): \(remove ? "remove" : "\(definition!)")")
        let crashes = result.crashes
        cluster.changeChannel(definition, remove: remove ? id : nil) { [unowned self] failure in
            guard result.crashes == crashes, var knowledge = model.channels[id] else { return }
            log("answer channel \(id): \(failure.map { "\($0)" } ?? "ok")")
            knowledge.outstanding -= 1
            // Answers come in the order the changes were made: once the last is answered, what it
            // set is known, unless an answer on the way was a failure (then only a restart tells).
            if failure == nil {
                result.acknowledged["channel", default: 0] += 1
                if knowledge.outstanding == 0 && !knowledge.failedSinceKnown {
                    knowledge.definition = definition
                    knowledge.isKnown = true
                }
            } else {
                knowledge.failedSinceKnown = true
            }
            model.channels[id] = knowledge
        }
    }
}
