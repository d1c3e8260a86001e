import ATPLedger
import NIOCore

/// A rejection-log read (docs/PROTOCOL.md §7.7): entries after a position, oldest first.
public struct RejectionLogReadRequest: Sendable, Equatable {
    /// Return entries with a larger position (0 for the oldest kept).
    public var afterSequence: UInt64
    /// Entries wanted; the server returns at most `min(limit, batchItemsMax)`, fewer when the reply
    /// would pass `frameBytesMax`.
    public var limit: UInt32
    /// A read from its fields.
    public init(afterSequence: UInt64 = 0, limit: UInt32) {
        self.afterSequence = afterSequence
        self.limit = limit
    }
}

/// An event in the rejection log, with the source it came from.
public struct LoggedEvent: Sendable, Equatable {
    /// The source name.
    public var source: String
    /// The event, names as strings.
    public var event: WireEvent
    /// A logged event from its parts.
    public init(source: String, event: WireEvent) {
        self.source = source
        self.event = event
    }
}

/// One entry of the rejection log in readable form (the wire form of `RejectedEvent`).
public struct WireRejectedEvent: Sendable, Equatable {
    /// The entry's position in the log.
    public var logSequence: UInt64
    /// When the engine refused it, milliseconds since 1970.
    public var atMilliseconds: Int64
    /// The `RejectionReason` code, kept raw.
    public var reasonCode: UInt16
    /// The source and event, or nil when the event could not be read back.
    public var event: LoggedEvent?
    /// Extra context (an invalid name, escaped); may be empty.
    public var detail: String

    /// An entry from its fields.
    public init(logSequence: UInt64, atMilliseconds: Int64, reasonCode: UInt16, event: LoggedEvent?, detail: String = "") {
        self.logSequence = logSequence
        self.atMilliseconds = atMilliseconds
        self.reasonCode = reasonCode
        self.event = event
        self.detail = detail
    }

    /// An entry with a known reason.
    public init(logSequence: UInt64, atMilliseconds: Int64, reason: RejectionReason, event: LoggedEvent?,
                detail: String = "") {
        self.init(logSequence: logSequence, atMilliseconds: atMilliseconds, reasonCode: reason.rawValue, event: event,
                  detail: detail)
    }

    /// The reason, or nil for a code this codec does not know.
    public var reason: RejectionReason? { RejectionReason(rawValue: reasonCode) }

    /// Bytes this entry takes in a `rejectionLog` reply (for trimming a page to one frame).
    public var encodedBytes: Int {
        var scratch = ByteBufferAllocator().buffer(capacity: 128)
        encode(into: &scratch)
        return scratch.readableBytes
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeLE(logSequence)
        buffer.writeLE(atMilliseconds)
        buffer.writeLE(reasonCode)
        buffer.writeLE(UInt8(event == nil ? 0 : 1))
        if let event {
            buffer.writeName(event.source)
            event.event.encode(into: &buffer)
        }
        buffer.writeText(detail)
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Self {
        try reader.require(19, "log entry")
        let sequence = reader.readUnchecked(UInt64.self)
        let at = reader.readUnchecked(Int64.self)
        let reason = reader.readUnchecked(UInt16.self)
        let hasEvent = reader.readUnchecked(UInt8.self)
        var event: LoggedEvent?
        switch hasEvent {
        case 0: event = nil
        case 1:
            let source = try reader.readReplyName("source")
            event = LoggedEvent(source: source, event: try WireEvent.decode(&reader))
        default: throw .unknownLayoutCode(field: "hasEvent", value: hasEvent)
        }
        return WireRejectedEvent(logSequence: sequence, atMilliseconds: at, reasonCode: reason, event: event,
                                 detail: try reader.readText("detail"))
    }
}

/// A page of the rejection log (the wire form of `RejectionLogPage`).
public struct RejectionLogReply: Sendable, Equatable {
    /// Oldest position still kept.
    public var oldestKeptSequence: UInt64
    /// Newest position written (0: none yet).
    public var newestSequence: UInt64
    /// Entries dropped because the log was full.
    public var droppedCount: UInt64
    /// Entries, positions ascending.
    public var entries: [WireRejectedEvent]

    /// A page from its fields.
    public init(oldestKeptSequence: UInt64, newestSequence: UInt64, droppedCount: UInt64, entries: [WireRejectedEvent]) {
        self.oldestKeptSequence = oldestKeptSequence
        self.newestSequence = newestSequence
        self.droppedCount = droppedCount
        self.entries = entries
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeLE(oldestKeptSequence)
        buffer.writeLE(newestSequence)
        buffer.writeLE(droppedCount)
        buffer.writeLE(UInt32(entries.count))
        for entry in entries { entry.encode(into: &buffer) }
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Self {
        try reader.require(24, "log page")
        let oldest = reader.readUnchecked(UInt64.self)
        let newest = reader.readUnchecked(UInt64.self)
        let dropped = reader.readUnchecked(UInt64.self)
        let count = try reader.readCount("entry count", minimumItemBytes: 21, limit: nil)
        var entries: [WireRejectedEvent] = []
        entries.reserveCapacity(count)
        for _ in 0..<count { entries.append(try WireRejectedEvent.decode(&reader)) }
        return RejectionLogReply(oldestKeptSequence: oldest, newestSequence: newest, droppedCount: dropped, entries: entries)
    }
}

extension WireRejectedEvent {
    /// The readable form of a ledger log entry, its ids named through `catalog`. The ids must come
    /// from that catalog. A ship's correlation id is not kept by the ledger log, so it is absent.
    public init(_ entry: RejectedEvent, catalog: Catalog) {
        var logged: LoggedEvent?
        if let event = entry.event {
            logged = LoggedEvent(source: catalog.name(of: event.source), event: WireEvent(
                event, sku: catalog.name(of: event.sku), location: catalog.name(of: event.location),
                toLocation: event.kind == .transferOut ? catalog.name(of: event.toLocation) : nil, correlation: nil))
        }
        self.init(logSequence: entry.logSequence, atMilliseconds: entry.atMilliseconds, reason: entry.reason,
                  event: logged, detail: entry.detail)
    }
}

extension RejectionLogReply {
    /// The wire form of a ledger log page, ids named through `catalog`. Cost: one string per name.
    public init(_ page: RejectionLogPage, catalog: Catalog) {
        self.init(oldestKeptSequence: page.oldestKeptSequence, newestSequence: page.newestSequence,
                  droppedCount: page.droppedCount, entries: page.entries.map { WireRejectedEvent($0, catalog: catalog) })
    }
}
