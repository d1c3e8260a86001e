/// One entry of the rejection log: an event that was refused, why, and when.
public struct RejectedEvent: Sendable {
    /// Position in the log; increases by one per rejection since start (for paging read-back).
    public var logSequence: UInt64
    /// When the engine refused it, in milliseconds since 1970.
    public var atMilliseconds: Int64
    /// Why.
    public var reason: RejectionReason
    /// The event as decoded (ids refer to the engine's catalog), or nil when it never became a
    /// ledger event (see `received`).
    public var event: StockEvent?
    /// The event as it arrived, names as text, when it was refused before it became a ledger event
    /// (an unknown kind, flags the kind does not take, a name that could not be interned, an invalid
    /// correlation): what a reader of the log needs to find and fix it at the source.
    public var received: ReceivedEvent?
    /// Extra context for events that never reached a shard (for example the invalid name, escaped).
    public var detail: String

    /// An entry; `received` only for events refused before they became ledger events.
    public init(logSequence: UInt64 = 0, atMilliseconds: Int64, reason: RejectionReason, event: StockEvent?,
                received: ReceivedEvent? = nil, detail: String = "") {
        self.logSequence = logSequence
        self.atMilliseconds = atMilliseconds
        self.reason = reason
        self.event = event
        self.received = received
        self.detail = detail
    }
}

/// An event exactly as a feed sent it, before names were interned: its raw codes and its names as
/// text. Names that are not valid UTF-8 are kept escaped (`escapedName(_:)`), so every field here
/// is printable and at most 255 bytes.
public struct ReceivedEvent: Sendable, Equatable {
    /// The kind's wire code (may be one the ledger does not know).
    public var kindCode: UInt8
    /// The flags byte as sent, layout bits included.
    public var flags: UInt8
    /// Bucket or outcome code.
    public var code: UInt8
    /// The source system's reason code.
    public var reasonCode: UInt16
    /// The source's sequence number.
    public var sequence: UInt64
    /// Units, delta or absolute value, as sent.
    public var quantity: Int64
    /// Event time at the source, milliseconds since 1970 (0 when unknown).
    public var eventMilliseconds: Int64
    /// The source name.
    public var source: String
    /// The SKU name.
    public var sku: String
    /// The location name.
    public var location: String
    /// The destination, when the flags announce one.
    public var toLocation: String?
    /// New damaged value, when the flags announce one.
    public var countDamaged: Int32?
    /// New quarantine value, when the flags announce one.
    public var countQuarantine: Int32?
    /// The correlation, when the flags announce one.
    public var correlation: String?

    /// An event from its fields.
    public init(kindCode: UInt8, flags: UInt8, code: UInt8, reasonCode: UInt16, sequence: UInt64, quantity: Int64,
                eventMilliseconds: Int64, source: String, sku: String, location: String, toLocation: String? = nil,
                countDamaged: Int32? = nil, countQuarantine: Int32? = nil, correlation: String? = nil) {
        self.kindCode = kindCode
        self.flags = flags
        self.code = code
        self.reasonCode = reasonCode
        self.sequence = sequence
        self.quantity = quantity
        self.eventMilliseconds = eventMilliseconds
        self.source = source
        self.sku = sku
        self.location = location
        self.toLocation = toLocation
        self.countDamaged = countDamaged
        self.countQuarantine = countQuarantine
        self.correlation = correlation
    }
}
