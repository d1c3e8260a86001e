import ATPClient
import ATPLedger
import ATPProtocol

/// One client connection's load until the kill: one request at a time, every acknowledged reply
/// recorded in the shared model, every reply checked against what was acknowledged before.
struct ClientLoad {
    let soak: CrashSoak
    let connection: ATPConnection
    let shared: LoadShared
    let client: Int
    let cycle: Int
    var generator: SeededGenerator
    /// This client's feed.
    let source: String
    /// This client's reservations that are held or committed (acknowledged), to commit or release.
    var live: [String]
    /// This client's acknowledged reservations of this cycle, to retry.
    var mine: [String] = []
    var reservationNumber = 0

    init(soak: CrashSoak, connection: ATPConnection, shared: LoadShared, client: Int, cycle: Int, seed: UInt64,
         inherited: [String]) {
        self.soak = soak
        self.connection = connection
        self.shared = shared
        self.client = client
        self.cycle = cycle
        self.generator = SeededGenerator(seed: seed)
        self.source = "feed-\(client)"
        self.live = inherited
    }

    var workload: CrashWorkload { soak.workload }

    /// Sends operations until the kill, or until one fails (its outcome is then unknown).
    mutating func run(_ mode: CrashWorkload.Mode) async {
        while !shared.stopped {
            let acknowledged = mode == .storm ? await stormStep() : await mixedStep()
            if !acknowledged { return }
        }
    }

    // MARK: - Modes

    /// One operation of the mixed workload.
    private mutating func mixedStep() async -> Bool {
        let roll = Int.random(in: 0..<100, using: &generator)
        if roll < workload.ingestPercent {
            if Int.random(in: 0..<100, using: &generator) < workload.resendPercent, await resend() { return true }
            return await ingest()
        }
        if roll < workload.ingestPercent + workload.reservePercent { return await reserve(storm: false) != nil }
        if roll < workload.ingestPercent + workload.reservePercent + workload.retryPercent, !mine.isEmpty {
            return await retry(mine[Int.random(in: 0..<mine.count, using: &generator)])
        }
        guard !live.isEmpty else { return await reserve(storm: false) != nil }
        let id = live[Int.random(in: 0..<live.count, using: &generator)]
        let commit = shared.model.withLock { $0.reservations[id]?.state == .held }
            && Int.random(in: 0..<100, using: &generator) < workload.commitPercent
        return await settle(id, commit: commit)
    }

    /// One round of the commit-then-release storm: a 2-line reservation reserved, committed, then
    /// released; now and then a reservation left live by an earlier cycle released first.
    private mutating func stormStep() async -> Bool {
        if !live.isEmpty && Int.random(in: 0..<4, using: &generator) == 0 {
            return await settle(live.removeLast(), commit: false)
        }
        guard let (id, state) = await reserve(storm: true) else { return false }
        guard state == .held, !shared.stopped else { return true }
        guard await settle(id, commit: true) else { return false }
        guard !shared.stopped, live.contains(id) else { return true }
        return await settle(id, commit: false)
    }

    // MARK: - Operations

    /// Sends one operation, counting it acknowledged or unknown; nil when no reply came.
    private func send<Reply>(_ kind: OperationKind, _ operation: () async throws -> Reply) async -> Reply? {
        do {
            let reply = try await operation()
            shared.tally.withLock { $0.acknowledged[kind, default: 0] += 1 }
            return reply
        } catch {
            // Errors once the kill is under way are the kill's; others are the server's.
            let killed = shared.killedAtMilliseconds.load(ordering: .relaxed) != 0
            shared.tally.withLock { tally in
                tally.unknown[kind, default: 0] += 1
                if !killed {
                    tally.errors.append("client \(client) \(kind): \(error)")
                }
            }
            return nil
        }
    }

    private func violation(_ kind: CrashViolation.Kind, _ subject: String, _ detail: String) {
        shared.tally.withLock { $0.violations.append(CrashViolation(kind, subject, detail + " (during the load)")) }
    }

    /// An ingest batch of new receives.
    private mutating func ingest() async -> Bool {
        let count = Int.random(in: workload.batchEvents, using: &generator)
        var events: [WireEvent] = []
        for _ in 0..<count {
            events.append(WireEvent(kind: .receive, sku: "SKU-\(Int.random(in: 0..<soak.skuCount, using: &generator))",
                                    location: soak.locations[Int.random(in: 0..<soak.locations.count, using: &generator)],
                                    quantity: Int64.random(in: 1...6, using: &generator), sequence: 0))
        }
        let batch: [WireEvent] = shared.model.withLock { model in
            let first = model.nextSequence[source, default: 1]
            model.nextSequence[source] = first + UInt64(count)
            for index in events.indices { events[index].sequence = first + UInt64(index) }
            model.pendingBatches[source] = PendingBatch(source: source, events: events)
            return events
        }
        guard let reply = await send(.ingest, { try await connection.ingest(source: source, events: batch) }) else { return false }
        if reply.appliedCount != UInt32(count) {
            violation(.resendCounted, source, "a batch of \(count) new receives answered \(reply)")
        }
        shared.model.withLock { model in
            model.pendingBatches[source] = nil
            model.apply(batch)
            model.remember(batch, source: source)
            model.acknowledgedOperations += 1
        }
        return true
    }

    /// A resend of one of the source's acknowledged batches (this or an earlier cycle): every event
    /// must come back a duplicate. False when there is none to resend (nothing was sent).
    private mutating func resend() async -> Bool {
        let batches = shared.model.withLock { $0.recentBatches[source, default: []] }
        guard !batches.isEmpty else { return false }
        let batch = batches[Int.random(in: 0..<batches.count, using: &generator)]
        guard let reply = await send(.ingestResend, { try await connection.ingest(source: source, events: batch) }) else {
            return false
        }
        if reply.appliedCount != 0 || reply.duplicateCount != UInt32(batch.count) || !reply.rejections.isEmpty {
            violation(.resendCounted, source,
                      "a resend of an acknowledged batch (sequences \(batch.first!.sequence)...\(batch.last!.sequence)) answered \(reply)")
        }
        shared.model.withLock { $0.acknowledgedOperations += 1 }
        return true
    }

    /// A new reservation; its acknowledged state, or nil when no reply came.
    private mutating func reserve(storm: Bool) async -> (String, ReservationState)? {
        reservationNumber += 1
        let id = "R-\(cycle)-\(client)-\(reservationNumber)"
        let request = makeRequest(id: id, storm: storm)
        let sentAt = wallClockMilliseconds()
        shared.model.withLock { $0.reservations[id] = ModelReservation(request: request, sentAtMilliseconds: sentAt) }
        guard let reply = await send(.reserve, { try await connection.reserve(request) }) else { return nil }
        if reply.replayed || reply.result != .ok {
            violation(.loadReply, id, "a reserve of a new id answered \(reply.result) \(reply.state), replayed \(reply.replayed)")
        }
        if let problem = ReservationExpectation.wholeProblem(reply.lines, state: reply.state, request: request,
                                                             channel: workload.channel) {
            violation(.wrongGrants, id, problem)
        }
        shared.model.withLock { model in
            model.reservations[id]?.acknowledge(reply)
            model.acknowledgedOperations += 1
        }
        mine.append(id)
        if reply.state == .held { live.append(id) }
        return (id, reply.state)
    }

    /// 1 to 3 lines (2 in the storm) on distinct SKUs, so usually on several shards.
    private mutating func makeRequest(id: String, storm: Bool) -> WireReserveRequest {
        let lineCount = storm ? 2 : Int.random(in: workload.linesPerReservation, using: &generator)
        var skus: [Int] = []
        while skus.count < min(lineCount, soak.skuCount) {
            let sku = Int.random(in: 0..<soak.skuCount, using: &generator)
            if !skus.contains(sku) { skus.append(sku) }
        }
        let lines = skus.map { sku in
            let target: WireReservationLine.Target
            if !storm, let channel = workload.channel,
               Int.random(in: 0..<100, using: &generator) < workload.channelLinePercent {
                target = .channel(channel.name, allowSplit: Bool.random(using: &generator))
            } else {
                target = .location(soak.locations[Int.random(in: 0..<soak.locations.count, using: &generator)])
            }
            return WireReservationLine(sku: "SKU-\(sku)", target: target,
                                       quantity: Int64.random(in: workload.unitsPerLine, using: &generator))
        }
        let allOrNothing = storm || Int.random(in: 0..<100, using: &generator) < workload.allOrNothingPercent
        let short = !storm && Int.random(in: 0..<100, using: &generator) < workload.shortTTLPercent
        let ttl = short ? Int64.random(in: workload.shortTTLMilliseconds, using: &generator) : workload.longTTLMilliseconds
        return WireReserveRequest(id: try! ReservationID(id), ttlMilliseconds: ttl,
                                  mode: allOrNothing ? .allOrNothing : .partial, lines: lines)
    }

    /// A retry of an acknowledged reserve: must replay its state (allowing for expiry) and grants.
    private mutating func retry(_ id: String) async -> Bool {
        guard let entry = shared.model.withLock({ $0.reservations[id] }), entry.state != nil, entry.pending == nil else {
            return true
        }
        let sentAt = wallClockMilliseconds()
        guard let reply = await send(.reserveRetry, { try await connection.reserve(entry.request) }) else { return false }
        let expectation = ReservationExpectation(entry, window: since(sentAt),
                                                 margin: soak.expiryMarginMilliseconds)
        if !reply.replayed {
            violation(.secondHold, id, "a reserve retry was not replayed: it started a second reservation \(reply.state) "
                      + "\(reply.lines.compactDescription); \(entry.summary)")
        } else if !expectation.states.contains(reply.state) || reply.lines != entry.lines {
            violation(.loadReply, id, "a reserve retry answered \(reply.state) \(reply.lines.compactDescription), "
                      + "expected \(expectation.states.sortedDescription); \(entry.summary)")
        }
        shared.model.withLock { model in
            model.reservations[id]?.acknowledge(reply)
            model.acknowledgedOperations += 1
        }
        if reply.state != .held && reply.state != .committed { live.removeAll { $0 == id } }
        return true
    }

    /// A commit or release of one of this client's live reservations.
    private mutating func settle(_ id: String, commit: Bool) async -> Bool {
        let sentAt = wallClockMilliseconds()
        let marked = shared.model.withLock { model -> ModelReservation? in
            guard let entry = model.reservations[id], entry.pending == nil,
                  entry.state == .held || (!commit && entry.state == .committed) else { return nil }
            model.reservations[id]?.pending = commit ? .commit : .release
            model.reservations[id]?.pendingSentAtMilliseconds = sentAt
            return model.reservations[id]
        }
        guard let entry = marked, let reservationID = try? ReservationID(id) else {
            live.removeAll { $0 == id }
            return true  // nothing to do for this id now: not a failure
        }
        let kind: OperationKind = commit ? .commit : .release
        guard let reply = await send(kind, { commit ? try await connection.commit(reservationID)
                                                    : try await connection.release(reservationID) }) else { return false }
        let expectation = ReservationExpectation(entry, window: since(sentAt),
                                                 margin: soak.expiryMarginMilliseconds)
        if reply.result == .unknownReservation {
            violation(.unknownReservation, id, "\(kind) answered unknownReservation; \(entry.summary)")
        } else if !expectation.states.contains(reply.state) {
            violation(.loadReply, id, "\(kind) answered \(reply.result) \(reply.state), expected "
                      + "\(expectation.states.sortedDescription); \(entry.summary)")
        }
        shared.model.withLock { model in
            if reply.result == .unknownReservation {
                // The server does not know it: what it holds is unknown (a later check asks again).
                model.reservations[id]?.state = nil
                model.reservations[id]?.pending = .reserve
            } else {
                model.reservations[id]?.acknowledge(reply)
            }
            model.acknowledgedOperations += 1
        }
        if reply.state != .held && reply.state != .committed || reply.result != .ok { live.removeAll { $0 == id } }
        return true
    }
}
