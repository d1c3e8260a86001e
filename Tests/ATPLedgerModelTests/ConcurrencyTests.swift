import ATPLedger
import Foundation
import Testing

/// A value behind a lock, shareable with completions and threads.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
    var current: Value { withLock { $0 } }
}

/// Many threads against a few hot SKUs: reservations (single-shard and cross-shard, all-or-nothing
/// and partial), commits, releases, concurrent commit/release of one id, expiries racing commits,
/// and a feed streaming receipts and shipments. The engine must never grant more than is sellable,
/// and at the end every cell must equal exactly what the surviving holds, receipts and shipments say.
@Suite struct ConcurrencyTests {
    static var seed: UInt64 {
        ProcessInfo.processInfo.environment["ATP_MODEL_SEED"].flatMap(UInt64.init) ?? 20_251_123
    }

    /// What one reservation got, as its thread saw it.
    struct Order: Sendable {
        var id: ReservationID
        /// Units granted per cell.
        var units: [CellKey: Int64]
        var state: ReservationState
        /// Committed units shipped against the order, per cell.
        var shipped: [CellKey: Int64] = [:]
        var shortTTL: Bool
    }

    /// Everything the threads record, under one lock.
    final class Ledger: Sendable {
        struct State {
            var orders: [ReservationID: Order] = [:]
            var receipts: [CellKey: Int64] = [:]
            var shipments: [CellKey: Int64] = [:]
            var shipQueue: [ReservationID] = []
            var failures: [String] = []
            var grantedUnits: Int64 = 0
            var monitorReads = 0
        }
        let state = Locked(State())
        func fail(_ message: String) { state.withLock { $0.failures.append(message) } }
    }

    @Test func hotSKUsNeverOversell() throws {
        let seed = Self.seed
        var configuration = LedgerConfiguration()
        configuration.shardCount = 8
        configuration.workerCount = 2
        configuration.workerSpinIterations = 50
        configuration.reservationLinesMax = 8
        let engine = try Engine(configuration: configuration, clock: .manual())
        defer { engine.shutdown() }
        let catalog = engine.catalog
        let hot = try namesOnShards(prefix: "HOT", placement: configuration.placement, shards: [0, 1, 2, 3])
            .map { try catalog.sku($0) }
        let locations = try (0..<2).map { try catalog.location("DC-\($0)") }
        let web = try catalog.channel("web")
        try engine.defineChannel(ChannelDefinition(id: web, locations: [locations[1], locations[0]], bufferUnits: 2))
        #expect(Set(hot.map { engine.shardIndex(of: $0) }).count == 4, "hot SKUs sit in four shards")

        let ledger = Ledger()
        let initial: Int64 = 12
        var batch = EventBatch()
        let initSource = try catalog.source("init")
        var sequence: UInt64 = 1
        for sku in hot {
            for location in locations {
                batch.append(StockEvent(kind: .receive, sku: sku, location: location, quantity: initial,
                                        source: initSource, sequence: sequence))
                sequence += 1
            }
        }
        #expect(engine.apply(batch).appliedCount == batch.count)

        let reserverCount = 6
        let ordersPerThread = 220
        let running = Locked(reserverCount)
        let finished = DispatchGroup()

        // Reservers.
        for thread in 0..<reserverCount {
            finished.enter()
            Thread.detachNewThread {
                var rng = SplitMix64(seed: seed &+ UInt64(thread) &* 7919)
                Self.reserverLoop(thread: thread, orders: ordersPerThread, engine: engine, hot: hot,
                                  locations: locations, web: web, ledger: ledger, rng: &rng)
                running.withLock { $0 -= 1 }
                finished.leave()
            }
        }
        // The feed: receipts, and shipments of committed orders with their correlation id.
        finished.enter()
        Thread.detachNewThread {
            var rng = SplitMix64(seed: seed &+ 1_000_003)
            Self.feedLoop(engine: engine, hot: hot, locations: locations, ledger: ledger, running: running, rng: &rng)
            finished.leave()
        }
        // The clock: short-TTL holds expire while threads commit and release them.
        finished.enter()
        Thread.detachNewThread {
            while running.current > 0 {
                engine.advanceClock(byMilliseconds: 7)
                usleep(300)
            }
            finished.leave()
        }
        // A monitor: every cell it reads, at any moment, claims no more than is on hand.
        finished.enter()
        Thread.detachNewThread {
            while running.current > 0 {
                let result = engine.query(hot.map { .sku($0) })
                for index in hot.indices {
                    for availability in result.cells(of: index) {
                        let cell = availability.cell
                        if cell.reserved < 0 || cell.committed < 0
                            || Int64(cell.reserved) + Int64(cell.committed) > Int64(cell.onHand) || cell.isShort {
                            ledger.fail("monitor saw an oversold or negative cell: \(cell)")
                        }
                    }
                }
                ledger.state.withLock { $0.monitorReads += 1 }
            }
            finished.leave()
        }
        finished.wait()
        engine.waitUntilIdle()

        let state = ledger.state.current
        for failure in state.failures.prefix(20) { Issue.record("seed=\(seed): \(failure)") }
        #expect(state.monitorReads > 0)

        // Final states: a replay of every id returns its state now (expiries included).
        var expectedReserved: [CellKey: Int64] = [:]
        var expectedCommitted: [CellKey: Int64] = [:]
        var byState: [ReservationState: Int] = [:]
        for order in state.orders.values {
            let replay = engine.reserve(ReserveRequest(id: order.id, lines: [], ttlMilliseconds: 1, mode: .partial))
            #expect(replay.replayed, "seed=\(seed): \(order.id) replay")
            var final = order.state
            if order.state == .held && replay.state == .expired && order.shortTTL { final = .expired }
            #expect(replay.state == final, "seed=\(seed): \(order.id) tracked \(order.state) (short ttl \(order.shortTTL)), engine says \(replay.state)")
            byState[replay.state, default: 0] += 1
            switch replay.state {
            case .held:
                for (key, units) in order.units { expectedReserved[key, default: 0] += units }
            case .committed:
                for (key, units) in order.units {
                    expectedCommitted[key, default: 0] += units - order.shipped[key, default: 0]
                }
            default:
                break
            }
        }
        let result = engine.query(hot.map { .sku($0) })
        var heldTotal: Int64 = 0
        for (index, sku) in hot.enumerated() {
            let cells = Array(result.cells(of: index))
            #expect(cells.count == locations.count)
            for availability in cells {
                let cell = availability.cell
                let key = CellKey(sku, cell.location)
                let onHand = initial + state.receipts[key, default: 0] - state.shipments[key, default: 0]
                #expect(Int64(cell.onHand) == onHand, "seed=\(seed): \(key) onHand \(cell.onHand), receipts − shipments say \(onHand)")
                #expect(Int64(cell.reserved) == expectedReserved[key, default: 0],
                        "seed=\(seed): \(key) reserved \(cell.reserved), surviving holds \(expectedReserved[key, default: 0])")
                #expect(Int64(cell.committed) == expectedCommitted[key, default: 0],
                        "seed=\(seed): \(key) committed \(cell.committed), surviving commitments \(expectedCommitted[key, default: 0])")
                #expect(cell.reserved >= 0 && cell.committed >= 0 && !cell.isShort)
                #expect(Int64(cell.reserved) + Int64(cell.committed) <= Int64(cell.onHand),
                        "seed=\(seed): \(key) holds \(cell.reserved)+\(cell.committed) exceed onHand \(cell.onHand)")
                #expect(cell.damaged == 0 && cell.quarantine == 0 && cell.safetyStock == 0)
                heldTotal += Int64(cell.reserved) + Int64(cell.committed)
            }
        }
        // Nothing left over: what is still sellable can be reserved, exactly, and no more.
        for sku in hot {
            for location in locations {
                let cell = result.cells(of: hot.firstIndex(of: sku)!).first { $0.cell.location == location }!
                let sweep = engine.reserve(ReserveRequest(
                    id: try ReservationID("sweep-\(sku.rawValue)-\(location.rawValue)"),
                    lines: [ReservationLine(sku: sku, target: .location(location), quantity: 1_000_000)],
                    ttlMilliseconds: 60_000, mode: .partial))
                #expect(sweep.grantedUnits == cell.sellable, "seed=\(seed): sweep of \(sku)@\(location) got \(sweep.grantedUnits), sellable \(cell.sellable)")
            }
        }
        engine.checkInvariants()
        #expect((byState[.held] ?? 0) + (byState[.committed] ?? 0) > 0 && (byState[.refused] ?? 0) > 0,
                "seed=\(seed): the run should both grant and refuse (\(byState))")
        print("concurrency: seed=\(seed) orders=\(state.orders.count) states=\(byState) granted=\(state.grantedUnits) stillHeld=\(heldTotal) monitorReads=\(state.monitorReads)")
    }

    /// One buyer thread: reserve, then commit (and hand over for shipping), release, both at once,
    /// or leave the hold to expire.
    static func reserverLoop(thread: Int, orders: Int, engine: Engine, hot: [SKUID], locations: [LocationID],
                             web: ChannelID, ledger: Ledger, rng: inout SplitMix64) {
        for n in 0..<orders {
            let id = try! ReservationID("t\(thread)-\(n)")
            let skuCount = Int.random(in: 0..<10, using: &rng) < 5 ? 1 : Int.random(in: 2...3, using: &rng)
            let skus = Array(hot.shuffled(using: &rng).prefix(skuCount))
            var lines: [ReservationLine] = []
            for sku in skus {
                for _ in 0..<Int.random(in: 1...2, using: &rng) {
                    let target: ReservationLine.Target = Int.random(in: 0..<4, using: &rng) == 0
                        ? .channel(web, allowSplit: Bool.random(using: &rng))
                        : .location(locations.randomElement(using: &rng)!)
                    lines.append(ReservationLine(sku: sku, target: target, quantity: Int64.random(in: 1...4, using: &rng)))
                }
            }
            let shortTTL = Int.random(in: 0..<5, using: &rng) == 0
            let mode: ReservationMode = Bool.random(using: &rng) ? .allOrNothing : .partial
            let request = ReserveRequest(id: id, lines: lines, ttlMilliseconds: shortTTL ? 20 : 86_400_000, mode: mode)
            let reply = engine.reserve(request)
            let granted = check(reply, for: request, engine: engine, locations: locations, web: web, ledger: ledger)
            var order = Order(id: id, units: [:], state: reply.state, shortTTL: shortTTL)
            for (line, grant) in zip(lines, reply.lines) {
                for allocation in grant.allocations {
                    order.units[CellKey(line.sku, allocation.location), default: 0] += allocation.quantity
                }
            }
            ledger.state.withLock {
                $0.orders[id] = order
                $0.grantedUnits += reply.grantedUnits
            }
            guard granted && reply.state == .held else { continue }
            switch Int.random(in: 0..<20, using: &rng) {
            case 0..<8:
                let commit = engine.commit(id)
                if commit.state == .committed && commit.error == nil {
                    let ship = Bool.random(using: &rng)
                    ledger.state.withLock {
                        $0.orders[id]!.state = .committed
                        if ship { $0.shipQueue.append(id) }
                    }
                    if !ship && Int.random(in: 0..<3, using: &rng) == 0 {
                        let release = engine.release(id)
                        if release.state != .released || release.error != nil || release.replayed {
                            ledger.fail("release of committed \(id): \(release)")
                        }
                        ledger.state.withLock { $0.orders[id]!.state = .released }
                    }
                } else if commit.error == .notHeld(.expired) && shortTTL {
                    ledger.state.withLock { $0.orders[id]!.state = .expired }
                } else {
                    ledger.fail("commit of held \(id): \(commit)")
                }
            case 8..<12:
                let release = engine.release(id)
                if release.state == .released && !release.replayed {
                    ledger.state.withLock { $0.orders[id]!.state = .released }
                } else if release.state == .expired && shortTTL {
                    ledger.state.withLock { $0.orders[id]!.state = .expired }
                } else {
                    ledger.fail("release of held \(id): \(release)")
                }
            case 12..<15:
                // Commit and release in flight at once: the home shard orders them; either way the
                // reservation ends released.
                let commitReply = Locked<ReservationReply?>(nil)
                let releaseReply = Locked<ReservationReply?>(nil)
                let group = DispatchGroup()
                group.enter()
                group.enter()
                while engine.submitCommit(id, completion: { reply in commitReply.withLock { $0 = reply }; group.leave() })
                    == .inboxFull { usleep(20) }
                while engine.submitRelease(id, completion: { reply in releaseReply.withLock { $0 = reply }; group.leave() })
                    == .inboxFull { usleep(20) }
                group.wait()
                let release = releaseReply.withLock { $0 }!
                let commit = commitReply.withLock { $0 }!
                if release.state == .released {
                    ledger.state.withLock { $0.orders[id]!.state = .released }
                    let commitOK = (commit.state == .committed && commit.error == nil)
                        || commit.error == .notHeld(.released) || (shortTTL && commit.error == .notHeld(.expired))
                    if !commitOK { ledger.fail("racing commit of \(id): \(commit) / release \(release)") }
                } else if release.state == .expired && shortTTL {
                    ledger.state.withLock { $0.orders[id]!.state = .expired }
                } else {
                    ledger.fail("racing release of \(id): \(release) / commit \(commit)")
                }
            default:
                break  // left held (expires if short-lived)
            }
        }
    }

    /// Checks one reserve reply against its request; false when it granted nothing.
    static func check(_ reply: ReservationReply, for request: ReserveRequest, engine: Engine, locations: [LocationID],
                      web: ChannelID, ledger: Ledger) -> Bool {
        if reply.error != nil || reply.replayed || reply.lines.count != request.lines.count {
            ledger.fail("reserve \(request.id): unexpected reply \(reply)")
            return false
        }
        for (line, grant) in zip(request.lines, reply.lines) {
            let sum = grant.allocations.reduce(0) { $0 + $1.quantity }
            if grant.requested != line.quantity || grant.granted != sum || grant.granted > line.quantity
                || grant.allocations.contains(where: { $0.quantity <= 0 }) {
                ledger.fail("reserve \(request.id): inconsistent line \(grant) for \(line)")
            }
            switch line.target {
            case .location(let location):
                if grant.allocations.contains(where: { $0.location != location }) {
                    ledger.fail("reserve \(request.id): allocation outside the line's location")
                }
            case .channel(_, let allowSplit):
                if grant.allocations.contains(where: { !locations.contains($0.location) })
                    || (!allowSplit && grant.allocations.count > 1) {
                    ledger.fail("reserve \(request.id): channel allocation \(grant.allocations) (split \(allowSplit))")
                }
            }
        }
        switch reply.state {
        case .held:
            if request.mode == .allOrNothing && !reply.isFullyGranted {
                ledger.fail("all-or-nothing \(request.id) held without every line: \(reply)")
            }
            if reply.grantedUnits == 0 { ledger.fail("held \(request.id) with nothing granted") }
            return true
        case .refused:
            if reply.grantedUnits != 0 { ledger.fail("refused \(request.id) carries grants: \(reply)") }
            return false
        default:
            ledger.fail("reserve \(request.id): state \(reply.state)")
            return false
        }
    }

    /// The feed: receipts of 1–3 units, and shipments of committed orders (exactly what they hold,
    /// per cell, with the order id as correlation).
    static func feedLoop(engine: Engine, hot: [SKUID], locations: [LocationID], ledger: Ledger,
                         running: Locked<Int>, rng: inout SplitMix64) {
        let source = try! engine.catalog.source("feed")
        var sequence: UInt64 = 1
        func send(_ batch: EventBatch) {
            let result = engine.apply(batch)
            if result.appliedCount != batch.count { ledger.fail("feed batch not applied: \(result.outcomes)") }
        }
        while true {
            let stillRunning = running.current > 0
            var batch = EventBatch()
            var receipts: [(CellKey, Int64)] = []
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let sku = hot.randomElement(using: &rng)!
                let location = locations.randomElement(using: &rng)!
                let quantity = Int64.random(in: 1...3, using: &rng)
                batch.append(StockEvent(kind: .receive, sku: sku, location: location, quantity: quantity,
                                        source: source, sequence: sequence))
                sequence += 1
                receipts.append((CellKey(sku, location), quantity))
            }
            let toShip: [Order] = ledger.state.withLock { state in
                let ids = state.shipQueue
                state.shipQueue.removeAll()
                return ids.map { state.orders[$0]! }
            }
            var shipped: [(ReservationID, CellKey, Int64)] = []
            for order in toShip {
                for (key, units) in order.units.sorted(by: { $0.key < $1.key }) {
                    batch.append(StockEvent(kind: .ship, sku: SKUID(key.sku), location: LocationID(key.location),
                                            quantity: units, source: source, sequence: sequence),
                                 correlation: order.id)
                    sequence += 1
                    shipped.append((order.id, key, units))
                }
            }
            // Record before the events can be seen, so a monitor or final check never sees more
            // stock than the ledger knows of.
            ledger.state.withLock { state in
                for (key, quantity) in receipts { state.receipts[key, default: 0] += quantity }
                for (id, key, units) in shipped {
                    state.shipments[key, default: 0] += units
                    state.orders[id]!.shipped[key, default: 0] += units
                }
            }
            send(batch)
            if !stillRunning { break }
            usleep(UInt32.random(in: 300...1500, using: &rng))
        }
    }

    /// A worker blocked by a slow completion fills its inbox: submits see `.inboxFull`, nothing is
    /// queued for them and their completions never run; retried, every request runs exactly once.
    @Test func fullInboxLosesNothingOnceRetried() throws {
        var configuration = LedgerConfiguration()
        configuration.shardCount = 4
        configuration.workerCount = 2
        configuration.inboxCapacityRequests = 2
        configuration.workerSpinIterations = 10
        let engine = try Engine(configuration: configuration, clock: .manual())
        defer { engine.shutdown() }
        let catalog = engine.catalog
        let skus = try namesOnShards(prefix: "FLOOD", placement: configuration.placement, shards: [0, 1, 2, 3])
            .map { try catalog.sku($0) }
        let location = try catalog.location("DC")
        #expect(skus.map { engine.shardIndex(of: $0) } == [0, 1, 2, 3])

        // Block worker 0 (shards 0 and 2) inside a completion until the flood has hit a full inbox.
        let gate = DispatchSemaphore(value: 0)
        let blocked = DispatchSemaphore(value: 0)
        while engine.submit(queries: [.sku(skus[0])], completion: { _ in blocked.signal(); gate.wait() }) == .inboxFull {
            usleep(50)
        }
        blocked.wait()

        let threads = 4
        let requestsPerThread = 250
        let inboxFullSeen = Locked(0)
        let completions = Locked([Int](repeating: 0, count: threads * requestsPerThread))
        let outcomes = Locked<[EventOutcome]>([])
        let receivedUnits = Locked([Int64](repeating: 0, count: skus.count))
        let reservedUnits = Locked([Int64](repeating: 0, count: skus.count))
        let reservedReplies = Locked<[ReservationReply]>([])
        let group = DispatchGroup()
        for thread in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                var rng = SplitMix64(seed: UInt64(thread) &+ 99)
                let source = try! catalog.source("flood-\(thread)")
                for n in 0..<requestsPerThread {
                    let request = thread * requestsPerThread + n
                    let record: @Sendable () -> Void = { completions.withLock { $0[request] += 1 } }
                    while true {
                        let submitted: SubmitResult
                        if n % 5 == 4 {
                            let reserve = ReserveRequest(
                                id: try! ReservationID("flood-\(request)"),
                                lines: [ReservationLine(sku: skus[n % skus.count], target: .location(location), quantity: 1)],
                                ttlMilliseconds: 60_000, mode: .partial)
                            let skuIndex = n % skus.count
                            submitted = engine.submitReserve(reserve) { reply in
                                reservedReplies.withLock { $0.append(reply) }
                                reservedUnits.withLock { $0[skuIndex] += reply.grantedUnits }
                                record()
                            }
                        } else {
                            // One or two receipts, possibly on both workers.
                            var batch = EventBatch()
                            let first = Int.random(in: 0..<skus.count, using: &rng)
                            batch.append(StockEvent(kind: .receive, sku: skus[first], location: location, quantity: 1,
                                                    source: source, sequence: UInt64(2 * n)))
                            var units = [first]
                            if n % 3 == 0 {
                                let second = (first + 1) % skus.count
                                batch.append(StockEvent(kind: .receive, sku: skus[second], location: location, quantity: 1,
                                                        source: source, sequence: UInt64(2 * n + 1)))
                                units.append(second)
                            }
                            let counted = units
                            submitted = engine.submit(batch) { result in
                                outcomes.withLock { $0.append(contentsOf: result.outcomes) }
                                receivedUnits.withLock { for i in counted { $0[i] += 1 } }
                                record()
                            }
                        }
                        if submitted == .accepted { break }
                        inboxFullSeen.withLock { $0 += 1 }
                        usleep(20)
                    }
                }
                group.leave()
            }
        }
        // Open the gate once the flood has met the full inbox (or after 10 s, and then fail).
        let deadline = Date().addingTimeInterval(10)
        while inboxFullSeen.current < 10 && Date() < deadline { usleep(1000) }
        #expect(inboxFullSeen.current >= 10, "the flood should have met a full inbox")
        gate.signal()
        group.wait()
        engine.waitUntilIdle()

        let counts = completions.current
        #expect(counts.allSatisfy { $0 == 1 }, "every request completes exactly once: \(counts.enumerated().filter { $0.element != 1 }.prefix(10))")
        let applied = outcomes.current
        #expect(applied.allSatisfy { $0 == .applied })
        let replies = reservedReplies.current
        #expect(replies.allSatisfy { $0.error == nil && !$0.replayed })
        let result = engine.query(skus.map { .cell($0, location) })
        let units = receivedUnits.current
        let reservedBySKU = reservedUnits.current
        #expect(replies.count == threads * requestsPerThread / 5)
        for (index, sku) in skus.enumerated() {
            let cell = result.cells(of: index).first!.cell
            let reserved = reservedBySKU[index]
            #expect(Int64(cell.onHand) == units[index], "\(sku): onHand \(cell.onHand), receipts \(units[index])")
            #expect(Int64(cell.reserved) == reserved, "\(sku): reserved \(cell.reserved), grants \(reserved)")
        }
        engine.checkInvariants()
        print("inbox: inboxFull seen \(inboxFullSeen.current) times; \(counts.count) requests completed once each")
    }
}

/// For each of `shards`, the first name `prefix-N` (N = 0, 1, ...) that `placement` puts there.
func namesOnShards(prefix: String, placement: SKUPlacement, shards: [Int]) -> [String] {
    shards.map { shard in
        var n = 0
        while placement.shardIndex(ofSKUNamed: "\(prefix)-\(n)") != shard { n += 1 }
        return "\(prefix)-\(n)"
    }
}
