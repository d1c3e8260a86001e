import ATPLedger
import NIOCore

/// The `options` byte of a query request and its reply.
public struct QueryOptions: OptionSet, Hashable, Sendable {
    /// The wire byte.
    public var rawValue: UInt8
    /// Wraps a wire byte.
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Answers carry the cells behind them (location, buckets).
    public static let includeCells = QueryOptions(rawValue: 0x01)
    /// Bits that must be 0 in version 1.
    public static let reservedMask: UInt8 = 0xFE
}

/// What one query item asks about. Raw values are the wire codes.
public enum QueryKind: UInt8, Sendable, CaseIterable {
    /// One (SKU, location) cell: a SKU name, then a location name.
    case cell = 1
    /// A SKU across all its locations: a SKU name.
    case sku = 2
    /// A SKU as a channel sees it: a SKU name, then a channel name.
    case channel = 3
}

/// One decoded query item: its kind and where its names sit in the request's payload.
/// Resolve the names with `QueryRequest.withUnsafeNames(_:)` (no copy) or `QueryRequest.query(at:)`.
public struct QueryItem: Sendable, Hashable {
    /// What is asked.
    public var kind: QueryKind
    /// The SKU name.
    public var sku: NameRef
    /// The location (cell) or channel (channel) name; `NameRef.absent` for a SKU query.
    public var scope: NameRef

    /// An item from its parts.
    @inlinable public init(kind: QueryKind, sku: NameRef, scope: NameRef) {
        self.kind = kind
        self.sku = sku
        self.scope = scope
    }
}

/// One query with its names as strings: what a client builds a `QueryRequest` from.
public enum WireQuery: Sendable, Hashable {
    /// One (SKU, location) cell.
    case cell(sku: String, location: String)
    /// A SKU across all its locations.
    case sku(String)
    /// A SKU in a channel.
    case channel(sku: String, channel: String)

    /// The item's kind.
    public var kind: QueryKind {
        switch self {
        case .cell: .cell
        case .sku: .sku
        case .channel: .channel
        }
    }
}

/// A batch of availability queries (docs/PROTOCOL.md §7.3), kept as the payload bytes plus one
/// small `QueryItem` per query: decoding never allocates a string, and a one-item request (the
/// single-cell lookup) allocates nothing: its item is stored inline, further items in one array.
public struct QueryRequest: Sendable, Equatable {
    /// Whether answers should carry their cells.
    public let options: QueryOptions
    /// Item 0 (meaningless when `count` is 0).
    @usableFromInline let firstItem: QueryItem
    /// Items 1..<count.
    @usableFromInline let otherItems: [QueryItem]
    /// Number of queries.
    public let count: Int
    /// The payload the items point into (readable bytes are exactly the payload).
    public let payload: ByteBuffer

    /// Item `index` (0..<count). Cost: O(1), no allocation.
    @inlinable public func item(at index: Int) -> QueryItem {
        precondition(index >= 0 && index < count, "query item out of range")
        return index == 0 ? firstItem : otherItems[index - 1]
    }

    /// The items, in request order (allocates an array: for tools and tests; the server uses
    /// `item(at:)`).
    public var items: [QueryItem] { (0..<count).map { item(at: $0) } }

    /// Decodes a query payload. Every name must be valid (else `.invalidName` with the item index);
    /// an unknown kind or reserved option bit is malformed; a count above `limits.batchItemsMax` is
    /// `.batchTooLarge`. Cost: one pass; one array allocation when there is more than one item.
    public init(decodingPayload payload: ByteBuffer, limits: ProtocolLimits) throws(MessageDecodingError) {
        self = try Self.parse(payload, batchItemsMax: limits.batchItemsMax, validateNames: true)
    }

    /// Encodes `queries` into a payload. Names are not validated (the server answers `invalidName`);
    /// a name over 255 bytes or a reserved option bit is a programming error.
    public init(options: QueryOptions = [], queries: [WireQuery]) {
        precondition(options.rawValue & QueryOptions.reservedMask == 0, "reserved query option bits")
        var buffer = ByteBufferAllocator().buffer(capacity: 5 + queries.count * 40)
        buffer.writeLE(options.rawValue)
        buffer.writeLE(UInt32(queries.count))
        for query in queries {
            buffer.writeLE(query.kind.rawValue)
            switch query {
            case .cell(let sku, let location):
                buffer.writeName(sku)
                buffer.writeName(location)
            case .sku(let sku):
                buffer.writeName(sku)
            case .channel(let sku, let channel):
                buffer.writeName(sku)
                buffer.writeName(channel)
            }
        }
        // The bytes were just written by the code above: parsing cannot fail.
        self = try! Self.parse(buffer, batchItemsMax: nil, validateNames: false)
    }

    private init(options: QueryOptions, first: QueryItem, others: [QueryItem], count: Int, payload: ByteBuffer) {
        self.options = options
        firstItem = first
        otherItems = others
        self.count = count
        self.payload = payload
    }

    private static func parse(_ payload: ByteBuffer, batchItemsMax: Int?, validateNames: Bool)
        throws(MessageDecodingError) -> QueryRequest
    {
        try payload.decodePayload { (reader: inout PayloadReader) throws(MessageDecodingError) in
            let options = QueryOptions(rawValue: try reader.read(UInt8.self, "options"))
            if options.rawValue & QueryOptions.reservedMask != 0 {
                throw .reservedBitsSet(field: "query options", value: options.rawValue)
            }
            let count = try reader.readCount("query count", minimumItemBytes: 2, limit: batchItemsMax)
            var first = QueryItem(kind: .sku, sku: .absent, scope: .absent)
            var others: [QueryItem] = []
            if count > 1 { others.reserveCapacity(count - 1) }
            for index in 0..<count {
                let code = try reader.read(UInt8.self, "query kind")
                guard let kind = QueryKind(rawValue: code) else { throw .unknownLayoutCode(field: "query kind", value: code) }
                let sku = try reader.readNameRef("sku")
                let scope = kind == .sku ? NameRef.absent : try reader.readNameRef(kind == .cell ? "location" : "channel")
                if validateNames {
                    try check(sku, .sku, reader, index)
                    if kind != .sku { try check(scope, kind == .cell ? .location : .channel, reader, index) }
                }
                let item = QueryItem(kind: kind, sku: sku, scope: scope)
                if index == 0 { first = item } else { others.append(item) }
            }
            return QueryRequest(options: options, first: first, others: others, count: count, payload: payload)
        }
    }

    private static func check(_ ref: NameRef, _ kind: NameKind, _ reader: PayloadReader, _ item: Int)
        throws(MessageDecodingError)
    {
        do throws(InvalidNameError) { try validateName(NameRef.bytes(of: ref, in: reader.bytes), kind: kind) } catch {
            throw .invalidName(error, item: item)
        }
    }

    /// Calls `body` with the payload's bytes, through which every item's `NameRef` resolves without
    /// copying. Do not let the bytes escape. Cost: O(1).
    @inlinable public func withUnsafeNames<R>(_ body: (PayloadNames) throws -> R) rethrows -> R {
        try payload.withUnsafeReadableBytes { try body(PayloadNames(payload: $0)) }
    }

    /// The name `ref` points at, as a String (allocates; for tools and tests).
    public func name(_ ref: NameRef) -> String { withUnsafeNames { $0.string(ref) } }

    /// Query `index` with its names as strings (allocates).
    public func query(at index: Int) -> WireQuery {
        let item = item(at: index)
        switch item.kind {
        case .cell: return .cell(sku: name(item.sku), location: name(item.scope))
        case .sku: return .sku(name(item.sku))
        case .channel: return .channel(sku: name(item.sku), channel: name(item.scope))
        }
    }

    /// Every query with names as strings (allocates).
    public var queries: [WireQuery] { (0..<count).map { query(at: $0) } }

    /// Two requests are equal when their payload bytes are.
    public static func == (a: QueryRequest, b: QueryRequest) -> Bool { a.payload == b.payload }
}
