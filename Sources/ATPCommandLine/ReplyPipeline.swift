import ATPClient
import ATPProtocol
import Synchronization

/// A reply that is on its way: filled by the connection's completion, awaited once.
final class PendingReply: Sendable {
    private struct State {
        var result: Result<Reply, ATPClientError>?
        var waiter: CheckedContinuation<Reply, Error>?
    }

    private let state = Mutex(State())

    /// Stores the result, or hands it to the waiter. Called once, on the event loop.
    func fulfill(_ result: Result<Reply, ATPClientError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Reply, Error>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.result = result
            return nil
        }
        waiter?.resume(with: result.mapError { $0 as Error })
    }

    /// The reply, once it has arrived. Throws `ATPClientError`. Call at most once.
    func value() async throws -> Reply {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<Reply, ATPClientError>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready.mapError { $0 as Error }) }
        }
    }
}

extension Session {
    /// Sends `request` now (requests submitted one after another leave in that order) without
    /// waiting for its reply.
    func submit(_ request: Request) -> PendingReply {
        let pending = PendingReply()
        connection.send(request) { pending.fulfill($0) }
        return pending
    }

    /// Waits for a submitted request's reply within the timeout. Throws `CommandLineError`.
    func wait(for pending: PendingReply, what: String) async throws -> Reply {
        try await call(what) { _ in try await pending.value() }
    }
}

/// Sends batches with a few in flight at once and hands each reply back in sending order.
///
/// Requests leave in the order `next` produces them (so a later batch can never overtake an
/// earlier one on the wire, and the server applies them in that order); at most `inFlightMax`
/// wait for replies. Cost: one request per batch, no copies of the batch.
enum ReplyPipeline {
    /// Requests in flight at once by default: enough to hide a round trip, few enough to keep
    /// memory and the server's per-connection queue small.
    static let inFlightDefault = 4

    /// Runs until `next` returns nil and every reply was received. `receive` is called in sending
    /// order. Throws what `next`, `receive` or the session throws; replies still in flight are
    /// abandoned then (the caller closes the session).
    static func run<Batch>(session: Session, inFlightMax: Int = inFlightDefault, what: String,
                           next: () throws -> (Batch, Request)?,
                           receive: (Batch, Reply) throws -> Void) async throws {
        precondition(inFlightMax >= 1, "at least one request must be allowed in flight")
        var inFlight: [(Batch, PendingReply)] = []
        inFlight.reserveCapacity(inFlightMax)
        while let (batch, request) = try next() {
            if inFlight.count == inFlightMax {
                let (oldest, pending) = inFlight.removeFirst()
                try receive(oldest, try await session.wait(for: pending, what: what))
            }
            inFlight.append((batch, session.submit(request)))
        }
        for (batch, pending) in inFlight {
            try receive(batch, try await session.wait(for: pending, what: what))
        }
    }
}
