import ATPLedger
import NIOCore

/// The first request of every connection (docs/PROTOCOL.md §7.1): the versions the client speaks,
/// its token and a name for the server's logs. The magic "ATP1" is written and checked by the codec.
public struct HelloRequest: Sendable, Equatable {
    /// Lowest protocol version the client speaks.
    public var versionMin: UInt16
    /// Highest protocol version the client speaks (>= `versionMin`).
    public var versionMax: UInt16
    /// The credential, opaque to the protocol; at most `tokenBytesMax` bytes.
    public var token: [UInt8]
    /// 0..64 bytes of UTF-8 naming the client in the server's logs.
    public var clientName: String

    /// A hello for this codec's version.
    public init(versionMin: UInt16 = ProtocolVersion.current, versionMax: UInt16 = ProtocolVersion.current,
                token: [UInt8], clientName: String = "") {
        self.versionMin = versionMin
        self.versionMax = versionMax
        self.token = token
        self.clientName = clientName
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        let magic = ProtocolVersion.magic
        buffer.writeBytes([magic.0, magic.1, magic.2, magic.3])
        buffer.writeLE(versionMin)
        buffer.writeLE(versionMax)
        buffer.writeBlob(token)
        buffer.writeName(clientName)
    }

    static func decode(_ reader: inout PayloadReader, limits: ProtocolLimits) throws(MessageDecodingError) -> Self {
        try reader.require(4, "magic")
        let magic = ProtocolVersion.magic
        let bytes = (reader.readUnchecked(UInt8.self), reader.readUnchecked(UInt8.self),
                     reader.readUnchecked(UInt8.self), reader.readUnchecked(UInt8.self))
        guard bytes == magic else { throw .badMagic }
        let versionMin = try reader.read(UInt16.self, "versionMin")
        let versionMax = try reader.read(UInt16.self, "versionMax")
        let token = try reader.readBlob("token")
        if token.count > limits.tokenBytesMax { throw .tokenTooLong(bytes: token.count, tokenBytesMax: limits.tokenBytesMax) }
        let clientName = try reader.readOptionalName(.source, "clientName", subject: "client name")
        return HelloRequest(versionMin: versionMin, versionMax: versionMax, token: token, clientName: clientName)
    }
}

/// The answer to a successful `hello`: the version chosen, the roles granted, the server's clock
/// and the limits the client must respect.
public struct HelloReply: Sendable, Equatable {
    /// The protocol version of this connection.
    public var version: UInt16
    /// What the token may do.
    public var roles: Roles
    /// The server's clock, milliseconds since 1970 (to read `expiresAtMilliseconds`).
    public var serverTimeMilliseconds: Int64
    /// Largest frame the server accepts and sends.
    public var frameBytesMax: UInt32
    /// Largest count in one request.
    public var batchItemsMax: UInt32
    /// Requests the client may have in flight on this connection.
    public var inFlightRequestsMax: UInt32
    /// Where each SKU's requests are best sent (version 2 and later; nil in version 1).
    public var shardMap: ShardMap?

    /// A reply from its fields. A version-2 reply without a map is sent with a map that says
    /// "send anywhere" (`ShardMap.anywhere`).
    public init(version: UInt16, roles: Roles, serverTimeMilliseconds: Int64, frameBytesMax: UInt32,
                batchItemsMax: UInt32, inFlightRequestsMax: UInt32, shardMap: ShardMap? = nil) {
        self.version = version
        self.roles = roles
        self.serverTimeMilliseconds = serverTimeMilliseconds
        self.frameBytesMax = frameBytesMax
        self.batchItemsMax = batchItemsMax
        self.inFlightRequestsMax = inFlightRequestsMax
        self.shardMap = version >= 2 ? shardMap ?? .anywhere : nil
    }

    /// A reply that announces `limits` (values above `UInt32.max` are sent as `UInt32.max`).
    public init(version: UInt16 = ProtocolVersion.current, roles: Roles, serverTimeMilliseconds: Int64,
                limits: ProtocolLimits, shardMap: ShardMap? = nil) {
        self.init(version: version, roles: roles, serverTimeMilliseconds: serverTimeMilliseconds,
                  frameBytesMax: UInt32(clamping: limits.frameBytesMax),
                  batchItemsMax: UInt32(clamping: limits.batchItemsMax),
                  inFlightRequestsMax: UInt32(clamping: limits.inFlightRequestsMax), shardMap: shardMap)
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeLE(version)
        buffer.writeLE(roles.rawValue)
        buffer.writeLE(serverTimeMilliseconds)
        buffer.writeLE(frameBytesMax)
        buffer.writeLE(batchItemsMax)
        buffer.writeLE(inFlightRequestsMax)
        if version >= 2 { (shardMap ?? .anywhere).encode(into: &buffer) }
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Self {
        try reader.require(23, "hello reply")
        let version = reader.readUnchecked(UInt16.self)
        let roles = reader.readUnchecked(UInt8.self)
        if roles & 0xF0 != 0 { throw .reservedBitsSet(field: "roles", value: roles) }
        var reply = HelloReply(version: version, roles: Roles(rawValue: roles),
                               serverTimeMilliseconds: reader.readUnchecked(Int64.self),
                               frameBytesMax: reader.readUnchecked(UInt32.self), batchItemsMax: reader.readUnchecked(UInt32.self),
                               inFlightRequestsMax: reader.readUnchecked(UInt32.self))
        if version >= 2 { reply.shardMap = try ShardMap.decode(&reader) }
        return reply
    }
}

/// A ping: any 64-bit value the server echoes (docs/PROTOCOL.md §7.2).
public struct PingRequest: Sendable, Equatable {
    /// Echoed in the reply.
    public var nonce: UInt64
    /// A ping carrying `nonce`.
    public init(nonce: UInt64) { self.nonce = nonce }
}

/// The answer to a ping: the nonce and the server's clock.
public struct PingReply: Sendable, Equatable {
    /// The request's nonce.
    public var nonce: UInt64
    /// The server's clock, milliseconds since 1970.
    public var serverTimeMilliseconds: Int64
    /// A reply from its fields.
    public init(nonce: UInt64, serverTimeMilliseconds: Int64) {
        self.nonce = nonce
        self.serverTimeMilliseconds = serverTimeMilliseconds
    }
}
