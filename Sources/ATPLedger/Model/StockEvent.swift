/// The kinds of stock event (DESIGN §3, final semantics in docs/SEMANTICS.md). Raw values are the
/// wire codes.
public enum StockEventKind: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    /// onHand += q (and quarantine += q when flagged); inbound −= q when it closes inbound stock.
    case receive = 1
    /// onHand −= q; with a committed reservation id on that cell, committed −= min(q, what it holds).
    case ship = 2
    /// onHand(from) −= q; inbound(to) += q.
    case transferOut = 3
    /// bucket += delta (delta may be negative, never 0).
    case adjust = 4
    /// onHand := value, optionally damaged and quarantine too.
    case count = 5
    /// returnPending += q.
    case returnAuthorized = 6
    /// returnPending −= q (floored); onHand += q; quarantine += q.
    case returnReceived = 7
    /// quarantine −= q (floored), then the outcome: restock, damaged, scrap or vendor.
    case disposition = 8
    /// damaged += q.
    case damage = 9
    /// onHand −= q; the bucket −= q too when it is damaged or quarantine.
    case writeOff = 10
    /// safetyStock := value.
    case setSafetyStock = 11

    public var description: String {
        switch self {
        case .receive: "receive"
        case .ship: "ship"
        case .transferOut: "transferOut"
        case .adjust: "adjust"
        case .count: "count"
        case .returnAuthorized: "returnAuthorized"
        case .returnReceived: "returnReceived"
        case .disposition: "disposition"
        case .damage: "damage"
        case .writeOff: "writeOff"
        case .setSafetyStock: "setSafetyStock"
        }
    }

    /// Parses the name printed by `description` (also accepts "sale" for ship).
    public init?(name: String) {
        if name == "sale" { self = .ship; return }
        guard let kind = StockEventKind.allCases.first(where: { $0.description == name }) else { return nil }
        self = kind
    }
}

/// What happens to quarantined units after inspection.
public enum DispositionOutcome: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    /// Back to sellable stock (leaves quarantine only).
    case restock = 0
    /// Moves to damaged.
    case damaged = 1
    /// Leaves the books: onHand −= q.
    case scrap = 2
    /// Sent back to the vendor: onHand −= q.
    case vendor = 3

    public var description: String {
        switch self {
        case .restock: "restock"
        case .damaged: "damaged"
        case .scrap: "scrap"
        case .vendor: "vendor"
        }
    }

    /// Parses the name printed by `description`.
    public init?(name: String) {
        guard let outcome = DispositionOutcome.allCases.first(where: { $0.description == name }) else { return nil }
        self = outcome
    }
}

/// One stock event with its names already interned: a plain 64-byte value, cheap to batch.
///
/// Field use by kind: `quantity` is q (> 0) for most kinds, the signed delta for `adjust`, and the
/// absolute value (>= 0) for `count` and `setSafetyStock`. `bucket` is read by `adjust` and
/// `writeOff`; `outcome` by `disposition`; `toLocation` by `transferOut`; `flags` by `receive` and
/// `count`; `correlation` (an index into `EventBatch.correlationIDs`, plus one; 0 = none) by `ship`.
public struct StockEvent: Sendable, Equatable {
    public var kind: StockEventKind
    public var flags: Flags
    public var bucketCode: UInt8
    public var outcomeCode: UInt8
    /// A numeric reason code from the source system (adjustments); carried through, not interpreted.
    public var reasonCode: UInt16
    public var sku: SKUID
    public var location: LocationID
    public var toLocation: LocationID
    public var source: SourceID
    public var quantity: Int64
    public var sequence: UInt64
    /// Event time at the source, in milliseconds since 1970 (0 when unknown).
    public var eventMilliseconds: Int64
    /// New damaged value for `count` when `flags` has `.countsDamaged`.
    public var countDamaged: Int32
    /// New quarantine value for `count` when `flags` has `.countsQuarantine`.
    public var countQuarantine: Int32
    /// Index + 1 of the reservation id in the batch's `correlationIDs`; 0 when there is none.
    public var correlation: UInt32

    /// Per-kind options.
    public struct Flags: OptionSet, Sendable, Equatable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// receive: the units land in quarantine too.
        public static let intoQuarantine = Flags(rawValue: 1 << 0)
        /// receive: the units close inbound stock (inbound −= q, not below 0).
        public static let closesInbound = Flags(rawValue: 1 << 1)
        /// count: `countDamaged` replaces damaged.
        public static let countsDamaged = Flags(rawValue: 1 << 2)
        /// count: `countQuarantine` replaces quarantine.
        public static let countsQuarantine = Flags(rawValue: 1 << 3)
    }

    /// A plain event; set the kind-specific fields afterwards or use the factory functions.
    public init(
        kind: StockEventKind, sku: SKUID, location: LocationID, quantity: Int64, source: SourceID,
        sequence: UInt64, eventMilliseconds: Int64 = 0
    ) {
        self.kind = kind
        self.flags = []
        self.bucketCode = 0
        self.outcomeCode = 0
        self.reasonCode = 0
        self.sku = sku
        self.location = location
        self.toLocation = location
        self.source = source
        self.quantity = quantity
        self.sequence = sequence
        self.eventMilliseconds = eventMilliseconds
        self.countDamaged = 0
        self.countQuarantine = 0
        self.correlation = 0
    }

    /// The bucket an `adjust` or `writeOff` names, if the code is valid.
    @inlinable public var bucket: Bucket? {
        get { Bucket(rawValue: bucketCode) }
        set { bucketCode = newValue?.rawValue ?? 0xFF }
    }

    /// The outcome a `disposition` names, if the code is valid.
    @inlinable public var outcome: DispositionOutcome? {
        get { DispositionOutcome(rawValue: outcomeCode) }
        set { outcomeCode = newValue?.rawValue ?? 0xFF }
    }
}

/// A batch of events plus the reservation ids their `correlation` fields point at.
/// Batches stay batches end to end: one batch in, one `EventBatchResult` out.
public struct EventBatch: Sendable {
    public var events: [StockEvent]
    public var correlationIDs: [ReservationID]
    /// Set by a producer that ran `StockEvent.statelessRejection(quantityMax:correlationCount:)` on
    /// every event of the batch with this limit and left out those it refused (the server's ingest):
    /// the shards then skip that check when their own limit is the same. Not journaled: a replay
    /// checks again.
    package var checkedForQuantityMax: Int64? = nil

    /// An empty batch with room for `capacity` events.
    public init(capacity: Int = 0) {
        events = []
        events.reserveCapacity(capacity)
        correlationIDs = []
    }

    /// A batch of events with no correlation ids.
    public init(events: [StockEvent]) {
        self.events = events
        self.correlationIDs = []
    }

    /// Appends an event; a `ship` may name the committed reservation it fulfils.
    public mutating func append(_ event: StockEvent, correlation: ReservationID? = nil) {
        var event = event
        if let correlation {
            correlationIDs.append(correlation)
            event.correlation = UInt32(correlationIDs.count)
        } else {
            event.correlation = 0
        }
        events.append(event)
    }

    /// Number of events.
    public var count: Int { events.count }

    /// The reservation id event `index` names, if any.
    public func correlationID(ofEventAt index: Int) -> ReservationID? {
        let code = events[index].correlation
        guard code > 0, Int(code) <= correlationIDs.count else { return nil }
        return correlationIDs[Int(code) - 1]
    }
}

/// What became of one event.
public enum EventOutcome: Equatable, Sendable {
    /// Applied to its cell.
    case applied
    /// Its (source, sequence) was already applied: dropped and counted.
    case duplicate
    /// Refused with a reason; nothing changed. It is in the rejection log.
    case rejected(RejectionReason)
}

/// The answer to one event batch: per-event outcomes and totals.
public struct EventBatchResult: Sendable {
    /// One outcome per event, in batch order.
    public var outcomes: [EventOutcome]
    /// Set when some of the batch could not be made durable (the journal failed): the outcomes are
    /// then unknown (some events may have been applied) and the batch must not be acknowledged;
    /// resending it after a restart is safe (dedup).
    public var durabilityFailure: DurabilityFailure? = nil
    /// Number of events applied.
    public var appliedCount: Int { outcomes.count { $0 == .applied } }
    /// Number of duplicates dropped.
    public var duplicateCount: Int { outcomes.count { $0 == .duplicate } }
    /// (index in batch, reason) of every rejected event.
    public var rejections: [(index: Int, reason: RejectionReason)] {
        outcomes.enumerated().compactMap { index, outcome in
            if case .rejected(let reason) = outcome { return (index, reason) }
            return nil
        }
    }
}

extension StockEvent {
    /// Why the event is refused whatever the ledger's state, or nil when it is well formed: what a
    /// shard checks first, and what the server checks before it interns the event's names (a
    /// refused event must not leave a new SKU or location behind: issue 14 item 7).
    /// Order (docs/SEMANTICS.md §5, the same as the wire decoder's): flags the kind does not take
    /// (15), quantity (2, 3, 4, 5), counted damaged/quarantine values (4, 3), kind-specific fields
    /// (6, 7, 8, 17), a correlation on a kind other than ship (17).
    public func statelessRejection(quantityMax: Int64, correlationCount: Int) -> RejectionReason? {
        let event = self
        switch event.kind {
        case .receive:
            if !event.flags.isSubset(of: [.intoQuarantine, .closesInbound]) { return .malformed }
        case .count:
            if !event.flags.isSubset(of: [.countsDamaged, .countsQuarantine]) { return .malformed }
        default:
            if !event.flags.isEmpty { return .malformed }
        }
        switch event.kind {
        case .receive, .ship, .transferOut, .returnAuthorized, .returnReceived, .disposition, .damage, .writeOff:
            if event.quantity <= 0 { return .quantityNotPositive }
            if event.quantity > quantityMax { return .quantityTooLarge }
        case .adjust:
            if event.quantity == 0 { return .deltaZero }
            if event.quantity > quantityMax || event.quantity < -quantityMax { return .quantityTooLarge }
        case .count, .setSafetyStock:
            if event.quantity < 0 { return .valueNegative }
            if event.quantity > quantityMax { return .quantityTooLarge }
        }
        if event.kind == .count {
            if event.flags.contains(.countsDamaged) && event.countDamaged < 0 { return .valueNegative }
            if event.flags.contains(.countsQuarantine) && event.countQuarantine < 0 { return .valueNegative }
            // Counted damaged/quarantine values are absolute values: the same limit as any quantity.
            if event.flags.contains(.countsDamaged) && Int64(event.countDamaged) > quantityMax { return .quantityTooLarge }
            if event.flags.contains(.countsQuarantine) && Int64(event.countQuarantine) > quantityMax {
                return .quantityTooLarge
            }
        }
        switch event.kind {
        case .adjust:
            guard let bucket = event.bucket, bucket.isAdjustable else { return .bucketNotAllowed }
        case .writeOff:
            guard let bucket = event.bucket, bucket == .onHand || bucket == .damaged || bucket == .quarantine else {
                return .bucketNotAllowed
            }
        case .disposition:
            if event.outcome == nil { return .unknownDispositionOutcome }
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
}
