import ATPClient

/// Why a flash-sale run could not start or finish. Each case says what to do next.
public enum FlashSaleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A command-line option or configuration value is out of range.
    case invalidConfiguration(option: String, value: String, reason: String)
    /// An option the harness does not know, or one without its value.
    case usage(String)
    /// Connecting or the handshake failed.
    case connectFailed(String)
    /// The token lacks a role the run needs.
    case missingRoles(String)
    /// Setting up the stock failed (events rejected, an error reply, a lost connection).
    case setupFailed(String)
    /// Reading the final stock back failed, so the oversell check could not be made.
    case readBackFailed(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let option, let value, let reason): "\(option) \(value): \(reason)"
        case .usage(let what): what
        case .connectFailed(let why): "could not connect: \(why); is atpd running on that port?"
        case .missingRoles(let what): "the token lacks the role \(what); use a token with the reserve, query and ingest roles (demo-admin)"
        case .setupFailed(let why): "setting up the stock failed: \(why)"
        case .readBackFailed(let why): "reading the final stock back failed: \(why); the oversell check was not made"
        }
    }
}
