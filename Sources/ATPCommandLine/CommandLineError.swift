import ATPClient
import ATPProtocol

/// A failure that ends a command: the exit status it maps to and the one-line message printed to
/// stderr (without the `atp:` prefix, which the runner adds).
public struct CommandLineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The exit status the command ends with.
    public var status: ATPExitStatus
    /// What went wrong and, where it helps, what to do. One line.
    public var message: String

    /// An error from its parts. Newlines in `message` are replaced by spaces to keep it one line.
    public init(status: ATPExitStatus, message: String) {
        self.status = status
        self.message = message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// The message.
    public var description: String { message }

    /// Bad arguments or input: exit status `usage`.
    public static func usage(_ message: String) -> CommandLineError {
        CommandLineError(status: .usage, message: message)
    }

    /// A malformed line of an input file: `file:line: message`, exit status `usage`.
    public static func input(file: String, line: Int, _ message: String) -> CommandLineError {
        CommandLineError(status: .usage, message: "\(file):\(line): \(message)")
    }

    /// The server did not answer within `milliseconds`: exit status `connection`.
    public static func timeout(_ what: String, milliseconds: Int) -> CommandLineError {
        CommandLineError(status: .connection,
                         message: "\(what) timed out after \(milliseconds) ms (raise --timeout-ms if the server is busy)")
    }

    /// The client library's error, classified. `endpoint` ("host:port") names the server in the message.
    public init(_ error: ATPClientError, endpoint: String) {
        switch error {
        case .connectFailed(let why):
            self.init(status: .connection, message: "cannot connect to \(endpoint): \(Self.shortReason(why))")
        case .connectionClosed:
            self.init(status: .connection, message: "the connection to \(endpoint) closed before the answer arrived")
        case .protocolViolation(let what):
            self.init(status: .serverError, message: "\(endpoint) broke the protocol: \(what)")
        case .unexpectedReply(let what):
            self.init(status: .serverError, message: "\(endpoint) sent an unexpected reply: \(what)")
        case .server(let reply):
            self.init(status: Self.status(for: reply.code), message: "server refused: \(reply.code): \(reply.message)")
        }
    }

    /// The exit status for a server error code: authentication for `unauthenticated` and
    /// `forbidden`, connection for codes that close or refuse the connection (`shuttingDown`,
    /// `tooManyConnections`), server error for everything else.
    public static func status(for code: ErrorCode) -> ATPExitStatus {
        switch code {
        case .unauthenticated, .forbidden: .authentication
        case .shuttingDown, .tooManyConnections, .idleTimeout: .connection
        default: .serverError
        }
    }

    /// NIO's connect errors repeat the address and wrap the errno; keep the readable part.
    private static func shortReason(_ why: String) -> String {
        if why.contains("Connection refused") || why.contains("connection refused") {
            return "connection refused (is atpd running on that port?)"
        }
        return why
    }
}
