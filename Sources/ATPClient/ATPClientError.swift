import ATPProtocol

/// Why a client request failed.
public enum ATPClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered with an error (its code says whether the connection was closed).
    case server(ErrorReply)
    /// The connection closed before the answer arrived (the request may or may not have run).
    case connectionClosed
    /// The server sent something the client cannot read.
    case protocolViolation(String)
    /// The server answered with a reply of another kind than the request expects.
    case unexpectedReply(String)
    /// Connecting failed.
    case connectFailed(String)

    public var description: String {
        switch self {
        case .server(let error): "server error \(error.code): \(error.message)"
        case .connectionClosed: "the connection closed before the answer arrived"
        case .protocolViolation(let what): "protocol violation: \(what)"
        case .unexpectedReply(let what): "unexpected reply: \(what)"
        case .connectFailed(let why): "could not connect: \(why)"
        }
    }

    /// The server's error code, if the server answered with one.
    public var serverCode: ErrorCode? {
        if case .server(let error) = self { return error.code }
        return nil
    }
}
