import ATPLedger
import NIOCore

/// Every reply a server can send (docs/PROTOCOL.md §7), decoded from a frame or built to encode.
///
/// A reply travels on its request's opcode, so `encode` takes the opcode: reserve, commit and
/// release share `.reservation`, and `.error` goes with any opcode (or `notice`, request id 0).
public enum Reply: Sendable, Equatable {
    /// hello succeeded.
    case hello(HelloReply)
    /// The ping's nonce and the server's clock.
    case ping(PingReply)
    /// The answers to a query batch.
    case query(QueryReply)
    /// The answer to reserve, commit or release.
    case reservation(WireReservationReply)
    /// The outcome of an ingest frame.
    case ingest(IngestReply)
    /// A page of the rejection log.
    case rejectionLog(RejectionLogReply)
    /// The channel was defined (empty payload).
    case channelSet
    /// Channel definitions, by name.
    case channelShow([WireChannelDefinition])
    /// The channel was removed (empty payload).
    case channelRemove
    /// Statistics.
    case stats(StatsReply)
    /// The snapshot taken.
    case snapshotNow(SnapshotNowReply)
    /// The request failed (flags `reply | error`).
    case error(ErrorReply)

    /// Whether this reply may travel on `opcode`: its own opcode, or any opcode for `.error`.
    public func fits(_ opcode: Opcode) -> Bool {
        switch self {
        case .hello: opcode == .hello
        case .ping: opcode == .ping
        case .query: opcode == .query
        case .reservation: opcode == .reserve || opcode == .commit || opcode == .release
        case .ingest: opcode == .ingest
        case .rejectionLog: opcode == .rejectionLogRead
        case .channelSet: opcode == .channelSet
        case .channelShow: opcode == .channelShow
        case .channelRemove: opcode == .channelRemove
        case .stats: opcode == .stats
        case .snapshotNow: opcode == .snapshotNow
        case .error: true
        }
    }

    /// Decodes a reply frame. Throws `.unexpectedFlags` when the frame is not a reply, and the
    /// payload's own errors (a client treats any of them as a broken connection).
    public init(decoding frame: Frame) throws(MessageDecodingError) {
        guard frame.flags.contains(.reply) else { throw .unexpectedFlags(frame.flags) }
        let payload = frame.payload
        if frame.flags.contains(.error) {
            self = .error(try payload.decodePayload { r throws(MessageDecodingError) in
                ErrorReply(code: ErrorCode(rawValue: try r.read(UInt16.self, "code")), message: try r.readText("message"))
            })
            return
        }
        switch frame.opcode {
        case .hello: self = .hello(try payload.decodePayload { r throws(MessageDecodingError) in try HelloReply.decode(&r) })
        case .ping:
            self = .ping(try payload.decodePayload { r throws(MessageDecodingError) in
                PingReply(nonce: try r.read(UInt64.self, "nonce"), serverTimeMilliseconds: try r.read(Int64.self, "time"))
            })
        case .query: self = .query(try payload.decodePayload { r throws(MessageDecodingError) in try QueryReply.decode(&r) })
        case .reserve, .commit, .release:
            self = .reservation(try payload.decodePayload { r throws(MessageDecodingError) in try WireReservationReply.decode(&r) })
        case .ingest: self = .ingest(try payload.decodePayload { r throws(MessageDecodingError) in try IngestReply.decode(&r) })
        case .rejectionLogRead:
            self = .rejectionLog(try payload.decodePayload { r throws(MessageDecodingError) in try RejectionLogReply.decode(&r) })
        case .channelSet:
            try payload.decodePayload { _ throws(MessageDecodingError) in }
            self = .channelSet
        case .channelShow:
            self = .channelShow(try payload.decodePayload { r throws(MessageDecodingError) in
                let count = try r.readCount("channel count", minimumItemBytes: 14, limit: nil)
                var definitions: [WireChannelDefinition] = []
                definitions.reserveCapacity(count)
                for _ in 0..<count { definitions.append(try WireChannelDefinition.decode(&r, limits: nil)) }
                return definitions
            })
        case .channelRemove:
            try payload.decodePayload { _ throws(MessageDecodingError) in }
            self = .channelRemove
        case .stats: self = .stats(try payload.decodePayload { r throws(MessageDecodingError) in try StatsReply.decode(&r) })
        case .snapshotNow:
            self = .snapshotNow(try payload.decodePayload { r throws(MessageDecodingError) in try SnapshotNowReply.decode(&r) })
        default: throw .unknownOpcode(frame.opcode)
        }
    }

    /// Appends the reply as one frame on `opcode` with `requestID`. Precondition: `fits(opcode)`;
    /// names at most 255 bytes. Check `frameBytes` of the result against `frameBytesMax` (or use
    /// `encodedFrameBytes`) before sending large replies.
    public func encode(opcode: Opcode, requestID: UInt32, into buffer: inout ByteBuffer) {
        precondition(fits(opcode), "reply \(self) does not travel on \(opcode)")
        if case .query(let query) = self {
            query.encode(requestID: requestID, into: &buffer)
            return
        }
        let flags: FrameFlags = if case .error = self { .errorReply } else { .reply }
        let start = buffer.beginFrame(opcode: opcode, flags: flags, requestID: requestID)
        switch self {
        case .hello(let hello): hello.encodePayload(into: &buffer)
        case .ping(let ping):
            buffer.writeLE(ping.nonce)
            buffer.writeLE(ping.serverTimeMilliseconds)
        case .query: preconditionFailure("encoded above")
        case .reservation(let reply): reply.encodePayload(into: &buffer)
        case .ingest(let reply): reply.encodePayload(into: &buffer)
        case .rejectionLog(let page): page.encodePayload(into: &buffer)
        case .channelSet, .channelRemove: break
        case .channelShow(let definitions):
            buffer.writeLE(UInt32(definitions.count))
            for definition in definitions { definition.encode(into: &buffer) }
        case .stats(let stats): stats.encodePayload(into: &buffer)
        case .snapshotNow(let snapshot): snapshot.encodePayload(into: &buffer)
        case .error(let error):
            buffer.writeLE(error.code.rawValue)
            buffer.writeText(error.message)
        }
        buffer.endFrame(startingAt: start)
    }

    /// A notice: a server-initiated error frame (opcode `notice`, request id 0) appended to `buffer`.
    public static func encodeNotice(_ error: ErrorReply, into buffer: inout ByteBuffer) {
        Reply.error(error).encode(opcode: .notice, requestID: 0, into: &buffer)
    }
}
