import ATPProtocol
import Atomics

/// Connection and frame counters of one server, updated from event loops without locks.
final class ServerCounters: Sendable {
    let connectionsOpen = ManagedAtomic<Int>(0)
    let connectionsAccepted = ManagedAtomic<UInt64>(0)
    let connectionsRefused = ManagedAtomic<UInt64>(0)
    let framesReceived = ManagedAtomic<UInt64>(0)
    let requestsAnswered = ManagedAtomic<UInt64>(0)
    let errorsSent = ManagedAtomic<UInt64>(0)
    let readPauses = ManagedAtomic<UInt64>(0)
    let inboxFullRetries = ManagedAtomic<UInt64>(0)

    /// The counters as stats entries (`server.*`).
    func entries() -> [StatEntry] {
        [
            StatEntry("server.connections.open", .signed(Int64(connectionsOpen.load(ordering: .relaxed)))),
            StatEntry("server.connections.accepted", .unsigned(connectionsAccepted.load(ordering: .relaxed))),
            StatEntry("server.connections.refused", .unsigned(connectionsRefused.load(ordering: .relaxed))),
            StatEntry("server.frames.received", .unsigned(framesReceived.load(ordering: .relaxed))),
            StatEntry("server.requests.answered", .unsigned(requestsAnswered.load(ordering: .relaxed))),
            StatEntry("server.errors.sent", .unsigned(errorsSent.load(ordering: .relaxed))),
            StatEntry("server.reads.paused", .unsigned(readPauses.load(ordering: .relaxed))),
            StatEntry("server.inbox.fullRetries", .unsigned(inboxFullRetries.load(ordering: .relaxed))),
        ]
    }
}
