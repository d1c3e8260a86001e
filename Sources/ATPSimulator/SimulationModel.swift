import ATPLedger

/// What the clients know of one channel.
struct ChannelKnowledge {
    var definition: ChannelDefinition?
    /// False while a change is unanswered or its outcome unknown.
    var isKnown: Bool
    var outstanding: Int
    /// A change failed since the definition was last known.
    var failedSinceKnown = false
}

/// What the simulated clients know: every request they sent and every answer they got, and from
/// that what the engine must hold after any crash (docs/DURABILITY.md, what each mode promises).
struct SimulationModel {
    /// One event batch and what became of it.
    struct Batch {
        var events: [StockEvent]
        var correlations: [ReservationID]
        /// nil while unanswered; true once answered applied (or duplicate), false when answered
        /// `notDurable` (outcome unknown).
        var acknowledged: Bool?
        /// The batch resends an acknowledged one (every event a duplicate).
        var isResend: Bool
        /// A crash took its answer: it may or may not be applied.
        var unknown = false
        /// A part of it was lost to a crash (a power loss in a mode that allows it): a resend
        /// would apply that part again, so it is not resent.
        var partLost = false
    }

    /// One core's application of a batch's events (journal order on that core).
    struct AppliedPart {
        var batch: Int
        var indices: [Int32]
    }

    /// What the clients know of one reservation id.
    struct Reservation {
        var request: ReserveRequest
        /// The newest state an answer told (nil: no answer yet), with the grants it showed.
        var state: ReservationState?
        var grants: [LineGrant] = []
        var expiresAtMilliseconds: Int64 = 0
        /// Commits and releases sent whose answer has not come, or was lost to a crash.
        var commitsOutstanding = 0
        var releasesOutstanding = 0
        /// Reserves (first ones and retries) sent whose answer has not come, or was lost to a crash.
        var reservesOutstanding = 0
        /// A reserve, or a commit or release, was answered `notDurable`: it may or may not have
        /// happened (like an outstanding one).
        var reserveOutcomeUnknown = false
        var settleOutcomeUnknown = false
        /// Requests sent whose answer has not come (any operation).
        var unanswered = 0
        /// Whether some answer may have been lost (a crash, a durability failure): the state may
        /// have moved past `state` by an operation nobody heard of.
        var uncertain = false
        /// A commit of this id was sent at some point (its units may outlive a forgotten record).
        var commitSent = false
        /// Requests about this id sent so far, and the newest one answered: the home runs them in
        /// the order sent, so an older answer arriving later (it waited for more journals) tells
        /// nothing newer.
        var requestsSent = 0
        var newestAnswered = 0
        /// Units of each cell shipped against this reservation's committed holds.
        var shipped: [CellKey: Int64] = [:]

        /// Whether a commit or release whose outcome nobody heard may have settled the record.
        var mayHaveBeenSettled: Bool { commitsOutstanding > 0 || releasesOutstanding > 0 || settleOutcomeUnknown }
        /// Whether a reserve whose outcome nobody heard may have made a new reservation under the id.
        var mayHaveBeenRenewed: Bool { reservesOutstanding > 0 || reserveOutcomeUnknown }

        /// Forgets what was outstanding once a check has taken the engine's word for the state.
        mutating func settleOutstanding() {
            uncertain = false
            commitsOutstanding = 0
            releasesOutstanding = 0
            reservesOutstanding = 0
            reserveOutcomeUnknown = false
            settleOutcomeUnknown = false
        }
    }

    var batches: [Batch] = []
    /// Per core, the parts applied since the last recovery, in order.
    var appliedParts: [[AppliedPart]]
    /// Per core, the parts that survived every recovery so far, in order (they define the cells).
    var survivingParts: [[AppliedPart]]
    var reservations: [ReservationID: Reservation] = [:]
    /// Ids in the order they were created (for deterministic iteration).
    var reservationOrder: [ReservationID] = []
    /// What the clients know of each channel: its definition (nil: removed or never defined), or
    /// nothing while a change of it is unanswered, failed or lost to a crash.
    var channels: [ChannelID: ChannelKnowledge] = [:]
    /// Next sequence per source.
    var nextSequence: [UInt64]

    init(coreCount: Int, sourceCount: Int) {
        appliedParts = Array(repeating: [], count: coreCount)
        survivingParts = Array(repeating: [], count: coreCount)
        nextSequence = Array(repeating: 1, count: sourceCount)
    }

    // MARK: - Answers

    /// Records a reservation answer; returns a violation when it contradicts what was known.
    /// `sentBeforeReserveAnswered`: a commit or release sent while a reserve of the id was
    /// unanswered, which may run before it (docs/PROTOCOL.md §2: they may run on different cores)
    /// and so find the id unknown.
    mutating func answered(_ reply: ReservationReply, to operation: String, request number: Int, nowMilliseconds: Int64,
                           forgets: Bool, sentBeforeReserveAnswered: Bool = false) -> String? {
        guard var known = reservations[reply.id] else { return "an answer for \(reply.id), never sent" }
        known.unanswered -= 1
        if operation == "commit" { known.commitsOutstanding -= 1 }
        if operation == "release" { known.releasesOutstanding -= 1 }
        if operation == "reserve" { known.reservesOutstanding -= 1 }
        defer { reservations[reply.id] = known }
        if number < known.newestAnswered {
            return reply.error == nil ? checkGrants(reply.lines, of: known.request).map { "\(reply.id): \($0)" } : nil
        }
        known.newestAnswered = number
        switch reply.error {
        case .notDurable?:
            known.uncertain = true
            if operation == "reserve" {
                known.reserveOutcomeUnknown = true
            } else {
                known.settleOutcomeUnknown = true
            }
            return nil
        case .unknownReservation?:
            // Only a record forgotten after its retention answers this (the simulator checks
            // that a forgetting set-up is the one that allows it), or a commit or release that ran
            // before its reserve (sent before the reserve's answer, routed while the id was unknown).
            // Where ids are forgotten the caller takes it as forgotten (the state becomes unknown).
            if known.state != nil && !(known.state == .refused && operation == "reserve")
                && !(sentBeforeReserveAnswered && !forgets) {
                return "\(operation) of \(reply.id) answered unknownReservation; the clients knew it \(known.state!)"
            }
            return nil
        case .invalidRequest(let problem)?:
            return "\(operation) of \(reply.id) refused as invalid (\(problem)); the workload sends valid requests"
        case .notHeld?, nil:
            break
        }
        if operation == "reserve" {
            if !reply.replayed, let state = known.state {
                // The id was answered before: a new reservation under it is right only once the old
                // record may have been forgotten (settled past its retention): settled or expired
                // when last heard of, or held with a commit or release still unanswered that may have
                // settled it before this retry.
                let forgettable = state != .held || known.expiresAtMilliseconds <= nowMilliseconds
                    || known.mayHaveBeenSettled
                guard forgets && forgettable else {
                    return "a retried reserve of \(reply.id) made a new reservation (it was \(state)): \(reply.lines)"
                }
                known.grants = []
                known.state = nil
            }
        }
        if let problem = checkGrants(reply.lines, of: known.request) { return "\(reply.id): \(problem)" }
        if known.state != nil, !known.grants.isEmpty, !reply.lines.isEmpty, reply.lines != known.grants {
            return "\(operation) of \(reply.id) answered grants \(reply.lines), earlier \(known.grants)"
        }
        if !reply.lines.isEmpty { known.grants = reply.lines }
        known.state = reply.state
        if reply.state == .held { known.expiresAtMilliseconds = reply.expiresAtMilliseconds }
        return nil
    }

    /// Grants must be whole: each line at most what it asked, all-or-nothing all or none.
    func checkGrants(_ grants: [LineGrant], of request: ReserveRequest) -> String? {
        guard !grants.isEmpty else { return nil }
        guard grants.count == request.lines.count else { return "\(grants.count) grants for \(request.lines.count) lines" }
        for (grant, line) in zip(grants, request.lines) {
            if grant.requested != line.quantity || grant.granted < 0 || grant.granted > grant.requested
                || grant.allocations.reduce(0, { $0 + $1.quantity }) != grant.granted {
                return "grant \(grant) for line \(line) does not add up"
            }
        }
        if request.mode == .allOrNothing {
            let full = grants.allSatisfy { $0.granted == $0.requested }
            let none = grants.allSatisfy { $0.granted == 0 }
            if !full && !none { return "an all-or-nothing reservation granted part: \(grants)" }
        }
        return nil
    }

    // MARK: - After a crash

    /// Every answer the crash took becomes unknown.
    mutating func crashed() -> Int {
        var unknown = 0
        for (id, knowledge) in channels where knowledge.outstanding > 0 {
            unknown += knowledge.outstanding
            channels[id] = ChannelKnowledge(definition: nil, isKnown: false, outstanding: 0, failedSinceKnown: true)
        }
        for index in batches.indices where batches[index].acknowledged == nil && !batches[index].unknown {
            batches[index].unknown = true
            unknown += 1
        }
        for id in reservationOrder where reservations[id]!.unanswered > 0 {
            unknown += reservations[id]!.unanswered
            reservations[id]!.unanswered = 0
            reservations[id]!.uncertain = true
        }
        return unknown
    }

    /// Whether a crash may have let the engine move `known` to `state`, given what was sent.
    func reachable(_ state: ReservationState, from known: Reservation, nowMilliseconds: Int64) -> Bool {
        guard let from = known.state else { return true }
        if state == from { return true }
        let expiredByNow = known.expiresAtMilliseconds <= nowMilliseconds
        let moves = known.uncertain || known.commitsOutstanding > 0 || known.releasesOutstanding > 0
        switch (from, state) {
        case (.held, .expired): return expiredByNow || moves
        case (.held, .committed), (.held, .released), (.committed, .released): return moves
        case (.held, .refused): return false
        default: return false
        }
    }
}
