import ATPLedger
import NIOCore

/// One line of a reserve request with its names as strings (the wire form of `ReservationLine`).
public struct WireReservationLine: Sendable, Equatable {
    /// Where the units come from.
    public enum Target: Sendable, Equatable {
        /// One location (wire code 1).
        case location(String)
        /// A channel's locations in priority order (wire code 2 with `allowSplit`, 3 without).
        case channel(String, allowSplit: Bool)

        /// The wire code: 1 location, 2 channel with splits, 3 channel from one location.
        public var code: UInt8 {
            switch self {
            case .location: 1
            case .channel(_, let allowSplit): allowSplit ? 2 : 3
            }
        }
    }

    /// The SKU.
    public var sku: String
    /// The location or channel.
    public var target: Target
    /// Units wanted (the engine accepts 1...quantityMax).
    public var quantity: Int64

    /// A line from its fields.
    public init(sku: String, target: Target, quantity: Int64) {
        self.sku = sku
        self.target = target
        self.quantity = quantity
    }
}

/// A reserve request (docs/PROTOCOL.md §7.4), the wire form of `ReserveRequest`.
public struct WireReserveRequest: Sendable, Equatable {
    /// The idempotency key.
    public var id: ReservationID
    /// How long the hold lasts.
    public var ttlMilliseconds: Int64
    /// All-or-nothing or partial.
    public var mode: ReservationMode
    /// The lines, in order.
    public var lines: [WireReservationLine]

    /// A request from its fields.
    public init(id: ReservationID, ttlMilliseconds: Int64, mode: ReservationMode, lines: [WireReservationLine]) {
        self.id = id
        self.ttlMilliseconds = ttlMilliseconds
        self.mode = mode
        self.lines = lines
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        id.withBytes { buffer.writeName(bytes: $0) }
        buffer.writeLE(ttlMilliseconds)
        buffer.writeLE(mode.rawValue)
        buffer.writeLE(UInt32(lines.count))
        for line in lines {
            buffer.writeName(line.sku)
            buffer.writeLE(line.target.code)
            switch line.target {
            case .location(let name), .channel(let name, _): buffer.writeName(name)
            }
            buffer.writeLE(line.quantity)
        }
    }

    static func decode(_ reader: inout PayloadReader, limits: ProtocolLimits) throws(MessageDecodingError) -> Self {
        let id = try reader.readReservationID()
        let ttl = try reader.read(Int64.self, "ttlMilliseconds")
        let modeCode = try reader.read(UInt8.self, "mode")
        let count = try reader.readCount("line count", minimumItemBytes: 11, limit: limits.batchItemsMax)
        var lines: [WireReservationLine] = []
        lines.reserveCapacity(count)
        for index in 0..<count {
            let sku = try reader.readName(.sku, item: index, "sku")
            let code = try reader.read(UInt8.self, "target")
            let target: WireReservationLine.Target
            switch code {
            case 1: target = .location(try reader.readName(.location, item: index, "location"))
            case 2, 3: target = .channel(try reader.readName(.channel, item: index, "channel"), allowSplit: code == 2)
            default: throw .unknownLayoutCode(field: "reservation target", value: code)
            }
            lines.append(WireReservationLine(sku: sku, target: target, quantity: try reader.read(Int64.self, "quantity")))
        }
        // The mode does not change the layout: check it after the layout, so a malformed frame wins.
        guard let mode = ReservationMode(rawValue: modeCode) else { throw .invalidValue(field: "mode", value: Int64(modeCode)) }
        return WireReserveRequest(id: id, ttlMilliseconds: ttl, mode: mode, lines: lines)
    }
}

/// What a reservation operation came to, beyond the state (the reply's `result` byte).
public enum ReservationResult: UInt8, Sendable, Equatable, CaseIterable {
    /// The operation was carried out, or the reply repeats a known answer.
    case ok = 0
    /// commit or release of an id the engine does not know (or has forgotten).
    case unknownReservation = 1
    /// commit of a reservation that is released, expired or refused.
    case notHeld = 2
}

/// Units of one line held at one location.
public struct WireLineAllocation: Sendable, Equatable {
    /// The location's name.
    public var location: String
    /// Units held there.
    public var quantity: Int64
    /// An allocation from its fields.
    public init(location: String, quantity: Int64) {
        self.location = location
        self.quantity = quantity
    }
}

/// What one reservation line got.
public struct WireLineGrant: Sendable, Equatable {
    /// Units asked for.
    public var requested: Int64
    /// Units held: the sum of the allocations.
    public var granted: Int64
    /// Where, in the order taken.
    public var allocations: [WireLineAllocation]
    /// A grant from its fields.
    public init(requested: Int64, granted: Int64, allocations: [WireLineAllocation]) {
        self.requested = requested
        self.granted = granted
        self.allocations = allocations
    }
}

/// The reply to reserve, commit and release (docs/PROTOCOL.md §7.4), the wire form of
/// `ReservationReply` with location names as strings.
public struct WireReservationReply: Sendable, Equatable {
    /// The id asked about.
    public var id: ReservationID
    /// ok, unknownReservation or notHeld.
    public var result: ReservationResult
    /// The state after the operation.
    public var state: ReservationState
    /// True when the id was known and this repeats its answer.
    public var replayed: Bool
    /// When a held reservation expires (server clock), 0 when not held.
    public var expiresAtMilliseconds: Int64
    /// The original request's lines (empty for an unknown id).
    public var lines: [WireLineGrant]

    /// A reply from its fields.
    public init(id: ReservationID, result: ReservationResult = .ok, state: ReservationState, replayed: Bool = false,
                expiresAtMilliseconds: Int64, lines: [WireLineGrant]) {
        self.id = id
        self.result = result
        self.state = state
        self.replayed = replayed
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.lines = lines
    }

    /// The wire form of a ledger reply, or the error reply to send instead (for
    /// `ReservationError.invalidRequest`: `invalidRequest` with the problem as the message).
    /// `locationName` turns the engine's location ids into names (the catalog's `name(of:)`).
    public static func make(from reply: ReservationReply, locationName: (LocationID) -> String)
        -> Result<WireReservationReply, ErrorReply>
    {
        let result: ReservationResult
        switch reply.error {
        case nil: result = .ok
        case .unknownReservation: result = .unknownReservation
        case .notHeld: result = .notHeld
        case .invalidRequest(let problem): return .failure(ErrorReply(code: .invalidRequest, message: "\(problem)"))
        case .notDurable(let reason): return .failure(ErrorReply(code: .notDurable, message: reason))
        }
        let lines = reply.lines.map { grant in
            WireLineGrant(requested: grant.requested, granted: grant.granted, allocations: grant.allocations.map {
                WireLineAllocation(location: locationName($0.location), quantity: $0.quantity)
            })
        }
        return .success(WireReservationReply(id: reply.id, result: result, state: reply.state, replayed: reply.replayed,
                                             expiresAtMilliseconds: reply.expiresAtMilliseconds, lines: lines))
    }

    /// Appends the reply frame to reserve, commit or release for `reply`, straight from the
    /// ledger's form: the same bytes as `make(from:locationName:)` followed by
    /// `Reply.reservation(_:).encode(opcode:requestID:into:)` (or the error reply `make` returns),
    /// without building the wire form's arrays or names. Location names come from `catalog`.
    public static func encode(_ reply: ReservationReply, opcode: Opcode, requestID: UInt32, catalog: Catalog,
                              into buffer: inout ByteBuffer) {
        let result: ReservationResult
        switch reply.error {
        case nil: result = .ok
        case .unknownReservation: result = .unknownReservation
        case .notHeld: result = .notHeld
        case .invalidRequest, .notDurable:
            guard case .failure(let error) = make(from: reply, locationName: { catalog.name(of: $0) }) else {
                preconditionFailure("a reservation error without an error reply")
            }
            return Reply.error(error).encode(opcode: opcode, requestID: requestID, into: &buffer)
        }
        let start = buffer.beginFrame(opcode: opcode, flags: .reply, requestID: requestID)
        reply.id.withBytes { buffer.writeName(bytes: $0) }
        buffer.writeLE(result.rawValue)
        buffer.writeLE(reply.state.rawValue)
        buffer.writeLE(UInt8(reply.replayed ? 1 : 0))
        buffer.writeLE(reply.expiresAtMilliseconds)
        buffer.writeLE(UInt32(reply.lines.count))
        for line in reply.lines {
            buffer.writeLE(line.requested)
            buffer.writeLE(line.granted)
            buffer.writeLE(UInt32(line.allocations.count))
            for allocation in line.allocations {
                catalog.withName(.location, id: allocation.location.rawValue) { buffer.writeName(bytes: $0) }
                buffer.writeLE(allocation.quantity)
            }
        }
        buffer.endFrame(startingAt: start)
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        id.withBytes { buffer.writeName(bytes: $0) }
        buffer.writeLE(result.rawValue)
        buffer.writeLE(state.rawValue)
        buffer.writeLE(UInt8(replayed ? 1 : 0))
        buffer.writeLE(expiresAtMilliseconds)
        buffer.writeLE(UInt32(lines.count))
        for line in lines {
            buffer.writeLE(line.requested)
            buffer.writeLE(line.granted)
            buffer.writeLE(UInt32(line.allocations.count))
            for allocation in line.allocations {
                buffer.writeName(allocation.location)
                buffer.writeLE(allocation.quantity)
            }
        }
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Self {
        let id = try reader.readReservationID()
        try reader.require(11, "reservation reply")
        let resultCode = reader.readUnchecked(UInt8.self)
        guard let result = ReservationResult(rawValue: resultCode) else {
            throw .unknownLayoutCode(field: "reservation result", value: resultCode)
        }
        let stateCode = reader.readUnchecked(UInt8.self)
        guard let state = ReservationState(rawValue: stateCode) else {
            throw .unknownLayoutCode(field: "reservation state", value: stateCode)
        }
        let flags = reader.readUnchecked(UInt8.self)
        if flags & 0xFE != 0 { throw .reservedBitsSet(field: "reservation flags", value: flags) }
        let expires = reader.readUnchecked(Int64.self)
        let count = try reader.readCount("line count", minimumItemBytes: 20, limit: nil)
        var lines: [WireLineGrant] = []
        lines.reserveCapacity(count)
        for _ in 0..<count {
            try reader.require(20, "line grant")
            var line = WireLineGrant(requested: reader.readUnchecked(Int64.self), granted: reader.readUnchecked(Int64.self),
                                     allocations: [])
            let allocations = try reader.readCount("allocation count", minimumItemBytes: 9, limit: nil)
            line.allocations.reserveCapacity(allocations)
            for _ in 0..<allocations {
                let location = try reader.readReplyName("allocation location")
                line.allocations.append(WireLineAllocation(location: location, quantity: try reader.read(Int64.self, "quantity")))
            }
            lines.append(line)
        }
        return WireReservationReply(id: id, result: result, state: state, replayed: flags & 1 != 0,
                                    expiresAtMilliseconds: expires, lines: lines)
    }
}

extension PayloadReader {
    /// Reads a reservation id `name` (1..64 bytes of UTF-8, else `.invalidName`), no allocation.
    mutating func readReservationID() throws(MessageDecodingError) -> ReservationID {
        let bytes = try readNameBytes("reservation id")
        do throws(InvalidNameError) { return try ReservationID(bytes: bytes) } catch { throw .invalidName(error, item: nil) }
    }
}
