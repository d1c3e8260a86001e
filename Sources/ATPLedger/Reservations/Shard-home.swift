/// How a shard reaches other shards and the state its worker shares with its shards.
protocol ShardRouter: AnyObject {
    /// Delivers a message to a shard's owner (after the current task when it is this worker).
    func send(_ message: ShardMessage, to shard: Int)
    /// The shard of a SKU.
    func shardIndex(of sku: SKUID) -> Int
    /// The channel definitions this worker's shards see.
    var channels: ChannelTable { get }
    /// A reservation operation started talking to its part shards (counted for quiescent cuts).
    func reservationStarted()
    /// A reservation operation settled at home.
    func reservationSettled()
}

/// The home side of reservations: the record of each id whose home is this shard, its expiry, and
/// the conversation with the part shards that hold its units.
extension Shard {
    /// Starts or replays one operation on a reservation whose home is this shard.
    func perform(_ operation: ReservationOperation, id: ReservationID, nowMilliseconds: Int64,
                 router: ShardRouter, completion: @escaping ReservationCompletion) {
        if let record = records[id] {
            if record.state == nil {
                record.deferred.append((operation, completion))
                return
            }
            expireIfDue(record, nowMilliseconds: nowMilliseconds, router: router)
            continueOperation(operation, on: record, nowMilliseconds: nowMilliseconds, router: router,
                              completion: completion)
            return
        }
        guard case .reserve(let request) = operation else {
            completion(ReservationReply(id: id, state: .refused, lines: [], expiresAtMilliseconds: 0, replayed: false,
                                        error: .unknownReservation))
            return
        }
        if let problem = validate(request) {
            completion(ReservationReply(id: id, state: .refused, lines: [], expiresAtMilliseconds: 0, replayed: false,
                                        error: .invalidRequest(problem)))
            return
        }
        startReserve(request, nowMilliseconds: nowMilliseconds, router: router, completion: completion)
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

    private func startReserve(_ request: ReserveRequest, nowMilliseconds: Int64, router: ShardRouter,
                              completion: @escaping ReservationCompletion) {
        let record = ReservationRecord(request: request)
        record.currentCompletion = completion
        record.expiresAtMilliseconds = nowMilliseconds + request.ttlMilliseconds
        records[request.id] = record
        router.reservationStarted()
        var linesByShard: [Int: [Int]] = [:]
        for (index, line) in request.lines.enumerated() {
            linesByShard[router.shardIndex(of: line.sku), default: []].append(index)
        }
        record.outstanding = linesByShard.count
        for (shard, indices) in linesByShard.sorted(by: { $0.key < $1.key }) {
            router.send(.hold(request: request, lineIndices: indices, home: index), to: shard)
        }
    }

    /// A part shard answered a hold.
    func receiveHeld(id: ReservationID, from shard: Int, grants: [(index: Int, grant: LineGrant)],
                     nowMilliseconds: Int64, router: ShardRouter) {
        guard let record = records[id], record.phase == .reserving else {
            preconditionFailure("hold answer for a reservation that is not reserving")
        }
        var grantedHere: Int64 = 0
        for (index, grant) in grants {
            record.lineGrants[index] = grant
            grantedHere += grant.granted
        }
        if grantedHere > 0 { record.partShards.append(shard) }
        record.outstanding -= 1
        guard record.outstanding == 0 else { return }

        let total = record.lineGrants.reduce(0) { $0 + $1.granted }
        let complete = record.lineGrants.allSatisfy { $0.granted == $0.requested }
        if record.request.mode == .allOrNothing && !complete && !record.partShards.isEmpty {
            // Another shard could not cover its lines: give back what was held before answering.
            for index in record.lineGrants.indices { record.lineGrants[index] = LineGrant(requested: record.request.lines[index].quantity) }
            startRelease(record, settleAs: .refused, router: router)
            return
        }
        if total == 0 {
            for index in record.lineGrants.indices where record.lineGrants[index].granted == 0 {
                record.lineGrants[index].allocations = []
            }
            counters.reservationsRefused &+= 1
            settle(record, as: .refused, nowMilliseconds: nowMilliseconds, router: router)
            return
        }
        if complete { counters.reservationsGranted &+= 1 } else { counters.reservationsPartial &+= 1 }
        expiries.insert(ExpiryEntry(deadlineMilliseconds: record.expiresAtMilliseconds, id: id))
        settle(record, as: .held, nowMilliseconds: nowMilliseconds, router: router)
    }

    /// A part shard finished a commit or release.
    func receiveAcknowledged(id: ReservationID, nowMilliseconds: Int64, router: ShardRouter) {
        guard let record = records[id], record.state == nil, record.outstanding > 0 else {
            preconditionFailure("acknowledgement for a reservation with nothing outstanding")
        }
        record.outstanding -= 1
        if record.outstanding == 0 {
            if record.settleAs == .refused { counters.reservationsRefused &+= 1 }
            settle(record, as: record.settleAs, nowMilliseconds: nowMilliseconds, router: router)
        }
    }

    private func continueOperation(_ operation: ReservationOperation, on record: ReservationRecord,
                                   nowMilliseconds: Int64, router: ShardRouter,
                                   completion: @escaping ReservationCompletion) {
        let state = record.state!
        switch operation {
        case .reserve:
            completion(record.reply(replayed: true))
        case .commit:
            switch state {
            case .committed: completion(record.reply(replayed: true))
            case .held:
                record.currentCompletion = completion
                record.currentReplyIsReplay = false
                record.phase = .committing
                record.settleAs = .committed
                router.reservationStarted()
                counters.reservationsCommitted &+= 1
                sendToParts(record, router: router) { .commit(id: record.request.id, home: self.index) }
            case .released, .expired, .refused:
                completion(record.reply(replayed: false, error: .notHeld(state)))
            }
        case .release:
            switch state {
            case .held, .committed:
                record.currentCompletion = completion
                record.currentReplyIsReplay = false
                counters.reservationsReleased &+= 1
                router.reservationStarted()
                startRelease(record, settleAs: .released, router: router)
            case .released, .expired, .refused:
                completion(record.reply(replayed: true))
            }
        }
    }

    private func startRelease(_ record: ReservationRecord, settleAs state: ReservationState, router: ShardRouter) {
        record.phase = .releasing
        record.settleAs = state
        sendToParts(record, router: router) { .release(id: record.request.id, home: self.index) }
    }

    /// Sends one message to every part shard and waits for their acknowledgements (settles at once
    /// when there are no parts).
    private func sendToParts(_ record: ReservationRecord, router: ShardRouter, _ message: () -> ShardMessage) {
        record.outstanding = record.partShards.count
        if record.partShards.isEmpty {
            router.send(.acknowledged(id: record.request.id), to: index)
            record.outstanding = 1
            return
        }
        for shard in record.partShards { router.send(message(), to: shard) }
    }

    /// Puts a record in a settled state, answers its caller and runs deferred operations.
    private func settle(_ record: ReservationRecord, as state: ReservationState, nowMilliseconds: Int64,
                        router: ShardRouter) {
        let wasInFlight = record.state == nil
        record.phase = .settled(state)
        if state == .released || state == .refused {
            record.partShards = []
        }
        if state != .held {
            record.settledAtMilliseconds = nowMilliseconds
            finishedOutcomes.append(FinishedOutcome(id: record.request.id, settledAtMilliseconds: nowMilliseconds))
        }
        if let completion = record.currentCompletion {
            record.currentCompletion = nil
            completion(record.reply(replayed: record.currentReplyIsReplay))
        }
        while record.state != nil, !record.deferred.isEmpty {
            let (operation, completion) = record.deferred.removeFirst()
            continueOperation(operation, on: record, nowMilliseconds: nowMilliseconds, router: router,
                              completion: completion)
        }
        forgetOldOutcomes(nowMilliseconds: nowMilliseconds)
        // After the deferred operations started theirs, so the count never dips to 0 in between.
        if wasInFlight { router.reservationSettled() }
    }

    /// Expires a held record whose deadline has passed (also called by the expiry timer).
    private func expireIfDue(_ record: ReservationRecord, nowMilliseconds: Int64, router: ShardRouter) {
        guard record.state == .held, record.expiresAtMilliseconds <= nowMilliseconds else { return }
        counters.reservationsExpired &+= 1
        for shard in record.partShards { router.send(.release(id: record.request.id, home: nil), to: shard) }
        record.partShards = []
        settle(record, as: .expired, nowMilliseconds: nowMilliseconds, router: router)
    }

    /// Expires every held reservation whose deadline is at or before `nowMilliseconds`.
    /// Cost: O(log n) per expired or stale entry; untouched reservations cost nothing.
    func expireDue(nowMilliseconds: Int64, router: ShardRouter) {
        while let next = expiries.min, next.deadlineMilliseconds <= nowMilliseconds {
            _ = expiries.popMin()
            if let record = records[next.id], record.expiresAtMilliseconds == next.deadlineMilliseconds {
                expireIfDue(record, nowMilliseconds: nowMilliseconds, router: router)
            }
        }
    }

    /// The earliest pending expiry deadline, if any.
    var nextExpiryMilliseconds: Int64? { expiries.min?.deadlineMilliseconds }

    /// Forgets settled outcomes past the retention window or beyond the per-shard maximum.
    private func forgetOldOutcomes(nowMilliseconds: Int64) {
        let retention = configuration.reservationOutcomeRetentionMilliseconds
        let maximum = configuration.reservationOutcomesRememberedMaxPerShard
        while let oldest = finishedOutcomes.first,
              finishedOutcomes.count > maximum || oldest.settledAtMilliseconds + retention < nowMilliseconds {
            finishedOutcomes.removeFirst()
            if let record = records[oldest.id], let state = record.state, state != .held,
               record.settledAtMilliseconds == oldest.settledAtMilliseconds {
                records[oldest.id] = nil
            }
        }
    }

    /// Handles a reservation message addressed to this shard.
    func receive(_ message: ShardMessage, nowMilliseconds: Int64, router: ShardRouter) {
        switch message {
        case .hold(let request, let lineIndices, let home):
            let grants = hold(request, lineIndices: lineIndices, channels: router.channels)
            router.send(.held(id: request.id, from: index, grants: grants), to: home)
        case .held(let id, let from, let grants):
            receiveHeld(id: id, from: from, grants: grants, nowMilliseconds: nowMilliseconds, router: router)
        case .commit(let id, let home):
            commitHold(id)
            router.send(.acknowledged(id: id), to: home)
        case .release(let id, let home):
            releaseHold(id)
            if let home { router.send(.acknowledged(id: id), to: home) }
        case .acknowledged(let id):
            receiveAcknowledged(id: id, nowMilliseconds: nowMilliseconds, router: router)
        }
    }
}
