import ATPLedger
import NIOCore

/// Every request a client can send (docs/PROTOCOL.md §7), decoded from a frame or built to encode.
///
/// Server: `Request(decoding: frame, limits:)`; on a thrown `MessageDecodingError` answer with
/// `Reply.error(ErrorReply(error))` on the frame's opcode and request id, and close when
/// `error.closesConnection`. Client: `request.encode(requestID:into:)`.
public enum Request: Sendable, Equatable {
    /// The handshake.
    case hello(HelloRequest)
    /// Liveness and clock check.
    case ping(PingRequest)
    /// A batch of availability queries.
    case query(QueryRequest)
    /// Hold units.
    case reserve(WireReserveRequest)
    /// Turn held units into committed units.
    case commit(ReservationID)
    /// Return held or committed units.
    case release(ReservationID)
    /// A batch of stock events from one source.
    case ingest(IngestRequest)
    /// Read the rejection log.
    case rejectionLogRead(RejectionLogReadRequest)
    /// Define or replace a channel.
    case channelSet(WireChannelDefinition)
    /// Show one channel, or every channel when nil.
    case channelShow(channel: String?)
    /// Remove a channel.
    case channelRemove(channel: String)
    /// Statistics whose name starts with `prefix` ("" for all).
    case stats(prefix: String)
    /// Take a snapshot of the ledger now (empty payload).
    case snapshotNow

    /// The request's opcode.
    public var opcode: Opcode {
        switch self {
        case .hello: .hello
        case .ping: .ping
        case .query: .query
        case .reserve: .reserve
        case .commit: .commit
        case .release: .release
        case .ingest: .ingest
        case .rejectionLogRead: .rejectionLogRead
        case .channelSet: .channelSet
        case .channelShow: .channelShow
        case .channelRemove: .channelRemove
        case .stats: .stats
        case .snapshotNow: .snapshotNow
        }
    }

    /// Decodes a request frame. Throws `.unexpectedFlags` when the frame is not a request,
    /// `.unknownOpcode` for opcodes without a request layout, and the payload's
    /// own errors. Batches (query, ingest) decode into offsets over `frame.payload` without copying it.
    public init(decoding frame: Frame, limits: ProtocolLimits) throws(MessageDecodingError) {
        guard frame.flags.isEmpty else { throw .unexpectedFlags(frame.flags) }
        let payload = frame.payload
        switch frame.opcode {
        case .query: self = .query(try QueryRequest(decodingPayload: payload, limits: limits))
        case .ingest: self = .ingest(try IngestRequest(decodingPayload: payload, limits: limits))
        case .hello: self = .hello(try payload.decodePayload { r throws(MessageDecodingError) in try HelloRequest.decode(&r, limits: limits) })
        case .ping: self = .ping(PingRequest(nonce: try payload.decodePayload { r throws(MessageDecodingError) in try r.read(UInt64.self, "nonce") }))
        case .reserve:
            self = .reserve(try payload.decodePayload { r throws(MessageDecodingError) in try WireReserveRequest.decode(&r, limits: limits) })
        case .commit: self = .commit(try payload.decodePayload { r throws(MessageDecodingError) in try r.readReservationID() })
        case .release: self = .release(try payload.decodePayload { r throws(MessageDecodingError) in try r.readReservationID() })
        case .rejectionLogRead:
            self = .rejectionLogRead(try payload.decodePayload { r throws(MessageDecodingError) in
                RejectionLogReadRequest(afterSequence: try r.read(UInt64.self, "afterSequence"),
                                        limit: try r.read(UInt32.self, "limit"))
            })
        case .channelSet:
            self = .channelSet(try payload.decodePayload { r throws(MessageDecodingError) in try WireChannelDefinition.decode(&r, limits: limits) })
        case .channelShow:
            let name = try payload.decodePayload { r throws(MessageDecodingError) in try r.readOptionalName(.channel, "channel", subject: "channel name") }
            self = .channelShow(channel: name.isEmpty ? nil : name)
        case .channelRemove:
            self = .channelRemove(channel: try payload.decodePayload { r throws(MessageDecodingError) in try r.readName(.channel, "channel") })
        case .stats: self = .stats(prefix: try payload.decodePayload { r throws(MessageDecodingError) in try r.readOptionalName(.sku, "prefix", subject: "stats prefix") })
        case .snapshotNow:
            try payload.decodePayload { _ throws(MessageDecodingError) in }
            self = .snapshotNow
        default: throw .unknownOpcode(frame.opcode)
        }
    }

    /// Appends the request as one frame. Cost: one pass over the fields; query and ingest requests
    /// copy their payload bytes as they are. Precondition: names at most 255 bytes.
    public func encode(requestID: UInt32, into buffer: inout ByteBuffer) {
        let start = buffer.beginFrame(opcode: opcode, flags: [], requestID: requestID)
        switch self {
        case .hello(let hello): hello.encodePayload(into: &buffer)
        case .ping(let ping): buffer.writeLE(ping.nonce)
        case .query(let query): buffer.writeImmutableBuffer(query.payload)
        case .reserve(let reserve): reserve.encodePayload(into: &buffer)
        case .commit(let id), .release(let id): id.withBytes { buffer.writeName(bytes: $0) }
        case .ingest(let ingest): buffer.writeImmutableBuffer(ingest.payload)
        case .rejectionLogRead(let read):
            buffer.writeLE(read.afterSequence)
            buffer.writeLE(read.limit)
        case .channelSet(let definition): definition.encode(into: &buffer)
        case .channelShow(let channel): buffer.writeName(channel ?? "")
        case .channelRemove(let channel): buffer.writeName(channel)
        case .stats(let prefix): buffer.writeName(prefix)
        case .snapshotNow: break
        }
        buffer.endFrame(startingAt: start)
    }
}
