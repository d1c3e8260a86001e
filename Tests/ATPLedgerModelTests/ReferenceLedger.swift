import ATPLedger

/// A (SKU, location) pair, by id.
struct CellKey: Hashable, Comparable, CustomStringConvertible {
    var sku: UInt32
    var location: UInt32

    init(_ sku: SKUID, _ location: LocationID) {
        self.sku = sku.rawValue
        self.location = location.rawValue
    }

    static func < (a: CellKey, b: CellKey) -> Bool { (a.sku, a.location) < (b.sku, b.location) }
    var description: String { "(sku#\(sku), location#\(location))" }
}

/// One cell of the reference: the eight buckets as plain 64-bit integers.
struct ReferenceCell: Equatable, CustomStringConvertible {
    var onHand: Int64 = 0
    var damaged: Int64 = 0
    var quarantine: Int64 = 0
    var committed: Int64 = 0
    var reserved: Int64 = 0
    var inbound: Int64 = 0
    var returnPending: Int64 = 0
    var safetyStock: Int64 = 0

    subscript(bucket: Bucket) -> Int64 {
        get {
            switch bucket {
            case .onHand: onHand
            case .damaged: damaged
            case .quarantine: quarantine
            case .committed: committed
            case .reserved: reserved
            case .inbound: inbound
            case .returnPending: returnPending
            case .safetyStock: safetyStock
            }
        }
        set {
            switch bucket {
            case .onHand: onHand = newValue
            case .damaged: damaged = newValue
            case .quarantine: quarantine = newValue
            case .committed: committed = newValue
            case .reserved: reserved = newValue
            case .inbound: inbound = newValue
            case .returnPending: returnPending = newValue
            case .safetyStock: safetyStock = newValue
            }
        }
    }

    /// DESIGN §2: max(0, onHand − damaged − quarantine − committed − reserved − safetyStock).
    var sellable: Int64 { max(0, onHand - damaged - quarantine - committed - reserved - safetyStock) }
    /// DESIGN §2: sellable + inbound.
    var projected: Int64 { sellable + inbound }
    /// DESIGN §2: onHand − damaged − quarantine < committed + reserved.
    var isShort: Bool { onHand - damaged - quarantine < committed + reserved }

    /// Every bucket within the 32-bit range the engine stores.
    var fitsInt32: Bool {
        Bucket.allCases.allSatisfy { self[$0] >= Int64(Int32.min) && self[$0] <= Int64(Int32.max) }
    }

    init() {}

    init(_ cell: StockCell) {
        for bucket in Bucket.allCases { self[bucket] = Int64(cell[bucket]) }
    }

    var description: String {
        Bucket.allCases.map { "\($0)=\(self[$0])" }.joined(separator: " ")
    }
}

/// A reservation as the reference remembers it.
struct ReferenceReservation {
    var request: ReserveRequest
    var state: ReservationState
    var lines: [LineGrant]
    var expiresAtMilliseconds: Int64
    var settledAtMilliseconds: Int64
    var home: Int
    /// Shards where this reservation holds units.
    var partShards: [Int] = []
}

/// A reservation id's hold on one shard. An id holds at most once per shard: a committed
/// reservation forgotten after the retention window keeps its hold (its units still ship by id),
/// and a new reservation reusing the id gets nothing on that shard.
struct HoldKey: Hashable {
    var id: ReservationID
    var shard: Int
}

/// Units a reservation holds on one shard, per cell: reserved units while held, committed units
/// not yet shipped once committed.
struct ReferenceHold {
    var isCommitted = false
    var units: [CellKey: Int64] = [:]
}

/// The reference's counters, named like `ShardCounters`.
struct ReferenceCounters: Equatable {
    var eventsAppliedByKind = [UInt64](repeating: 0, count: 12)
    var duplicatesDropped: UInt64 = 0
    var rejectionsByReason = [UInt64](repeating: 0, count: 32)
    var exceptionUnitsByBucket = [UInt64](repeating: 0, count: 8)
    var reservationsGranted: UInt64 = 0
    var reservationsPartial: UInt64 = 0
    var reservationsRefused: UInt64 = 0
    var reservationsCommitted: UInt64 = 0
    var reservationsReleased: UInt64 = 0
    var reservationsExpired: UInt64 = 0
    /// Ships whose correlation id took units off a committed hold (not an engine counter).
    var shipsAgainstHolds: UInt64 = 0
    /// Records forgotten after the retention window, and reserves that met a forgotten hold of
    /// their id (not engine counters).
    var recordsForgotten: UInt64 = 0
    var reservesMeetingOldHolds: UInt64 = 0

    /// The differences from an engine's counters, as text (empty when equal).
    func differences(from engine: ShardCounters) -> [String] {
        var out: [String] = []
        func compare<T: Equatable>(_ name: String, _ model: T, _ actual: T) {
            if model != actual { out.append("\(name): model \(model) engine \(actual)") }
        }
        compare("eventsAppliedByKind", eventsAppliedByKind, engine.eventsAppliedByKind)
        compare("duplicatesDropped", duplicatesDropped, engine.duplicatesDropped)
        compare("rejectionsByReason", rejectionsByReason, engine.rejectionsByReason)
        compare("exceptionUnitsByBucket", exceptionUnitsByBucket, engine.exceptionUnitsByBucket)
        compare("reservationsGranted", reservationsGranted, engine.reservationsGranted)
        compare("reservationsPartial", reservationsPartial, engine.reservationsPartial)
        compare("reservationsRefused", reservationsRefused, engine.reservationsRefused)
        compare("reservationsCommitted", reservationsCommitted, engine.reservationsCommitted)
        compare("reservationsReleased", reservationsReleased, engine.reservationsReleased)
        compare("reservationsExpired", reservationsExpired, engine.reservationsExpired)
        return out
    }
}

/// A plain, single-threaded, dictionary-based model of the ledger's semantics (DESIGN §2–§5 and the
/// implementation decisions recorded in the test brief). It favours being obviously right over
/// being fast: every event recomputes its cell from scratch in 64-bit arithmetic, dedup is a set of
/// seen sequences, reservations are a dictionary of records and a dictionary of holds.
///
/// Assumption: `reservationOutcomesRememberedMaxPerShard` is never reached (forgetting by count is
/// not modelled); forgetting by age is.
final class ReferenceLedger {
    let configuration: LedgerConfiguration
    /// The shard of a SKU (dedup windows are per (source, shard)).
    let shardOf: (SKUID) -> Int
    /// The home shard of a new reservation (forgetting runs per home shard).
    let homeOf: (ReserveRequest) -> Int

    private(set) var nowMilliseconds: Int64
    private(set) var cells: [CellKey: ReferenceCell] = [:]
    private(set) var channels: [ChannelID: ChannelDefinition] = [:]
    private(set) var records: [ReservationID: ReferenceReservation] = [:]
    private(set) var holds: [HoldKey: ReferenceHold] = [:]
    private(set) var counters = ReferenceCounters()

    /// Dedup state of one (source, shard): every sequence applied, and the newest.
    private struct SeenSequences {
        var applied: Set<UInt64> = []
        var newest: UInt64? = nil
    }
    private struct DedupKey: Hashable {
        var source: UInt32
        var shard: Int
    }
    private var seen: [DedupKey: SeenSequences] = [:]

    init(configuration: LedgerConfiguration, nowMilliseconds: Int64, shardOf: @escaping (SKUID) -> Int,
         homeOf: @escaping (ReserveRequest) -> Int) {
        self.configuration = configuration
        self.nowMilliseconds = nowMilliseconds
        self.shardOf = shardOf
        self.homeOf = homeOf
    }

    // MARK: - Queries

    func cell(_ sku: SKUID, _ location: LocationID) -> ReferenceCell? { cells[CellKey(sku, location)] }

    /// Every cell of `sku`, in ascending location id order.
    func cells(of sku: SKUID) -> [(location: LocationID, cell: ReferenceCell)] {
        cells.filter { $0.key.sku == sku.rawValue }
            .sorted { $0.key.location < $1.key.location }
            .map { (LocationID($0.key.location), $0.value) }
    }

    /// DESIGN §5: floor(max(0, Σ − buffer) × cap / 100).
    static func channelATP(_ sum: Int64, _ channel: ChannelDefinition) -> Int64 {
        let remaining = sum - channel.bufferUnits > 0 ? sum - channel.bufferUnits : 0
        return remaining * Int64(channel.capPercent) / 100
    }

    /// A channel's view of a SKU: (ATP over sellable, ATP over projected, short, SKU has cells), or nil
    /// for an unknown channel.
    func channelView(_ sku: SKUID, _ id: ChannelID) -> (sellable: Int64, projected: Int64, isShort: Bool, exists: Bool)? {
        guard let channel = channels[id] else { return nil }
        var sellable: Int64 = 0
        var projected: Int64 = 0
        var short = false
        for location in channel.locations {
            if let cell = cells[CellKey(sku, location)] {
                sellable += cell.sellable
                projected += cell.projected
                short = short || cell.isShort
            }
        }
        return (Self.channelATP(sellable, channel), Self.channelATP(projected, channel), short,
                cells.keys.contains { $0.sku == sku.rawValue })
    }

    /// Cells that are short now.
    var shortCellCount: Int { cells.values.count { $0.isShort } }

    // MARK: - Events

    /// Applies a batch in order; one outcome per event.
    func apply(_ batch: EventBatch) -> [EventOutcome] {
        batch.events.indices.map { index in
            let outcome = apply(batch.events[index], batch: batch)
            if case .rejected(let reason) = outcome { counters.rejectionsByReason[Int(reason.rawValue)] += 1 }
            if case .applied = outcome { counters.eventsAppliedByKind[Int(batch.events[index].kind.rawValue)] += 1 }
            if case .duplicate = outcome { counters.duplicatesDropped += 1 }
            return outcome
        }
    }

    private func apply(_ event: StockEvent, batch: EventBatch) -> EventOutcome {
        // 1. Validation (state-free) comes before dedup: an invalid event never touches the window.
        if let reason = validate(event, correlationCount: batch.correlationIDs.count) { return .rejected(reason) }
        // 2. Dedup per (source, shard of the SKU).
        let key = DedupKey(source: event.source.rawValue, shard: shardOf(event.sku))
        var window = seen[key] ?? SeenSequences()
        if let newest = window.newest, event.sequence <= newest {
            let size = UInt64(configuration.dedupWindowSequences)
            // "too old" means sequence <= newest − window.
            if newest >= size && event.sequence <= newest - size { return .rejected(.sequenceTooOld) }
            if window.applied.contains(event.sequence) { return .duplicate }
        }
        // 3. The effect; an event that would leave the 32-bit range changes nothing and does not
        //    consume its sequence.
        let correlation = event.correlation == 0 ? nil : batch.correlationIDs[Int(event.correlation) - 1]
        guard applyEffect(event, correlation: correlation) else { return .rejected(.bucketOverflow) }
        window.applied.insert(event.sequence)
        window.newest = max(window.newest ?? event.sequence, event.sequence)
        if window.applied.count > 4 * configuration.dedupWindowSequences {
            let newest = window.newest!
            let size = UInt64(configuration.dedupWindowSequences)
            window.applied = window.applied.filter { newest < size || $0 > newest - size }
        }
        seen[key] = window
        return .applied
    }

    /// Everything about an event that does not depend on state, in the documented order of checks
    /// (docs/SEMANTICS.md §5): flags, quantity, counted values, kind-specific fields, correlation.
    func validate(_ event: StockEvent, correlationCount: Int) -> RejectionReason? {
        let quantityMax = configuration.quantityMax
        let q = event.quantity
        let flags = event.flags
        switch event.kind {
        case .receive:
            if !flags.isSubset(of: [.intoQuarantine, .closesInbound]) { return .malformed }
        case .count:
            if !flags.isSubset(of: [.countsDamaged, .countsQuarantine]) { return .malformed }
        default:
            if !flags.isEmpty { return .malformed }
        }
        switch event.kind {
        case .adjust:
            if q == 0 { return .deltaZero }
            if q > quantityMax || q < -quantityMax { return .quantityTooLarge }
        case .count, .setSafetyStock:
            if q < 0 { return .valueNegative }
            if q > quantityMax { return .quantityTooLarge }
        default:
            if q <= 0 { return .quantityNotPositive }
            if q > quantityMax { return .quantityTooLarge }
        }
        if event.kind == .count {
            if flags.contains(.countsDamaged) && event.countDamaged < 0 { return .valueNegative }
            if flags.contains(.countsQuarantine) && event.countQuarantine < 0 { return .valueNegative }
            // "A quantity, delta or absolute value exceeded quantityMax": the counted damaged and
            // quarantine values are absolute values too.
            if flags.contains(.countsDamaged) && Int64(event.countDamaged) > quantityMax { return .quantityTooLarge }
            if flags.contains(.countsQuarantine) && Int64(event.countQuarantine) > quantityMax {
                return .quantityTooLarge
            }
        }
        switch event.kind {
        case .adjust:
            guard let bucket = Bucket(rawValue: event.bucketCode), bucket != .committed, bucket != .reserved else {
                return .bucketNotAllowed
            }
        case .writeOff:
            guard let bucket = Bucket(rawValue: event.bucketCode), [.onHand, .damaged, .quarantine].contains(bucket) else {
                return .bucketNotAllowed
            }
        case .disposition:
            if DispositionOutcome(rawValue: event.outcomeCode) == nil { return .unknownDispositionOutcome }
        case .transferOut:
            if event.toLocation == event.location { return .transferToSameLocation }
        case .ship:
            if Int(event.correlation) > correlationCount { return .invalidCorrelation }
        default:
            break
        }
        if event.kind != .ship && event.correlation != 0 { return .invalidCorrelation }
        return nil
    }

    private static let flooredBuckets: Set<Bucket> = [.damaged, .quarantine, .inbound, .returnPending, .safetyStock]

    /// Applies a valid, new event. False (and nothing changed) when a bucket would leave Int32.
    private func applyEffect(_ event: StockEvent, correlation: ReservationID?) -> Bool {
        let key = CellKey(event.sku, event.location)
        var cell = cells[key] ?? ReferenceCell()
        let q = event.quantity
        var exceptions: [(Bucket, Int64)] = []
        /// bucket −= units, stopping at 0; the rest is an exception.
        func decrementFloored(_ bucket: Bucket, _ units: Int64) {
            let taken = min(units, cell[bucket])
            cell[bucket] -= taken
            if units > taken { exceptions.append((bucket, units - taken)) }
        }
        var shippedAgainstHold: Int64 = 0
        switch event.kind {
        case .receive:
            cell.onHand += q
            if event.flags.contains(.intoQuarantine) { cell.quarantine += q }
            if event.flags.contains(.closesInbound) { decrementFloored(.inbound, q) }
        case .ship:
            cell.onHand -= q
            if let correlation, let hold = holds[HoldKey(id: correlation, shard: shardOf(event.sku))], hold.isCommitted {
                shippedAgainstHold = min(q, hold.units[key, default: 0])
                cell.committed -= shippedAgainstHold
            }
        case .transferOut:
            let destinationKey = CellKey(event.sku, event.toLocation)
            var destination = cells[destinationKey] ?? ReferenceCell()
            cell.onHand -= q
            destination.inbound += q
            guard cell.fitsInt32 && destination.fitsInt32 else { return false }
            cells[key] = cell
            cells[destinationKey] = destination
            return true
        case .adjust:
            let bucket = Bucket(rawValue: event.bucketCode)!
            if q < 0 && Self.flooredBuckets.contains(bucket) {
                decrementFloored(bucket, -q)
            } else {
                cell[bucket] += q
            }
        case .count:
            cell.onHand = q
            if event.flags.contains(.countsDamaged) { cell.damaged = Int64(event.countDamaged) }
            if event.flags.contains(.countsQuarantine) { cell.quarantine = Int64(event.countQuarantine) }
        case .returnAuthorized:
            cell.returnPending += q
        case .returnReceived:
            decrementFloored(.returnPending, q)
            cell.onHand += q
            cell.quarantine += q
        case .disposition:
            decrementFloored(.quarantine, q)
            switch DispositionOutcome(rawValue: event.outcomeCode)! {
            case .restock: break
            case .damaged: cell.damaged += q
            case .scrap, .vendor: cell.onHand -= q
            }
        case .damage:
            cell.damaged += q
        case .writeOff:
            cell.onHand -= q
            let bucket = Bucket(rawValue: event.bucketCode)!
            if bucket != .onHand { decrementFloored(bucket, q) }
        case .setSafetyStock:
            cell.safetyStock = q
        }
        guard cell.fitsInt32 else { return false }
        if shippedAgainstHold > 0, let correlation {
            counters.shipsAgainstHolds += 1
            let holdKey = HoldKey(id: correlation, shard: shardOf(event.sku))
            holds[holdKey]!.units[key]! -= shippedAgainstHold
            if holds[holdKey]!.units[key]! == 0 { holds[holdKey]!.units[key] = nil }
            if holds[holdKey]!.units.isEmpty { holds[holdKey] = nil }
        }
        cells[key] = cell
        for (bucket, units) in exceptions { counters.exceptionUnitsByBucket[Int(bucket.rawValue)] += UInt64(units) }
        return true
    }

    // MARK: - Channels

    func defineChannel(_ definition: ChannelDefinition) throws(ChannelDefinitionError) {
        if definition.locations.isEmpty { throw .noLocations }
        if definition.locations.count > 4096 { throw .tooManyLocations }
        if Set(definition.locations).count != definition.locations.count { throw .duplicateLocation }
        if definition.locations.contains(LocationID(UInt32.max)) { throw .unknownLocation }
        if definition.bufferUnits < 0 || definition.bufferUnits > configuration.quantityMax { throw .bufferOutOfRange }
        if definition.capPercent < 1 || definition.capPercent > 100 { throw .capOutOfRange }
        channels[definition.id] = definition
    }

    func removeChannel(_ id: ChannelID) throws(ChannelDefinitionError) {
        guard channels.removeValue(forKey: id) != nil else { throw .unknownChannel }
    }

    // MARK: - Clock

    /// Moves the clock and expires every held reservation whose deadline is at or before now.
    func advanceClock(byMilliseconds milliseconds: Int64) {
        nowMilliseconds += milliseconds
        let due = records.filter { $0.value.state == .held && $0.value.expiresAtMilliseconds <= nowMilliseconds }
        for id in due.keys.sorted() { expire(id) }
    }

    private func expire(_ id: ReservationID) {
        returnHeldUnits(id)
        counters.reservationsExpired += 1
        settle(id, as: .expired)
    }

    private func expireIfDue(_ id: ReservationID) {
        if let record = records[id], record.state == .held, record.expiresAtMilliseconds <= nowMilliseconds {
            expire(id)
        }
    }

    // MARK: - Reservations

    private func reply(_ record: ReferenceReservation, replayed: Bool, error: ReservationError? = nil)
        -> ReservationReply
    {
        ReservationReply(id: record.request.id, state: record.state, lines: record.lines,
                         expiresAtMilliseconds: record.state == .held ? record.expiresAtMilliseconds : 0,
                         replayed: replayed, error: error)
    }

    private static func unknown(_ id: ReservationID) -> ReservationReply {
        ReservationReply(id: id, state: .refused, lines: [], expiresAtMilliseconds: 0, replayed: false,
                         error: .unknownReservation)
    }

    func validate(_ request: ReserveRequest) -> ReservationRequestProblem? {
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

    /// reserve(id, lines, ttl, mode): a known id replays; otherwise grants out of sellable units only.
    func reserve(_ request: ReserveRequest) -> ReservationReply {
        let id = request.id
        if records[id] != nil {
            expireIfDue(id)
            return reply(records[id]!, replayed: true)
        }
        if let problem = validate(request) {
            return ReservationReply(id: id, state: .refused, lines: [], expiresAtMilliseconds: 0, replayed: false,
                                    error: .invalidRequest(problem))
        }
        var taken: [CellKey: Int64] = [:]
        var grants: [LineGrant] = []
        // Shards where this id still holds units (a forgotten, committed earlier use of the id).
        let occupied = Set(holds.keys.filter { $0.id == id }.map(\.shard))
        if !occupied.isEmpty { counters.reservesMeetingOldHolds += 1 }
        for line in request.lines {
            var grant = LineGrant(requested: line.quantity)
            let allocations = occupied.contains(shardOf(line.sku)) ? [] : allocate(line, mode: request.mode, taken: taken)
            for (key, units) in allocations where units > 0 {
                taken[key, default: 0] += units
                grant.granted += units
                grant.allocations.append(LineAllocation(location: LocationID(key.location), quantity: units))
            }
            grants.append(grant)
        }
        let complete = grants.allSatisfy { $0.granted == $0.requested }
        let total = grants.reduce(0) { $0 + $1.granted }
        var record = ReferenceReservation(
            request: request, state: .held, lines: grants, expiresAtMilliseconds: nowMilliseconds + request.ttlMilliseconds,
            settledAtMilliseconds: 0, home: homeOf(request))
        if (request.mode == .allOrNothing && !complete) || total == 0 {
            record.state = .refused
            record.lines = request.lines.map { LineGrant(requested: $0.quantity) }
            counters.reservationsRefused += 1
            records[id] = record
            settle(id, as: .refused)
        } else {
            for (key, units) in taken where units > 0 {
                cells[key]!.reserved += units
                holds[HoldKey(id: id, shard: shardOf(SKUID(key.sku))), default: ReferenceHold()].units[key] = units
            }
            record.partShards = Set(taken.keys.map { shardOf(SKUID($0.sku)) }).sorted()
            if complete { counters.reservationsGranted += 1 } else { counters.reservationsPartial += 1 }
            records[id] = record
            settle(id, as: .held)
        }
        return reply(records[id]!, replayed: false)
    }

    /// Units of `key` a new hold may take, after what this request took already.
    private func available(_ key: CellKey, _ taken: [CellKey: Int64]) -> Int64 {
        max(0, (cells[key]?.sellable ?? 0) - taken[key, default: 0])
    }

    /// The (cell, units) one line takes, in the order taken.
    private func allocate(_ line: ReservationLine, mode: ReservationMode, taken: [CellKey: Int64]) -> [(CellKey, Int64)] {
        switch line.target {
        case .location(let location):
            let key = CellKey(line.sku, location)
            let units = min(line.quantity, available(key, taken))
            if mode == .allOrNothing && units < line.quantity { return [] }
            return [(key, units)]
        case .channel(let channelID, let allowSplit):
            guard let channel = channels[channelID] else { return [] }
            var candidates: [(CellKey, Int64)] = []
            var sum: Int64 = 0
            for location in channel.locations {
                let key = CellKey(line.sku, location)
                let units = available(key, taken)
                sum += units
                if units > 0 { candidates.append((key, units)) }
            }
            let limit = min(line.quantity, Self.channelATP(sum, channel))
            if mode == .allOrNothing && limit < line.quantity { return [] }
            if limit <= 0 { return [] }
            if allowSplit {
                // Priority order, each location as far as it goes.
                var result: [(CellKey, Int64)] = []
                var remaining = limit
                for (key, units) in candidates where remaining > 0 {
                    result.append((key, min(units, remaining)))
                    remaining -= min(units, remaining)
                }
                return result
            }
            // No split: the first location (priority order) that covers the whole line; partial
            // mode falls back to the location with the most units (the first of equals).
            if let whole = candidates.first(where: { $0.1 >= limit }) { return [(whole.0, limit)] }
            if mode == .allOrNothing { return [] }
            var best = candidates.first!
            for candidate in candidates where candidate.1 > best.1 { best = candidate }
            return [(best.0, min(limit, best.1))]
        }
    }

    /// commit(id): held units become committed units, no expiry.
    func commit(_ id: ReservationID) -> ReservationReply {
        guard records[id] != nil else { return Self.unknown(id) }
        expireIfDue(id)
        let record = records[id]!
        switch record.state {
        case .committed:
            return reply(record, replayed: true)
        case .held:
            for shard in record.partShards {
                let holdKey = HoldKey(id: id, shard: shard)
                for (key, units) in holds[holdKey]!.units {
                    cells[key]!.reserved -= units
                    cells[key]!.committed += units
                }
                holds[holdKey]!.isCommitted = true
            }
            counters.reservationsCommitted += 1
            settle(id, as: .committed)
            return reply(records[id]!, replayed: false)
        case .released, .expired, .refused:
            return reply(record, replayed: false, error: .notHeld(record.state))
        }
    }

    /// release(id): a held reservation returns its reserved units, a committed one its committed
    /// units not yet shipped.
    func release(_ id: ReservationID) -> ReservationReply {
        guard records[id] != nil else { return Self.unknown(id) }
        expireIfDue(id)
        let record = records[id]!
        switch record.state {
        case .held, .committed:
            returnHeldUnits(id)
            counters.reservationsReleased += 1
            settle(id, as: .released)
            return reply(records[id]!, replayed: false)
        case .released, .expired, .refused:
            return reply(record, replayed: true)
        }
    }

    private func returnHeldUnits(_ id: ReservationID) {
        for shard in records[id]!.partShards {
            // A committed hold shipped in full is gone already.
            guard let hold = holds.removeValue(forKey: HoldKey(id: id, shard: shard)) else { continue }
            for (key, units) in hold.units {
                if hold.isCommitted { cells[key]!.committed -= units } else { cells[key]!.reserved -= units }
            }
        }
        records[id]!.partShards = []
    }

    /// A record reaches a state; settled outcomes older than the retention window are forgotten in
    /// the same home shard (records only: committed units stay with their hold).
    private func settle(_ id: ReservationID, as state: ReservationState) {
        records[id]!.state = state
        if state != .held { records[id]!.settledAtMilliseconds = nowMilliseconds }
        let home = records[id]!.home
        let retention = configuration.reservationOutcomeRetentionMilliseconds
        let forgotten = records.filter {
            $0.value.home == home && $0.value.state != .held
                && $0.value.settledAtMilliseconds + retention < nowMilliseconds
        }
        for key in forgotten.keys { records[key] = nil }
        counters.recordsForgotten += UInt64(forgotten.count)
    }
}
