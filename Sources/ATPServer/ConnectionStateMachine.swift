import ATPProtocol

/// What a connection may do next, decided from its state alone (no I/O): the `ConnectionHandler`
/// asks it about every frame and performs the action it returns. Tested on its own.
struct ConnectionStateMachine {
    enum State: Equatable {
        /// Nothing but `hello` is accepted.
        case awaitingHello
        /// Authenticated with these roles.
        case ready(Roles)
        /// Answering what is in flight, then closing; nothing new is read.
        case draining
        /// Closed or closing after an error; nothing more is processed.
        case closed
    }

    /// What to do with a frame.
    enum FrameAction: Equatable {
        /// Run the handshake.
        case handshake
        /// Execute the request (the roles permit it).
        case execute
        /// Answer with this error; close afterwards when `close` is set.
        case reject(ErrorCode, message: String, close: Bool)
        /// Drop it: the connection is going away.
        case ignore
    }

    private(set) var state: State = .awaitingHello

    /// Decides what to do with a frame carrying `opcode`.
    func action(for opcode: Opcode) -> FrameAction {
        switch state {
        case .awaitingHello:
            if opcode == .hello { return .handshake }
            return .reject(.unauthenticated, message: "send hello with a token first", close: true)
        case .ready(let roles):
            if opcode == .hello { return .reject(.invalidRequest, message: "already authenticated", close: false) }
            guard roles.permits(opcode) else {
                return .reject(.forbidden, message: "the token lacks the role \(opcode) needs", close: false)
            }
            return .execute
        case .draining:
            return .reject(.shuttingDown, message: "the server is shutting down", close: true)
        case .closed:
            return .ignore
        }
    }

    /// The handshake succeeded.
    mutating func authenticated(as roles: Roles) {
        precondition(state == .awaitingHello, "authenticated twice")
        state = .ready(roles)
    }

    /// The server is shutting down: finish what is in flight, read nothing new.
    mutating func drain() {
        if state != .closed { state = .draining }
    }

    /// An error closed the connection, or the peer went away.
    mutating func close() { state = .closed }

    /// Whether new frames may be read and processed.
    var acceptsFrames: Bool {
        switch state {
        case .awaitingHello, .ready: true
        case .draining, .closed: false
        }
    }
}
