import ATPLedger
import NIOCore

/// The `flags` byte of an event on the wire (docs/PROTOCOL.md §7.6). Bits 0..3 are the ledger's
/// `StockEvent.Flags`; bits 2..5 also say which optional fields follow, so an event's layout never
/// depends on its kind.
public struct EventFlags: OptionSet, Hashable, Sendable {
    /// The wire byte.
    public var rawValue: UInt8
    /// Wraps a wire byte.
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// receive: the units land in quarantine too.
    public static let intoQuarantine = EventFlags(rawValue: 1 << 0)
    /// receive: the units close inbound stock.
    public static let closesInbound = EventFlags(rawValue: 1 << 1)
    /// count: `countDamaged` follows.
    public static let countsDamaged = EventFlags(rawValue: 1 << 2)
    /// count: `countQuarantine` follows.
    public static let countsQuarantine = EventFlags(rawValue: 1 << 3)
    /// transferOut: `toLocation` follows.
    public static let hasToLocation = EventFlags(rawValue: 1 << 4)
    /// ship: `correlation` follows.
    public static let hasCorrelation = EventFlags(rawValue: 1 << 5)
    /// The bits that announce optional fields.
    public static let layoutBits: EventFlags = [.countsDamaged, .countsQuarantine, .hasToLocation, .hasCorrelation]
    /// Bits 6..7, reserved: an event with one set is rejected as `malformed`.
    public static let reservedMask: UInt8 = 0xC0

    /// The ledger's flags these bits carry (bits 0..3).
    @inlinable public var stockEventFlags: StockEvent.Flags { StockEvent.Flags(rawValue: rawValue & 0x0F) }
}

/// One decoded event of an ingest frame: its fixed fields and where its names sit in the payload.
/// 56 bytes, no references: an ingest batch decodes into one array of these.
///
/// Field use follows `StockEvent`: `quantity` is q (> 0), the signed delta for adjust, or the
/// absolute value for count and setSafetyStock; `code` is the bucket (adjust, writeOff) or the
/// outcome (disposition). `countDamaged`/`countQuarantine` are 0 unless their flag is set.
public struct IngestEvent: Sendable, Hashable {
    /// The source's sequence number.
    public var sequence: UInt64
    /// Units, delta or absolute value.
    public var quantity: Int64
    /// Event time at the source, milliseconds since 1970 (0 when unknown).
    public var eventMilliseconds: Int64
    /// New damaged value (count with `countsDamaged`).
    public var countDamaged: Int32
    /// New quarantine value (count with `countsQuarantine`).
    public var countQuarantine: Int32
    /// The SKU name.
    public var sku: NameRef
    /// The location name (for transferOut: where the units leave).
    public var location: NameRef
    /// The destination of a transferOut; `absent` otherwise.
    public var toLocation: NameRef
    /// The committed reservation a ship fulfils; `absent` when none.
    public var correlation: NameRef
    /// The source system's reason code, carried through.
    public var reasonCode: UInt16
    /// The event kind's wire code (may be unknown: see `kind`).
    public var kindCode: UInt8
    /// The wire flags.
    public var flags: EventFlags
    /// Bucket or outcome code.
    public var code: UInt8

    /// The kind, or nil for a code the ledger does not know.
    @inlinable public var kind: StockEventKind? { StockEventKind(rawValue: kindCode) }

    /// Why this event must be rejected before its names are even looked at, or nil: an unknown
    /// kind (`unknownEventKind`), or flags that do not fit the kind (`malformed`): a reserved bit,
    /// `hasToLocation` not set exactly for transferOut, `hasCorrelation` other than on ship, count
    /// flags other than on count, receive flags other than on receive. Cost: a few comparisons.
    @inlinable public var structuralRejection: RejectionReason? {
        guard let kind else { return .unknownEventKind }
        let bits = flags.rawValue
        if bits & EventFlags.reservedMask != 0 { return .malformed }
        if flags.contains(.hasToLocation) != (kind == .transferOut) { return .malformed }
        if flags.contains(.hasCorrelation) && kind != .ship { return .malformed }
        if !flags.isDisjoint(with: [.countsDamaged, .countsQuarantine]) && kind != .count { return .malformed }
        if !flags.isDisjoint(with: [.intoQuarantine, .closesInbound]) && kind != .receive { return .malformed }
        return nil
    }

    /// The ledger event for this wire event once its names are interned, or nil when the kind is
    /// unknown. `toLocation` is ignored unless the kind is transferOut; the correlation is left at 0
    /// (append the event with `EventBatch.append(_:correlation:)`).
    @inlinable public func stockEvent(sku: SKUID, location: LocationID, toLocation: LocationID? = nil,
                                      source: SourceID) -> StockEvent? {
        guard let kind else { return nil }
        var event = StockEvent(kind: kind, sku: sku, location: location, quantity: quantity, source: source,
                               sequence: sequence, eventMilliseconds: eventMilliseconds)
        event.flags = flags.stockEventFlags
        event.bucketCode = kind == .adjust || kind == .writeOff ? code : 0
        event.outcomeCode = kind == .disposition ? code : 0
        event.reasonCode = reasonCode
        if kind == .transferOut, let toLocation { event.toLocation = toLocation }
        event.countDamaged = countDamaged
        event.countQuarantine = countQuarantine
        return event
    }
}

/// One event with its names as strings: what a client builds an ingest request from, and how the
/// rejection log shows events. The optional fields decide the layout bits of the wire flags.
public struct WireEvent: Sendable, Equatable {
    /// The kind's wire code.
    public var kindCode: UInt8
    /// Flags other than the layout bits (those follow from the optional fields below).
    public var flags: EventFlags
    /// Bucket (adjust, writeOff) or outcome (disposition) code; 0 otherwise.
    public var code: UInt8
    /// The source system's reason code.
    public var reasonCode: UInt16
    /// The source's sequence number.
    public var sequence: UInt64
    /// Units, delta or absolute value.
    public var quantity: Int64
    /// Event time at the source, milliseconds since 1970 (0 when unknown).
    public var eventMilliseconds: Int64
    /// The SKU name.
    public var sku: String
    /// The location name.
    public var location: String
    /// The destination of a transferOut.
    public var toLocation: String?
    /// New damaged value (count).
    public var countDamaged: Int32?
    /// New quarantine value (count).
    public var countQuarantine: Int32?
    /// The reservation a ship fulfils.
    public var correlation: String?

    /// An event; kind-specific fields default to absent.
    public init(kind: StockEventKind, sku: String, location: String, quantity: Int64, sequence: UInt64,
                eventMilliseconds: Int64 = 0, flags: EventFlags = [], code: UInt8 = 0, reasonCode: UInt16 = 0,
                toLocation: String? = nil, countDamaged: Int32? = nil, countQuarantine: Int32? = nil,
                correlation: String? = nil) {
        self.init(kindCode: kind.rawValue, sku: sku, location: location, quantity: quantity, sequence: sequence,
                  eventMilliseconds: eventMilliseconds, flags: flags, code: code, reasonCode: reasonCode,
                  toLocation: toLocation, countDamaged: countDamaged, countQuarantine: countQuarantine,
                  correlation: correlation)
    }

    /// An event with a raw kind code (which the server may not know).
    public init(kindCode: UInt8, sku: String, location: String, quantity: Int64, sequence: UInt64,
                eventMilliseconds: Int64 = 0, flags: EventFlags = [], code: UInt8 = 0, reasonCode: UInt16 = 0,
                toLocation: String? = nil, countDamaged: Int32? = nil, countQuarantine: Int32? = nil,
                correlation: String? = nil) {
        self.kindCode = kindCode
        self.flags = flags.subtracting(EventFlags.layoutBits)
        self.code = code
        self.reasonCode = reasonCode
        self.sequence = sequence
        self.quantity = quantity
        self.eventMilliseconds = eventMilliseconds
        self.sku = sku
        self.location = location
        self.toLocation = toLocation
        self.countDamaged = countDamaged
        self.countQuarantine = countQuarantine
        self.correlation = correlation
    }

    /// The readable form of a ledger event, given the names of its ids (for the rejection log).
    public init(_ event: StockEvent, sku: String, location: String, toLocation: String?, correlation: String?) {
        self.init(kind: event.kind, sku: sku, location: location, quantity: event.quantity, sequence: event.sequence,
                  eventMilliseconds: event.eventMilliseconds,
                  flags: EventFlags(rawValue: event.flags.rawValue & 0x03),
                  code: event.kind == .disposition ? event.outcomeCode
                      : (event.kind == .adjust || event.kind == .writeOff ? event.bucketCode : 0),
                  reasonCode: event.reasonCode, toLocation: event.kind == .transferOut ? toLocation : nil,
                  countDamaged: event.flags.contains(.countsDamaged) ? event.countDamaged : nil,
                  countQuarantine: event.flags.contains(.countsQuarantine) ? event.countQuarantine : nil,
                  correlation: correlation)
    }

    /// An event refused before it became a ledger event, as the rejection log keeps it.
    public init(_ received: ReceivedEvent) {
        self.init(kindCode: received.kindCode, sku: received.sku, location: received.location,
                  quantity: received.quantity, sequence: received.sequence,
                  eventMilliseconds: received.eventMilliseconds, flags: EventFlags(rawValue: received.flags),
                  code: received.code, reasonCode: received.reasonCode, toLocation: received.toLocation,
                  countDamaged: received.countDamaged, countQuarantine: received.countQuarantine,
                  correlation: received.correlation)
    }

    /// The kind, or nil for an unknown code.
    public var kind: StockEventKind? { StockEventKind(rawValue: kindCode) }

    /// The flags byte as sent: `flags` plus the layout bits of the fields present.
    public var wireFlags: EventFlags {
        var bits = flags.subtracting(EventFlags.layoutBits)
        if countDamaged != nil { bits.insert(.countsDamaged) }
        if countQuarantine != nil { bits.insert(.countsQuarantine) }
        if toLocation != nil { bits.insert(.hasToLocation) }
        if correlation != nil { bits.insert(.hasCorrelation) }
        return bits
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeLE(kindCode)
        buffer.writeLE(wireFlags.rawValue)
        buffer.writeLE(code)
        buffer.writeLE(reasonCode)
        buffer.writeLE(sequence)
        buffer.writeLE(quantity)
        buffer.writeLE(eventMilliseconds)
        buffer.writeName(sku)
        buffer.writeName(location)
        if let toLocation { buffer.writeName(toLocation) }
        if let countDamaged { buffer.writeLE(countDamaged) }
        if let countQuarantine { buffer.writeLE(countQuarantine) }
        if let correlation { buffer.writeName(correlation) }
    }

    /// Decodes an event whose names must be UTF-8 of any length 0..255 (rejection log replies).
    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> WireEvent {
        let fixed = try IngestRequest.readFixed(&reader)
        let flags = EventFlags(rawValue: fixed.flags)
        let sku = try reader.readReplyName("sku")
        let location = try reader.readReplyName("location")
        let toLocation = flags.contains(.hasToLocation) ? try reader.readReplyName("toLocation") : nil
        let countDamaged = flags.contains(.countsDamaged) ? try reader.read(Int32.self, "countDamaged") : nil
        let countQuarantine = flags.contains(.countsQuarantine) ? try reader.read(Int32.self, "countQuarantine") : nil
        let correlation = flags.contains(.hasCorrelation) ? try reader.readReplyName("correlation") : nil
        return WireEvent(kindCode: fixed.kind, sku: sku, location: location, quantity: fixed.quantity,
                         sequence: fixed.sequence, eventMilliseconds: fixed.eventMilliseconds, flags: flags,
                         code: fixed.code, reasonCode: fixed.reasonCode, toLocation: toLocation,
                         countDamaged: countDamaged, countQuarantine: countQuarantine, correlation: correlation)
    }
}

/// A batch of stock events from one source (docs/PROTOCOL.md §7.6), kept as the payload bytes plus
/// one 56-byte `IngestEvent` per event. Decoding costs one pass and one array allocation, however
/// many events; names are resolved from the payload with `withUnsafeNames(_:)`, without copies.
///
/// Names inside events are not validated here: an invalid one rejects only its event, which the
/// server finds when it interns the name (`Catalog.intern` throws `InvalidNameError`, whose
/// `reason` is the rejection reason). The source name is validated: it applies to every event.
public struct IngestRequest: Sendable, Equatable {
    /// Where the source name sits in the payload.
    public let source: NameRef
    /// The events, in request order.
    public let events: [IngestEvent]
    /// The payload the events point into (readable bytes are exactly the payload).
    public let payload: ByteBuffer

    /// Smallest event on the wire: 29 fixed bytes and two empty names.
    public static let eventBytesMin = 31

    /// Decodes an ingest payload. Throws `.invalidName` for an invalid source, `.batchTooLarge` above
    /// `limits.batchItemsMax`, and malformed errors when the bytes do not follow the layout.
    public init(decodingPayload payload: ByteBuffer, limits: ProtocolLimits) throws(MessageDecodingError) {
        self = try Self.parse(payload, batchItemsMax: limits.batchItemsMax, validateSource: true)
    }

    /// Encodes `events` from `source` into a payload. Names are not validated (the server rejects
    /// events with invalid names one by one); a name over 255 bytes is a programming error.
    public init(source: String, events: [WireEvent]) {
        var buffer = ByteBufferAllocator().buffer(capacity: 5 + source.utf8.count + events.count * 64)
        buffer.writeName(source)
        buffer.writeLE(UInt32(events.count))
        for event in events { event.encode(into: &buffer) }
        // The bytes were just written by the code above: parsing cannot fail.
        self = try! Self.parse(buffer, batchItemsMax: nil, validateSource: false)
    }

    private init(source: NameRef, events: [IngestEvent], payload: ByteBuffer) {
        self.source = source
        self.events = events
        self.payload = payload
    }

    private static func parse(_ payload: ByteBuffer, batchItemsMax: Int?, validateSource: Bool)
        throws(MessageDecodingError) -> IngestRequest
    {
        try payload.decodePayload { (reader: inout PayloadReader) throws(MessageDecodingError) in
            let source = try reader.readNameRef("source")
            if validateSource {
                do throws(InvalidNameError) { try validateName(NameRef.bytes(of: source, in: reader.bytes), kind: .source) } catch {
                    throw .invalidName(error, item: nil)
                }
            }
            let count = try reader.readCount("event count", minimumItemBytes: eventBytesMin, limit: batchItemsMax)
            var events: [IngestEvent] = []
            events.reserveCapacity(count)
            for _ in 0..<count { events.append(try readEvent(&reader)) }
            return IngestRequest(source: source, events: events, payload: payload)
        }
    }

    /// The 29 fixed bytes at the head of every event.
    struct Fixed {
        var kind: UInt8, flags: UInt8, code: UInt8, reasonCode: UInt16
        var sequence: UInt64, quantity: Int64, eventMilliseconds: Int64
    }

    @inline(__always)
    static func readFixed(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Fixed {
        try reader.require(29, "event")
        return Fixed(kind: reader.readUnchecked(UInt8.self), flags: reader.readUnchecked(UInt8.self),
                     code: reader.readUnchecked(UInt8.self), reasonCode: reader.readUnchecked(UInt16.self),
                     sequence: reader.readUnchecked(UInt64.self), quantity: reader.readUnchecked(Int64.self),
                     eventMilliseconds: reader.readUnchecked(Int64.self))
    }

    @inline(__always)
    private static func readEvent(_ reader: inout PayloadReader) throws(MessageDecodingError) -> IngestEvent {
        let fixed = try readFixed(&reader)
        let flags = EventFlags(rawValue: fixed.flags)
        let sku = try reader.readNameRef("sku")
        let location = try reader.readNameRef("location")
        let toLocation = flags.contains(.hasToLocation) ? try reader.readNameRef("toLocation") : .absent
        let countDamaged = flags.contains(.countsDamaged) ? try reader.read(Int32.self, "countDamaged") : 0
        let countQuarantine = flags.contains(.countsQuarantine) ? try reader.read(Int32.self, "countQuarantine") : 0
        let correlation = flags.contains(.hasCorrelation) ? try reader.readNameRef("correlation") : .absent
        return IngestEvent(sequence: fixed.sequence, quantity: fixed.quantity, eventMilliseconds: fixed.eventMilliseconds,
                           countDamaged: countDamaged, countQuarantine: countQuarantine, sku: sku, location: location,
                           toLocation: toLocation, correlation: correlation, reasonCode: fixed.reasonCode,
                           kindCode: fixed.kind, flags: flags, code: fixed.code)
    }

    /// Number of events.
    public var count: Int { events.count }

    /// Calls `body` with the payload's bytes, through which every `NameRef` of this request resolves
    /// without copying. Do not let the bytes escape. Cost: O(1).
    @inlinable public func withUnsafeNames<R>(_ body: (PayloadNames) throws -> R) rethrows -> R {
        try payload.withUnsafeReadableBytes { try body(PayloadNames(payload: $0)) }
    }

    /// The name `ref` points at, as a String (allocates; for tools, logs and tests).
    public func name(_ ref: NameRef) -> String { withUnsafeNames { $0.string(ref) } }

    /// The source name as a String.
    public var sourceName: String { name(source) }

    /// Event `index` with its names as strings (allocates).
    public func wireEvent(at index: Int) -> WireEvent {
        let event = events[index]
        return WireEvent(kindCode: event.kindCode, sku: name(event.sku), location: name(event.location),
                         quantity: event.quantity, sequence: event.sequence, eventMilliseconds: event.eventMilliseconds,
                         flags: event.flags, code: event.code, reasonCode: event.reasonCode,
                         toLocation: event.toLocation.isPresent ? name(event.toLocation) : nil,
                         countDamaged: event.flags.contains(.countsDamaged) ? event.countDamaged : nil,
                         countQuarantine: event.flags.contains(.countsQuarantine) ? event.countQuarantine : nil,
                         correlation: event.correlation.isPresent ? name(event.correlation) : nil)
    }

    /// Every event with names as strings (allocates).
    public var wireEvents: [WireEvent] { events.indices.map { wireEvent(at: $0) } }

    /// Two requests are equal when their payload bytes are.
    public static func == (a: IngestRequest, b: IngestRequest) -> Bool { a.payload == b.payload }
}

/// One rejected event in an ingest reply: its index in the request and the reason.
public struct IngestRejection: Sendable, Equatable {
    /// The event's position in the request, from 0.
    public var index: UInt32
    /// The `RejectionReason` code (kept raw: a newer server may send reasons this codec lacks).
    public var reasonCode: UInt16
    /// A rejection from its fields.
    public init(index: UInt32, reasonCode: UInt16) {
        self.index = index
        self.reasonCode = reasonCode
    }
    /// A rejection with a known reason.
    public init(index: UInt32, reason: RejectionReason) { self.init(index: index, reasonCode: reason.rawValue) }
    /// The reason, or nil for a code this codec does not know.
    public var reason: RejectionReason? { RejectionReason(rawValue: reasonCode) }
}

/// The answer to an ingest frame: counts, and each rejection with its reason.
public struct IngestReply: Sendable, Equatable {
    /// Events applied.
    public var appliedCount: UInt32
    /// Events dropped as duplicates.
    public var duplicateCount: UInt32
    /// Rejected events, by ascending index.
    public var rejections: [IngestRejection]

    /// A reply from its fields.
    public init(appliedCount: UInt32, duplicateCount: UInt32, rejections: [IngestRejection]) {
        self.appliedCount = appliedCount
        self.duplicateCount = duplicateCount
        self.rejections = rejections
    }

    /// The reply for a ledger result whose event `i` was request event `indexMap(i)`, plus events
    /// the server rejected itself before the batch reached the engine (`earlyRejections`, with
    /// request indices). Rejections come out sorted by index. Cost: O(n) plus sorting the rejections.
    public init(_ result: EventBatchResult, indexMap: (Int) -> Int = { $0 },
                earlyRejections: [IngestRejection] = []) {
        self.init(outcomes: result.outcomes, indexMap: indexMap, earlyRejections: earlyRejections)
    }

    /// The reply for per-event outcomes (see `init(_:indexMap:earlyRejections:)`).
    public init(outcomes: some Sequence<EventOutcome>, indexMap: (Int) -> Int = { $0 },
                earlyRejections: [IngestRejection] = []) {
        var applied: UInt32 = 0
        var duplicates: UInt32 = 0
        var rejections = earlyRejections
        for (position, outcome) in outcomes.enumerated() {
            switch outcome {
            case .applied: applied += 1
            case .duplicate: duplicates += 1
            case .rejected(let reason):
                rejections.append(IngestRejection(index: UInt32(indexMap(position)), reason: reason))
            }
        }
        if !rejections.isEmpty { rejections.sort { $0.index < $1.index } }
        self.init(appliedCount: applied, duplicateCount: duplicates, rejections: rejections)
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeLE(appliedCount)
        buffer.writeLE(duplicateCount)
        buffer.writeLE(UInt32(rejections.count))
        for rejection in rejections {
            buffer.writeLE(rejection.index)
            buffer.writeLE(rejection.reasonCode)
        }
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Self {
        try reader.require(8, "ingest counts")
        let applied = reader.readUnchecked(UInt32.self)
        let duplicates = reader.readUnchecked(UInt32.self)
        let count = try reader.readCount("rejected count", minimumItemBytes: 6, limit: nil)
        var rejections: [IngestRejection] = []
        rejections.reserveCapacity(count)
        for _ in 0..<count {
            try reader.require(6, "rejection")
            rejections.append(IngestRejection(index: reader.readUnchecked(UInt32.self),
                                              reasonCode: reader.readUnchecked(UInt16.self)))
        }
        return IngestReply(appliedCount: applied, duplicateCount: duplicates, rejections: rejections)
    }
}
