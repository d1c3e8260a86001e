/// One of the unit counters a (location, SKU) cell holds. See docs/SEMANTICS.md.
public enum Bucket: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    /// Units physically at the location, in any condition. May go negative (records behind reality).
    case onHand = 0
    /// Part of onHand that is damaged and not sellable. Never below 0.
    case damaged = 1
    /// Part of onHand on quality hold or awaiting inspection. Never below 0.
    case quarantine = 2
    /// Units promised to orders and not yet shipped. Owned by reservations.
    case committed = 3
    /// Units held by open reservations. Owned by reservations.
    case reserved = 4
    /// Units expected and not yet here. Never below 0.
    case inbound = 5
    /// Units of authorised returns not yet received. Never below 0.
    case returnPending = 6
    /// Configured buffer that is never promised. Never below 0.
    case safetyStock = 7

    /// The name used in documents, CSV files and the wire protocol's JSON views.
    public var description: String {
        switch self {
        case .onHand: "onHand"
        case .damaged: "damaged"
        case .quarantine: "quarantine"
        case .committed: "committed"
        case .reserved: "reserved"
        case .inbound: "inbound"
        case .returnPending: "returnPending"
        case .safetyStock: "safetyStock"
        }
    }

    /// Parses the name printed by `description`.
    public init?(name: String) {
        guard let bucket = Bucket.allCases.first(where: { $0.description == name }) else { return nil }
        self = bucket
    }

    /// Whether a decrement of this bucket stops at 0 (the rest is counted as an exception).
    public var isFlooredAtZero: Bool {
        switch self {
        case .onHand, .committed, .reserved: false
        case .damaged, .quarantine, .inbound, .returnPending, .safetyStock: true
        }
    }

    /// Whether `adjust` events may change this bucket. committed and reserved belong to reservations.
    public var isAdjustable: Bool { self != .committed && self != .reserved }
}
