import Foundation
import ATPProtocol
import Atomics

/// Connection and frame counters of one server, updated from event loops without locks.
final class ServerCounters: Sendable {
    /// Counters of a server that lets `handshakeBudget` connections wait for their `hello` at once.
    init(handshakeBudget: Int) {
        handshakes = PendingHandshakes(budget: handshakeBudget)
    }

    /// Wall-clock time the server was created, in milliseconds since 1970.
    let startMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
    let connectionsOpen = ManagedAtomic<Int>(0)
    /// Connection handlers alive: equals `connectionsOpen` once closed connections are torn down
    /// (a larger number is connections' memory kept after they closed).
    let connectionHandlersAlive = ManagedAtomic<Int>(0)
    let connectionsAccepted = ManagedAtomic<UInt64>(0)
    let connectionsRefused = ManagedAtomic<UInt64>(0)
    /// Connections closed waiting for `hello`: the oldest when the budget ran out, and timeouts.
    let handshakesEvicted = ManagedAtomic<UInt64>(0)
    let handshakesTimedOut = ManagedAtomic<UInt64>(0)
    /// Authenticated connections closed after `idleTimeoutMilliseconds` of idleness.
    let connectionsIdleClosed = ManagedAtomic<UInt64>(0)
    /// The connections waiting for their `hello` (their count is `server.connections.unauthenticated`).
    let handshakes: PendingHandshakes
    let framesReceived = ManagedAtomic<UInt64>(0)
    let requestsAnswered = ManagedAtomic<UInt64>(0)
    /// Requests executed inline, on the connection's own core (thread-per-core); part of `requestsAnswered`.
    let requestsInline = ManagedAtomic<UInt64>(0)
    let errorsSent = ManagedAtomic<UInt64>(0)
    let readPauses = ManagedAtomic<UInt64>(0)
    let inboxFullRetries = ManagedAtomic<UInt64>(0)
    /// Requests read and not yet answered, over all connections. A request whose connection went
    /// away stays counted until the engine has finished it.
    let requestsInFlight = ManagedAtomic<Int>(0)
    /// The most requests one connection has had in flight at once (at most `inFlightRequestsMax`).
    let requestsInFlightPeak = ManagedAtomic<Int>(0)
    /// Bytes of storage held for input not yet decoded into frames, over all connections.
    let inboundBytesBuffered = ManagedAtomic<Int>(0)
    /// The most storage one connection has held for undecoded input, in bytes.
    let inboundBytesBufferedPeak = ManagedAtomic<Int>(0)
    /// The most reply bytes one connection has had queued and not yet taken by the kernel, in bytes
    /// (sampled right after each flush).
    let outboundBytesBufferedPeak = ManagedAtomic<Int>(0)

    /// Reply bytes the connections owe: the `ReplyEstimate`s of requests taken and not yet answered
    /// into their channels (issue 14 item 1), over all connections.
    let replyBytesOwed = ManagedAtomic<Int>(0)
    /// The most reply bytes one connection has owed at once: at most `outboundBytesHighWaterMark`
    /// plus one request's estimate.
    let replyBytesOwedPeak = ManagedAtomic<Int>(0)
    /// Times a connection left its remaining frames for the loop's next turn, because the turn had
    /// taken its share of reply bytes or filled the connection's budget.
    let turnsYielded = ManagedAtomic<UInt64>(0)

    /// Raises `peak` to `value` when `value` is larger. Lock-free; any thread.
    static func raise(_ peak: ManagedAtomic<Int>, to value: Int) {
        var seen = peak.load(ordering: .relaxed)
        while value > seen {
            let (exchanged, original) = peak.weakCompareExchange(expected: seen, desired: value, ordering: .relaxed)
            if exchanged { return }
            seen = original
        }
    }

    /// The counters as stats entries (`server.*`).
    func entries() -> [StatEntry] {
        [
            StatEntry("server.startMilliseconds", .signed(startMilliseconds)),
            StatEntry("server.connections.open", .signed(Int64(connectionsOpen.load(ordering: .relaxed)))),
            StatEntry("server.connections.handlersAlive",
                      .signed(Int64(connectionHandlersAlive.load(ordering: .relaxed)))),
            StatEntry("server.connections.accepted", .unsigned(connectionsAccepted.load(ordering: .relaxed))),
            StatEntry("server.connections.refused", .unsigned(connectionsRefused.load(ordering: .relaxed))),
            StatEntry("server.connections.unauthenticated", .signed(Int64(handshakes.count))),
            StatEntry("server.handshakes.evicted", .unsigned(handshakesEvicted.load(ordering: .relaxed))),
            StatEntry("server.handshakes.timedOut", .unsigned(handshakesTimedOut.load(ordering: .relaxed))),
            StatEntry("server.connections.idleClosed", .unsigned(connectionsIdleClosed.load(ordering: .relaxed))),
            StatEntry("server.frames.received", .unsigned(framesReceived.load(ordering: .relaxed))),
            StatEntry("server.requests.answered", .unsigned(requestsAnswered.load(ordering: .relaxed))),
            StatEntry("server.requests.inline", .unsigned(requestsInline.load(ordering: .relaxed))),
            StatEntry("server.errors.sent", .unsigned(errorsSent.load(ordering: .relaxed))),
            StatEntry("server.reads.paused", .unsigned(readPauses.load(ordering: .relaxed))),
            StatEntry("server.inbox.fullRetries", .unsigned(inboxFullRetries.load(ordering: .relaxed))),
            StatEntry("server.requests.inFlight", .signed(Int64(requestsInFlight.load(ordering: .relaxed)))),
            StatEntry("server.requests.inFlightPeak", .signed(Int64(requestsInFlightPeak.load(ordering: .relaxed)))),
            StatEntry("server.bytes.inboundBuffered", .signed(Int64(inboundBytesBuffered.load(ordering: .relaxed)))),
            StatEntry("server.bytes.inboundBufferedPeak",
                      .signed(Int64(inboundBytesBufferedPeak.load(ordering: .relaxed)))),
            StatEntry("server.bytes.outboundBufferedPeak",
                      .signed(Int64(outboundBytesBufferedPeak.load(ordering: .relaxed)))),
            StatEntry("server.bytes.replyOwed", .signed(Int64(replyBytesOwed.load(ordering: .relaxed)))),
            StatEntry("server.bytes.replyOwedPeak", .signed(Int64(replyBytesOwedPeak.load(ordering: .relaxed)))),
            StatEntry("server.reads.turnsYielded", .unsigned(turnsYielded.load(ordering: .relaxed))),
        ]
    }
}
