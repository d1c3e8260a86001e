import ATPLedger

/// A disagreement between the engine and the reference, with what is needed to replay it.
struct ModelMismatch: Error, CustomStringConvertible {
    var seed: UInt64
    var step: Int
    var message: String
    var recentOperations: [String]

    var description: String {
        "MODEL MISMATCH seed=\(seed) step=\(step) (replay: ATP_MODEL_SEED=\(seed) ATP_MODEL_STEPS=\(step + 1)): "
            + message + "\nrecent operations, oldest first:\n" + recentOperations.joined(separator: "\n")
    }
}

/// One randomized run: a fresh engine and reference, `steps` random operations, a full comparison
/// after every step.
final class ModelRun {
    let seed: UInt64
    var rng: SplitMix64
    let engine: Engine
    let model: ReferenceLedger
    let configuration: LedgerConfiguration

    let skus: [SKUID]
    let locations: [LocationID]
    let sources: [SourceID]
    /// Channel ids; the last one ("ghost") is rarely defined, so lines and queries meet unknown channels.
    let channels: [ChannelID]

    var step = 0
    var recent: [String] = []

    // Event stream state.
    var nextSequence: [UInt64]
    struct SentEvent {
        var event: StockEvent
        var correlation: ReservationID?
        var bogusCorrelation: UInt32?
    }
    var history: [SentEvent] = []
    var delayed: [SentEvent] = []
    var rejectionLogSeen: UInt64 = 0

    // Reservation id universe.
    var reservationCounter = 0
    var usedIDs: [ReservationID] = []

    // Totals for the summary line.
    var eventOutcomes: [String: Int] = [:]
    var reservationStates: [String: Int] = [:]

    /// A run with a configuration drawn from the seed; `configure` may override it (scenario tests).
    init(seed: UInt64, configure: (inout LedgerConfiguration) -> Void = { _ in }) {
        self.seed = seed
        rng = SplitMix64(seed: seed)
        var configuration = LedgerConfiguration()
        configuration.shardCount = [4, 8, 16].randomElement(using: &rng)!
        configuration.workerCount = 2
        configuration.workerSpinIterations = 20
        configuration.dedupWindowSequences = Bool.random(using: &rng) ? 64 : 128
        configuration.quantityMax = Bool.random(using: &rng) ? 1_000_000_000 : Int64(Int32.max)
        configuration.reservationLinesMax = 6
        configuration.reservationTTLMillisecondsMax = 10_000
        configuration.initialCellsPerShard = 4
        // Half the runs forget finished reservations after a few seconds (then replays of old ids
        // become new reservations, and forgotten committed holds meet reused ids).
        if Bool.random(using: &rng) { configuration.reservationOutcomeRetentionMilliseconds = Int64.random(in: 2000...8000, using: &rng) }
        configure(&configuration)
        self.configuration = configuration
        let clock = EngineClock.manual(startMilliseconds: 1_700_000_000_000)
        engine = try! Engine(configuration: configuration, clock: clock)
        let catalog = engine.catalog
        let skuCount = Int.random(in: 6...14, using: &rng)
        skus = (0..<skuCount).map { try! catalog.sku("SKU-\($0)") }
        locations = (0..<5).map { try! catalog.location("L\($0)") }
        sources = (0..<3).map { try! catalog.source("feed-\($0)") }
        channels = ["web", "market", "outlet", "ghost"].map { try! catalog.channel($0) }
        nextSequence = Array(repeating: 1, count: sources.count)
        let engine = self.engine
        model = ReferenceLedger(
            configuration: configuration, nowMilliseconds: clock.nowMilliseconds(),
            shardOf: { engine.shardIndex(of: $0) }, homeOf: { engine.homeShardIndex(of: $0) })
    }

    /// The configuration drawn from the seed.
    var configurationSummary: String {
        "shards=\(configuration.shardCount) skus=\(skus.count) window=\(configuration.dedupWindowSequences) "
            + "retention=\(configuration.reservationOutcomeRetentionMilliseconds)ms quantityMax=\(configuration.quantityMax)"
    }

    /// What the run exercised.
    var summary: String {
        configurationSummary + " events=\(eventOutcomes.sorted { $0.key < $1.key }) "
            + "reservations=\(reservationStates.sorted { $0.key < $1.key }) model counters=\(model.counters)"
    }

    // MARK: - Random helpers

    func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < percent }
    func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    func int64(_ range: ClosedRange<Int64>) -> Int64 { Int64.random(in: range, using: &rng) }
    func pick<T>(_ values: [T]) -> T { values.randomElement(using: &rng)! }

    /// Hot SKUs (the first four) get most of the traffic.
    var hotSKUs: ArraySlice<SKUID> { skus.prefix(4) }
    func randomSKU() -> SKUID { chance(60) ? pick(Array(hotSKUs)) : pick(skus) }

    func fail(_ message: String) -> ModelMismatch {
        ModelMismatch(seed: seed, step: step, message: message, recentOperations: recent)
    }

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw fail(message()) }
    }

    func note(_ operation: String) {
        recent.append("#\(step) \(operation)")
        if recent.count > 40 { recent.removeFirst() }
    }

    // MARK: - The run

    func run(steps: Int) throws {
        // Start with the three channels defined, so channel lines have somewhere to go.
        for id in channels.dropLast() {
            let definition = ChannelDefinition(id: id, locations: Array(locations.shuffled(using: &rng).prefix(int(1...4))),
                                               bufferUnits: int64(0...3), capPercent: pick([100, 100, 75, 50]))
            try model.defineChannel(definition)
            try engine.defineChannel(definition)
            note("define channel \(id) locations=\(definition.locations) buffer=\(definition.bufferUnits) cap=\(definition.capPercent)")
        }
        for s in 0..<steps {
            step = s
            try randomOperation()
            try compareCells()
            if s % 25 == 24 { try compareStatistics() }
            if s % 500 == 499 { engine.checkInvariants() }
        }
        step = steps
        try compareStatistics()
        engine.checkInvariants()
    }

    func randomOperation() throws {
        if !delayed.isEmpty && chance(8) {
            try deliverDelayed()
            return
        }
        switch int(0...99) {
        case 0..<45: try eventBatch()
        case 45..<67: try reserve()
        case 67..<76: try commit()
        case 76..<85: try release()
        case 85..<93: try advanceClock()
        default: try channelChange()
        }
    }

    // MARK: - Events

    func randomQuantity() -> Int64 {
        let max = configuration.quantityMax
        switch int(0...99) {
        case 0..<72: return int64(1...12)
        case 72..<80: return int64(13...200)
        case 80..<84: return int64(max - 1000...max)
        case 84..<86: return max
        case 86..<94: return int64(-5...0)
        default: return chance(20) ? Int64.max : int64(max + 1...max + 1000)
        }
    }

    func randomEvent() -> SentEvent {
        // Receipts and counts keep stock flowing in; every kind still comes up often.
        let kind = chance(22) ? .receive : chance(8) ? .count : pick(StockEventKind.allCases)
        let sku = randomSKU()
        var quantity = randomQuantity()
        // Quantities near quantityMax (bucket overflow, deep negative onHand) go to cold SKUs only, so
        // the hot SKUs keep a stock level where reservations compete.
        let hot = hotSKUs.contains(sku)
        if hot && quantity > 12 && quantity <= configuration.quantityMax { quantity = int64(1...12) }
        // Keep the hot SKUs' sellable stock up: bigger receipts, fewer units turned unsellable.
        if hot && kind == .receive && quantity > 0 && chance(70) { quantity = int64(3...30) }
        if hot && (kind == .damage || kind == .returnReceived) && quantity > 0 { quantity = int64(1...3) }
        var event = StockEvent(kind: kind, sku: sku, location: pick(locations), quantity: quantity,
                               source: sources[0], sequence: 0, eventMilliseconds: int64(0...1_000_000))
        event.reasonCode = UInt16(int(0...9))
        var correlation: ReservationID? = nil
        var bogusCorrelation: UInt32? = nil
        switch kind {
        case .receive:
            if chance(hot ? 8 : 25) { event.flags.insert(.intoQuarantine) }
            if chance(30) { event.flags.insert(.closesInbound) }
            if chance(3) { event.flags.insert(.countsDamaged) }
        case .ship:
            if chance(45), let id = correlationCandidate() {
                correlation = id
                let held = model.holds.filter { $0.key.id == id }.flatMap(\.value.units)
                if chance(50), let units = held.first(where: { $0.key == CellKey(event.sku, event.location) })?.value {
                    event.quantity = units
                } else if chance(50), let pair = held.randomElement(using: &rng) {
                    event.sku = SKUID(pair.key.sku)
                    event.location = LocationID(pair.key.location)
                    event.quantity = chance(70) ? pair.value : max(1, pair.value + int64(-2...2))
                }
            }
            if chance(2) { bogusCorrelation = UInt32(int(1...3)) }
        case .transferOut:
            event.toLocation = chance(8) ? event.location : pick(locations.filter { $0 != event.location })
        case .adjust:
            if chance(50) { event.quantity = -event.quantity }
            switch int(0...9) {
            case 0: event.bucketCode = pick([Bucket.committed.rawValue, Bucket.reserved.rawValue])
            case 1: event.bucketCode = pick([8, 0x7F, 0xFF])
            default: event.bucket = pick(Bucket.allCases.filter(\.isAdjustable))
            }
        case .count:
            if chance(80) { event.quantity = hot ? int64(5...40) : int64(0...30) }
            if chance(hot ? 50 : 30) {
                event.flags.insert(.countsDamaged)
                event.countDamaged = chance(85) ? Int32(int(0...6)) : pick([-1, Int32.max, Int32(int(-3...3))])
            }
            if chance(30) {
                event.flags.insert(.countsQuarantine)
                event.countQuarantine = chance(85) ? Int32(int(0...6)) : pick([-2, Int32.max, 1_000_000_001])
            }
            if chance(3) { event.flags.insert(.intoQuarantine) }
        case .setSafetyStock:
            if chance(80) { event.quantity = int64(0...5) }
        case .disposition:
            event.outcomeCode = chance(90) ? UInt8(int(0...3)) : UInt8(int(4...255))
        case .writeOff:
            event.bucketCode = chance(85) ? pick([Bucket.onHand, .damaged, .quarantine]).rawValue
                : pick([Bucket.committed.rawValue, Bucket.inbound.rawValue, 9])
        case .returnAuthorized, .returnReceived, .damage:
            break
        }
        if kind != .receive && kind != .count && chance(3) { event.flags.insert(.closesInbound) }
        if kind != .ship && chance(2) { correlation = pick(usedIDs + [try! ReservationID("nobody")]) }
        return SentEvent(event: event, correlation: correlation, bogusCorrelation: bogusCorrelation)
    }

    /// A reservation id for a ship: mostly committed ones, sometimes any, sometimes unknown.
    func correlationCandidate() -> ReservationID? {
        let committed = Set(model.holds.filter { $0.value.isCommitted }.keys.map(\.id)).sorted()
        if !committed.isEmpty && chance(75) { return pick(committed) }
        if !usedIDs.isEmpty && chance(70) { return pick(usedIDs) }
        return try! ReservationID("unknown-order")
    }

    /// Gives an event a (source, sequence): fresh, an exact resend, a reused sequence, or one
    /// near/below the window.
    func sequenced(_ fresh: SentEvent) -> SentEvent {
        var sent = fresh
        let source = int(0...sources.count - 1)
        sent.event.source = sources[source]
        let window = UInt64(configuration.dedupWindowSequences)
        switch int(0...99) {
        case 0..<70:
            if chance(4) { nextSequence[source] += UInt64(int(1...3 * Int(window))) }
            if chance(1) { nextSequence[source] += UInt64(int(1...1 << 40)) }
            sent.event.sequence = nextSequence[source]
            nextSequence[source] += 1
        case 70..<82 where !history.isEmpty:
            // An exact resend (duplicate, too old, or a retry of an event that was rejected).
            return pick(Array(history.suffix(chance(70) ? 40 : 400)))
        case 82..<92 where !history.isEmpty:
            // A reused (source, sequence) with different content.
            let old = pick(Array(history.suffix(200)))
            sent.event.source = old.event.source
            sent.event.sequence = old.event.sequence
        default:
            let newest = nextSequence[source] - 1
            let below = UInt64(int(0...Int(2 * window) + 2))
            sent.event.sequence = newest >= below ? newest - below : newest
        }
        return sent
    }

    func eventBatch() throws {
        var events: [SentEvent] = []
        for _ in 0..<int(1...6) {
            let sent = sequenced(randomEvent())
            if chance(6) {
                delayed.append(sent)
            } else {
                events.append(sent)
            }
        }
        if chance(30) { events.shuffle(using: &rng) }
        try send(events, label: "events")
    }

    func deliverDelayed() throws {
        delayed.shuffle(using: &rng)
        let count = int(1...min(4, delayed.count))
        let events = Array(delayed.prefix(count))
        delayed.removeFirst(count)
        try send(events, label: "delayed events")
    }

    func describe(_ sent: SentEvent) -> String {
        let e = sent.event
        var text = "\(e.kind) \(e.sku)@\(e.location) q=\(e.quantity) src=\(e.source.rawValue) seq=\(e.sequence)"
        if e.kind == .transferOut { text += " to=\(e.toLocation)" }
        if !e.flags.isEmpty { text += " flags=\(e.flags.rawValue)" }
        if e.kind == .adjust || e.kind == .writeOff { text += " bucket=\(e.bucketCode)" }
        if e.kind == .disposition { text += " outcome=\(e.outcomeCode)" }
        if e.kind == .count { text += " cd=\(e.countDamaged) cq=\(e.countQuarantine)" }
        if let c = sent.correlation { text += " corr=\(c)" }
        if let b = sent.bogusCorrelation { text += " bogusCorr=\(b)" }
        return text
    }

    func send(_ events: [SentEvent], label: String) throws {
        guard !events.isEmpty else { return }
        var batch = EventBatch(capacity: events.count)
        for sent in events {
            batch.append(sent.event, correlation: sent.correlation)
            if let bogus = sent.bogusCorrelation {
                batch.events[batch.count - 1].correlation = UInt32(batch.correlationIDs.count) + bogus
            }
        }
        note("\(label): " + events.map(describe).joined(separator: "; "))
        let expected = model.apply(batch)
        let actual = engine.apply(batch).outcomes
        history.append(contentsOf: events)
        if history.count > 1000 { history.removeFirst(history.count - 1000) }
        for (index, outcome) in expected.enumerated() {
            eventOutcomes["\(outcome)", default: 0] += 1
            try expect(actual[index] == outcome,
                       "event \(index) [\(describe(events[index]))]: engine \(actual[index]), model \(outcome)")
        }
        try compareRejectionLog(batch, expected)
    }

    /// The rejection log got exactly this batch's rejections (any order across workers).
    func compareRejectionLog(_ batch: EventBatch, _ outcomes: [EventOutcome]) throws {
        var expected: [String] = []
        for (index, outcome) in outcomes.enumerated() {
            if case .rejected(let reason) = outcome {
                let e = batch.events[index]
                expected.append("\(reason) \(e.kind) \(e.source.rawValue)/\(e.sequence) \(e.sku)@\(e.location)")
            }
        }
        let page = engine.rejections(afterSequence: rejectionLogSeen, limit: 100)
        var actual: [String] = []
        for entry in page.entries {
            guard let e = entry.event else { throw fail("rejection log entry without its event: \(entry.reason)") }
            actual.append("\(entry.reason) \(e.kind) \(e.source.rawValue)/\(e.sequence) \(e.sku)@\(e.location)")
        }
        rejectionLogSeen = page.newestSequence
        try expect(expected.sorted() == actual.sorted(), "rejection log: engine \(actual.sorted()), model \(expected.sorted())")
    }

    // MARK: - Reservations

    func newReservationID() -> ReservationID {
        reservationCounter += 1
        let id = try! ReservationID("order-\(reservationCounter)")
        usedIDs.append(id)
        return id
    }

    func randomLine() -> ReservationLine {
        var target: ReservationLine.Target = chance(62) ? .location(pick(locations))
            : .channel(pick(channels), allowSplit: chance(55))
        if chance(1) { target = chance(50) ? .location(.unknown) : .channel(.unknown, allowSplit: chance(50)) }
        let quantity: Int64 = switch int(0...99) {
        case 0..<80: int64(1...6)
        case 80..<92: int64(7...40)
        case 92..<96: int64(-2...0)
        default: configuration.quantityMax + int64(0...1)
        }
        return ReservationLine(sku: chance(1) ? .unknown : randomSKU(), target: target, quantity: quantity)
    }

    func describe(_ request: ReserveRequest) -> String {
        let lines = request.lines.map { line -> String in
            let target = switch line.target {
            case .location(let location): "\(location)"
            case .channel(let channel, let split): "\(channel)\(split ? "/split" : "/whole")"
            }
            return "\(line.sku)@\(target)x\(line.quantity)"
        }
        return "reserve \(request.id) \(request.mode == .allOrNothing ? "AoN" : "partial") ttl=\(request.ttlMilliseconds) [\(lines.joined(separator: ", "))]"
    }

    func reserve() throws {
        let id = !usedIDs.isEmpty && chance(15) ? pick(usedIDs) : newReservationID()
        var lineCount = int(1...4)
        if chance(3) { lineCount = 0 }
        if chance(3) { lineCount = configuration.reservationLinesMax + 1 }
        let lines = (0..<lineCount).map { _ in randomLine() }
        var ttl = int64(100...4000)
        if chance(3) { ttl = pick([0, -1, configuration.reservationTTLMillisecondsMax + 1, configuration.reservationTTLMillisecondsMax]) }
        try reserve(ReserveRequest(id: id, lines: lines, ttlMilliseconds: ttl,
                                   mode: chance(50) ? .allOrNothing : .partial))
    }

    @discardableResult
    func reserve(_ request: ReserveRequest) throws -> ReservationReply {
        note(describe(request))
        let expected = model.reserve(request)
        let actual = engine.reserve(request)
        let fullness = expected.state == .held ? (expected.isFullyGranted ? "/full" : "/partial") : ""
        reservationStates["reserve:\(expected.state)\(fullness)\(expected.replayed ? "(replay)" : "")", default: 0] += 1
        try expect(actual == expected, "reply to \(describe(request)):\n  engine \(actual)\n  model  \(expected)")
        return actual
    }

    /// An id for commit or release: mostly held ones, sometimes any known, sometimes unknown.
    func operationID() -> ReservationID {
        let held = model.records.filter { $0.value.state == .held }.keys.sorted()
        if !held.isEmpty && chance(70) { return pick(held) }
        if !usedIDs.isEmpty && chance(85) { return pick(usedIDs) }
        return try! ReservationID("never-reserved-\(int(0...3))")
    }

    func commit() throws { try commit(operationID()) }

    @discardableResult
    func commit(_ id: ReservationID) throws -> ReservationReply {
        note("commit \(id)")
        let expected = model.commit(id)
        let actual = engine.commit(id)
        reservationStates["commit:\(expected.state)\(expected.error == nil ? "" : "!")", default: 0] += 1
        try expect(actual == expected, "reply to commit \(id):\n  engine \(actual)\n  model  \(expected)")
        return actual
    }

    func release() throws {
        var id = operationID()
        if chance(30), let committed = model.records.filter({ $0.value.state == .committed }).keys.sorted().randomElement(using: &rng) {
            id = committed
        }
        try release(id)
    }

    @discardableResult
    func release(_ id: ReservationID) throws -> ReservationReply {
        note("release \(id)")
        let expected = model.release(id)
        let actual = engine.release(id)
        reservationStates["release:\(expected.state)\(expected.replayed ? "(replay)" : "")", default: 0] += 1
        try expect(actual == expected, "reply to release \(id):\n  engine \(actual)\n  model  \(expected)")
        return actual
    }

    func advanceClock() throws {
        var milliseconds = int64(0...1500)
        let deadlines = model.records.values.filter { $0.state == .held }.map(\.expiresAtMilliseconds)
        if chance(40), let deadline = deadlines.randomElement(using: &rng) {
            // Land just before, on, or just after a deadline.
            milliseconds = max(0, deadline - model.nowMilliseconds + int64(-1...1))
        }
        try advanceClock(by: milliseconds)
    }

    func advanceClock(by milliseconds: Int64) throws {
        note("advance clock by \(milliseconds) ms")
        model.advanceClock(byMilliseconds: milliseconds)
        engine.advanceClock(byMilliseconds: milliseconds)
        engine.waitUntilIdle()
        try expect(engine.clock.nowMilliseconds() == model.nowMilliseconds, "clocks differ")
    }

    // MARK: - Channels

    func channelChange() throws {
        let id = pick(Array(channels.dropLast()) + (chance(10) ? [channels.last!] : []))
        if chance(20) {
            note("remove channel \(id)")
            var expected: ChannelDefinitionError? = nil
            var actual: ChannelDefinitionError? = nil
            do { try model.removeChannel(id) } catch { expected = error }
            do { try engine.removeChannel(id) } catch { actual = error }
            try expect(actual == expected, "remove channel \(id): engine \(String(describing: actual)), model \(String(describing: expected))")
            return
        }
        var locationsOfChannel = Array(locations.shuffled(using: &rng).prefix(int(1...4)))
        var buffer = chance(50) ? 0 : int64(0...8)
        var cap = pick([100, 100, 100, 50, 75, 33, 99, 1])
        switch int(0...19) {
        case 0: locationsOfChannel = []
        case 1: locationsOfChannel.append(locationsOfChannel[0])
        case 2: locationsOfChannel.append(LocationID.unknown)
        case 3: buffer = pick([-1, configuration.quantityMax + 1, configuration.quantityMax])
        case 4: cap = pick([0, 101, -5])
        default: break
        }
        let definition = ChannelDefinition(id: id, locations: locationsOfChannel, bufferUnits: buffer, capPercent: cap)
        note("define channel \(id) locations=\(locationsOfChannel) buffer=\(buffer) cap=\(cap)")
        var expected: ChannelDefinitionError? = nil
        var actual: ChannelDefinitionError? = nil
        do { try model.defineChannel(definition) } catch { expected = error }
        do { try engine.defineChannel(definition) } catch { actual = error }
        try expect(actual == expected, "define channel: engine \(String(describing: actual)), model \(String(describing: expected))")
        try expect(engine.channels() == model.channels.values.sorted { $0.id < $1.id }, "channel lists differ")
    }

    // MARK: - Comparing state

    /// Every cell bucket by bucket (through SKU queries), channel views, and a few single cells.
    func compareCells() throws {
        var queries: [AvailabilityQuery] = skus.map { .sku($0) }
        for channel in channels {
            for sku in skus where chance(25) { queries.append(.channel(sku, channel)) }
        }
        for _ in 0..<3 { queries.append(.cell(randomSKU(), pick(locations))) }
        if chance(5) {
            queries += [.sku(.unknown), .cell(.unknown, pick(locations)), .cell(randomSKU(), .unknown),
                        .channel(.unknown, pick(channels)), .channel(randomSKU(), .unknown)]
        }
        let result = engine.query(queries)
        for (index, query) in queries.enumerated() {
            let answer = result.answers[index]
            let cells = Array(result.cells(of: index))
            switch query {
            case .sku(let sku):
                let expected = model.cells(of: sku)
                try expect(cells.count == expected.count,
                           "\(sku): engine has \(cells.count) cells (\(cells.map(\.cell.location))), model \(expected.count) (\(expected.map(\.location)))")
                for (actual, wanted) in zip(cells, expected) {
                    try expect(actual.exists && actual.cell.location == wanted.location && actual.cell.sku == sku,
                               "\(sku): engine cell at \(actual.cell.location) exists=\(actual.exists), model at \(wanted.location)")
                    try expect(ReferenceCell(actual.cell) == wanted.cell,
                               "cell \(sku)@\(wanted.location):\n  engine \(ReferenceCell(actual.cell))\n  model  \(wanted.cell)")
                }
                try expect(answer.sellable == expected.reduce(0) { $0 + $1.cell.sellable }, "\(sku): SKU sellable")
                try expect(answer.projected == expected.reduce(0) { $0 + $1.cell.projected }, "\(sku): SKU projected")
                try expect(answer.isShort == expected.contains { $0.cell.isShort }, "\(sku): SKU short flag")
                try expect(answer.exists == !expected.isEmpty, "\(sku): SKU exists flag")
            case .channel(let sku, let channelID):
                guard let view = model.channelView(sku, channelID) else {
                    try expect(!answer.exists && answer.sellable == 0 && cells.isEmpty,
                               "unknown channel \(channelID) answered \(answer)")
                    continue
                }
                try expect(answer.sellable == view.sellable && answer.projected == view.projected
                           && answer.isShort == view.isShort && answer.exists == view.exists,
                           "channel \(channelID) view of \(sku): engine sellable=\(answer.sellable) projected=\(answer.projected) short=\(answer.isShort) exists=\(answer.exists), model \(view)")
                let channelLocations = model.channels[channelID]!.locations
                try expect(cells.map(\.cell.location) == channelLocations, "channel \(channelID) cells out of order")
                for cell in cells {
                    let wanted = model.cell(sku, cell.cell.location)
                    try expect(cell.exists == (wanted != nil), "channel cell \(sku)@\(cell.cell.location) exists flag")
                }
            case .cell(let sku, let location):
                let wanted = model.cell(sku, location)
                try expect(answer.exists == (wanted != nil) && cells.count == 1 && cells[0].exists == (wanted != nil),
                           "cell \(sku)@\(location) exists: engine \(answer.exists), model \(wanted != nil)")
                if let wanted {
                    try expect(ReferenceCell(cells[0].cell) == wanted && answer.sellable == wanted.sellable
                               && answer.projected == wanted.projected && answer.isShort == wanted.isShort,
                               "cell query \(sku)@\(location): engine \(ReferenceCell(cells[0].cell)), model \(wanted)")
                }
            }
        }
    }

    /// Counters, short cells, reservation and hold counts, rejection log position.
    func compareStatistics() throws {
        let statistics = engine.statistics()
        let differences = model.counters.differences(from: statistics.counters)
        try expect(differences.isEmpty, "counters differ: " + differences.joined(separator: "; "))
        try expect(statistics.counters.shortCells == model.shortCellCount,
                   "short cells: engine \(statistics.counters.shortCells), model \(model.shortCellCount)")
        try expect(statistics.cellCount == model.cells.count,
                   "cell count: engine \(statistics.cellCount), model \(model.cells.count)")
        let held = model.records.values.count { $0.state == .held }
        try expect(statistics.heldReservations == held, "held reservations: engine \(statistics.heldReservations), model \(held)")
        try expect(statistics.rememberedReservations == model.records.count,
                   "remembered reservations: engine \(statistics.rememberedReservations), model \(model.records.count)")
        try expect(statistics.holds == model.holds.count, "hold records: engine \(statistics.holds), model \(model.holds.count)")
        let rejected = model.counters.rejectionsByReason.reduce(0, +)
        try expect(statistics.rejectionLogNewestSequence == rejected,
                   "rejection log position \(statistics.rejectionLogNewestSequence), model rejections \(rejected)")
    }
}
