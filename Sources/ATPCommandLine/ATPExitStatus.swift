/// The exit codes of `atp`, the contract scripts rely on (docs/CLI.md lists them).
///
/// The order of precedence when several apply: a usage problem is found before anything is sent;
/// connection and authentication problems stop the command; `partial` is only returned when the
/// server answered everything.
public enum ATPExitStatus: Int32, Sendable, CaseIterable, CustomStringConvertible {
    /// Everything asked was done.
    case ok = 0
    /// The server answered, but not everything was granted: some events were rejected, a
    /// reservation was refused or partially granted, a commit or release found nothing to act on.
    case partial = 1
    /// Bad arguments, an unreadable file or a malformed input line. Nothing was sent.
    case usage = 2
    /// Cannot connect, the connection was lost, or the server did not answer in time.
    case connection = 3
    /// The token was refused, or it lacks the role the command needs.
    case authentication = 4
    /// Any other error the server answered with (for example `notFound`, `invalidRequest`).
    case serverError = 5

    /// A short name for logs and tests.
    public var description: String {
        switch self {
        case .ok: "ok"
        case .partial: "partial"
        case .usage: "usage"
        case .connection: "connection"
        case .authentication: "authentication"
        case .serverError: "serverError"
        }
    }
}
