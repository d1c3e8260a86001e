/// The number an error reply carries (docs/PROTOCOL.md §5). A struct so that codes a newer server
/// adds can be decoded and shown; the ones this version defines are static members.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The wire value.
    public var rawValue: UInt16
    /// Wraps any wire value.
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The frame header or payload does not match its layout. Closes the connection.
    public static let malformedFrame = ErrorCode(rawValue: 1)
    /// The frame's length exceeds `frameBytesMax`; sent as a notice before the body is read. Closes.
    public static let frameTooLarge = ErrorCode(rawValue: 2)
    /// No protocol version in the client's range is spoken by the server. Closes.
    public static let unsupportedVersion = ErrorCode(rawValue: 3)
    /// A request before a successful `hello`, or a refused token. Closes.
    public static let unauthenticated = ErrorCode(rawValue: 4)
    /// The token lacks the role the opcode needs.
    public static let forbidden = ErrorCode(rawValue: 5)
    /// A count above `batchItemsMax`; nothing was executed.
    public static let batchTooLarge = ErrorCode(rawValue: 6)
    /// Reserved, not sent by this server: at `inFlightRequestsMax` it stops reading from the
    /// connection until replies drain instead (docs/PROTOCOL.md §2).
    public static let tooManyInFlight = ErrorCode(rawValue: 7)
    /// The opcode is not one the server knows.
    public static let unknownOpcode = ErrorCode(rawValue: 8)
    /// A name that is empty, too long for its kind or not UTF-8; nothing was executed.
    public static let invalidName = ErrorCode(rawValue: 9)
    /// A value out of range that does not change the layout (mode, ttl, quantity, channel definition).
    public static let invalidRequest = ErrorCode(rawValue: 10)
    /// The engine could not queue the request in time; nothing was executed. Retry later.
    public static let serverBusy = ErrorCode(rawValue: 11)
    /// The server is stopping. Closes.
    public static let shuttingDown = ErrorCode(rawValue: 12)
    /// A bug in the server; the request may or may not have taken effect.
    public static let internalError = ErrorCode(rawValue: 13)
    /// An operation this server does not offer (`snapshotNow` on a server without a data directory).
    public static let notImplemented = ErrorCode(rawValue: 14)
    /// The named channel does not exist.
    public static let notFound = ErrorCode(rawValue: 15)
    /// The reply would exceed `frameBytesMax`.
    public static let replyTooLarge = ErrorCode(rawValue: 16)
    /// `connectionsMax` connections are open; sent as a notice right after accept. Closes.
    public static let tooManyConnections = ErrorCode(rawValue: 17)
    /// A write could not be made durable: the server's journal failed (disk full, I/O error). Its
    /// outcome is unknown; writes are refused until the operator fixes the disk and restarts the
    /// server. Queries still work.
    public static let notDurable = ErrorCode(rawValue: 18)
    /// The connection sent nothing and waited for nothing for `idleTimeoutMilliseconds`; sent as a
    /// notice. Closes. Reconnect when there is something to send.
    public static let idleTimeout = ErrorCode(rawValue: 19)

    /// Every code defined, in numeric order.
    public static let allKnown: [ErrorCode] = (1...19).map { ErrorCode(rawValue: $0) }

    /// Whether the server closes the connection after sending this code (docs/PROTOCOL.md §5).
    /// Unknown codes do not close by themselves: the client closes only when the server does.
    public var closesConnection: Bool {
        switch self {
        case .malformedFrame, .frameTooLarge, .unsupportedVersion, .unauthenticated, .shuttingDown,
             .tooManyConnections, .idleTimeout: true
        default: false
        }
    }

    /// The name used in docs/PROTOCOL.md, or "error N" for an unknown code.
    public var description: String {
        switch self {
        case .malformedFrame: "malformedFrame"
        case .frameTooLarge: "frameTooLarge"
        case .unsupportedVersion: "unsupportedVersion"
        case .unauthenticated: "unauthenticated"
        case .forbidden: "forbidden"
        case .batchTooLarge: "batchTooLarge"
        case .tooManyInFlight: "tooManyInFlight"
        case .unknownOpcode: "unknownOpcode"
        case .invalidName: "invalidName"
        case .invalidRequest: "invalidRequest"
        case .serverBusy: "serverBusy"
        case .shuttingDown: "shuttingDown"
        case .internalError: "internalError"
        case .notImplemented: "notImplemented"
        case .notFound: "notFound"
        case .replyTooLarge: "replyTooLarge"
        case .tooManyConnections: "tooManyConnections"
        case .notDurable: "notDurable"
        case .idleTimeout: "idleTimeout"
        default: "error \(rawValue)"
        }
    }
}

/// The payload of an error reply (flags `reply | error`) or a notice: a code and a short message
/// for people.
public struct ErrorReply: Sendable, Equatable, Error, CustomStringConvertible {
    /// What went wrong, as a number a program can act on.
    public var code: ErrorCode
    /// What is wrong and what to do, for people. Encoded as `text` (at most 65,535 bytes; longer
    /// messages are cut at a character boundary).
    public var message: String

    /// An error reply with a code and a message.
    public init(code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }

    /// The reply that answers a request whose payload could not be decoded.
    public init(_ error: MessageDecodingError) {
        self.init(code: error.code, message: error.message)
    }

    /// The notice that answers a frame the decoder refused; the connection closes after it.
    public init(_ error: FrameDecodingError) {
        self.init(code: error.code, message: error.message)
    }

    /// "code name: message".
    public var description: String { "\(code): \(message)" }
}
