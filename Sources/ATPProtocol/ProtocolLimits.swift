import ATPLedger

/// Every limit of the wire protocol, with its unit in its name and a documented default.
/// docs/PROTOCOL.md §6 says what happens at each one.
public struct ProtocolLimits: Sendable, Equatable {
    /// Largest frame, in bytes, the 4-byte length field and the header included. A larger incoming
    /// frame is refused with `frameTooLarge` as soon as its length is read, and the connection is
    /// closed; a reply that would be larger is answered with `replyTooLarge`. Default 16 MiB: a
    /// 100,000-item catalogue query with the longest names (13.1 MB) fits.
    public var frameBytesMax: Int = 16 * 1024 * 1024
    /// Largest count in one request: query items, events per ingest frame, reservation lines,
    /// channel locations. Larger: `batchTooLarge`, nothing executed, the connection stays open.
    /// Rejection-log reads are clamped to it. Default 100,000.
    public var batchItemsMax: Int = 100_000
    /// Requests one connection may have in flight (read, not yet answered). At the limit the server
    /// stops reading from the connection (TCP back-pressure) until replies drain; nothing is refused
    /// (`tooManyInFlight` is reserved and not sent). Default 1,024.
    public var inFlightRequestsMax: Int = 1024
    /// Connections a server keeps open. One more gets the notice `tooManyConnections` and is
    /// closed. Default 10,000.
    public var connectionsMax: Int = 10_000
    /// Largest token in a `hello` request, in bytes. Longer: `unauthenticated`, close. Default 1,024.
    public var tokenBytesMax: Int = 1024
    /// Largest frame a server accepts before the connection's `hello` has succeeded, in bytes. A
    /// larger one: `frameTooLarge`, close. Keeps unauthenticated connections from holding
    /// `frameBytesMax` of memory each. Default 4,096 (a `hello` with the longest token and client
    /// name is 1,109 bytes). See `FrameDecoder.forHandshake(limits:)`.
    public var handshakeFrameBytesMax: Int = 4096
    /// Connections that may be open without a successful `hello` at once. One more closes the
    /// oldest of them with the notice `tooManyConnections` (not the new one, so silent connections
    /// cannot lock clients out). Default 1,000.
    public var unauthenticatedConnectionsMax: Int = 1000
    /// How long a connection may take to complete `hello`, in milliseconds; then it gets the notice
    /// `unauthenticated` and is closed. Default 60,000: generous, since a client stalled by its own
    /// overload must not be cut off; the budget above is what keeps silent connections from
    /// locking others out.
    public var handshakeTimeoutMilliseconds: Int = 60_000
    /// How long an authenticated connection may stay idle — no byte received and no request
    /// waiting for its reply — in milliseconds; then it gets the notice `idleTimeout` and is
    /// closed. 0 (the default, as Redis's `timeout` and PgBouncer's `client_idle_timeout`): never,
    /// since a client holding a single `ATPConnection` does not reconnect (`ATPClientPool` does).
    /// Set it (an hour, say) where clients can vanish without closing (a NAT or a load balancer
    /// drops them).
    public var idleTimeoutMilliseconds: Int = 0

    /// The defaults.
    public init() {}

    /// Limits with the given values; the rest keep their defaults.
    public init(frameBytesMax: Int = 16 * 1024 * 1024, batchItemsMax: Int = 100_000, inFlightRequestsMax: Int = 1024,
                connectionsMax: Int = 10_000, tokenBytesMax: Int = 1024, handshakeFrameBytesMax: Int = 4096) {
        self.frameBytesMax = frameBytesMax
        self.batchItemsMax = batchItemsMax
        self.inFlightRequestsMax = inFlightRequestsMax
        self.connectionsMax = connectionsMax
        self.tokenBytesMax = tokenBytesMax
        self.handshakeFrameBytesMax = handshakeFrameBytesMax
    }

    /// Bytes of a `hello` frame with the longest token and client name: 10 header, 4 magic, 4
    /// versions, 2 + `tokenBytesMax` token, 1 + 64 client name.
    public var handshakeFrameBytesNeeded: Int { 85 + tokenBytesMax }

    /// Smallest `frameBytesMax` allowed: room for a `hello` with the longest token and a few names.
    public static let frameBytesMaxLowest = 4096
    /// Largest `frameBytesMax` allowed: 1 GiB (lengths are `u32`; memory per connection is the real bound).
    public static let frameBytesMaxHighest = 1 << 30

    /// Throws when a value is out of range, naming the key, the value and why.
    public func validate() throws(ConfigurationError) {
        func require(_ ok: Bool, _ key: String, _ value: Int, _ why: String) throws(ConfigurationError) {
            if !ok { throw ConfigurationError(key: key, value: "\(value)", reason: why) }
        }
        try require(frameBytesMax >= Self.frameBytesMaxLowest && frameBytesMax <= Self.frameBytesMaxHighest,
                    "frameBytesMax", frameBytesMax, "must be from 4,096 to 1,073,741,824")
        try require(batchItemsMax >= 1 && batchItemsMax <= Int(UInt32.max), "batchItemsMax", batchItemsMax,
                    "must be from 1 to 4,294,967,295")
        try require(inFlightRequestsMax >= 1 && inFlightRequestsMax <= Int(UInt32.max), "inFlightRequestsMax",
                    inFlightRequestsMax, "must be from 1 to 4,294,967,295")
        try require(connectionsMax >= 1, "connectionsMax", connectionsMax, "must be >= 1")
        try require(unauthenticatedConnectionsMax >= 1, "unauthenticatedConnectionsMax", unauthenticatedConnectionsMax,
                    "must be >= 1")
        try require(handshakeTimeoutMilliseconds >= 1, "handshakeTimeoutMilliseconds", handshakeTimeoutMilliseconds,
                    "must be >= 1")
        try require(idleTimeoutMilliseconds >= 0, "idleTimeoutMilliseconds", idleTimeoutMilliseconds,
                    "must be >= 0 (0: never)")
        try require(tokenBytesMax >= 0 && tokenBytesMax <= Int(UInt16.max), "tokenBytesMax", tokenBytesMax,
                    "must be from 0 to 65,535")
        try require(handshakeFrameBytesMax >= handshakeFrameBytesNeeded && handshakeFrameBytesMax <= frameBytesMax,
                    "handshakeFrameBytesMax", handshakeFrameBytesMax,
                    "must hold a hello with the longest token (85 + tokenBytesMax) and be at most frameBytesMax")
    }
}
