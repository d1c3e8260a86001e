import NIOCore
import Synchronization

/// The connections that have not completed `hello` yet, in accept order, within a budget
/// (`ProtocolLimits.unauthenticatedConnectionsMax`; issue 14 item 5). Over the budget the *oldest*
/// waiting connection is closed, not the new one: connections opened and left silent can then
/// never lock legitimate clients out, whose `hello` completes within a round trip. Each is also
/// closed when its `handshakeTimeoutMilliseconds` pass (`ConnectionHandler`). Any thread.
final class PendingHandshakes: Sendable {
    private struct State {
        var nextTicket: UInt64 = 0
        var channels: [UInt64: any Channel] = [:]
    }
    private let state = Mutex(State())
    /// Connections that may wait for their `hello` at once.
    let budget: Int

    init(budget: Int) {
        precondition(budget >= 1, "room for at least one handshake")
        self.budget = budget
    }

    /// Connections waiting for their `hello` now.
    var count: Int { state.withLock { $0.channels.count } }

    /// Registers a new connection; returns its ticket and, when that puts the count over the
    /// budget, the oldest waiting connection, which the caller closes. Cost: O(1), O(budget) when
    /// over it (the oldest is found by scanning; tickets only grow).
    func admit(_ channel: any Channel) -> (ticket: UInt64, oldest: (any Channel)?) {
        state.withLock { state in
            let ticket = state.nextTicket
            state.nextTicket += 1
            state.channels[ticket] = channel
            guard state.channels.count > budget, let oldest = state.channels.keys.min() else { return (ticket, nil) }
            return (ticket, state.channels.removeValue(forKey: oldest))
        }
    }

    /// Forgets a connection (its `hello` succeeded, or it closed). Idempotent.
    func remove(_ ticket: UInt64) { state.withLock { _ = $0.channels.removeValue(forKey: ticket) } }
}

/// Tells a connection that it was the oldest waiting for its `hello` when the budget ran out.
struct HandshakeEvictedEvent: Sendable {}
