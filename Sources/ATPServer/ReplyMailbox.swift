import Atomics
import NIOCore
import Synchronization

/// Hands reply writers from shard worker threads to a connection's event loop, coalescing them:
/// however many replies arrive while the loop is busy, it is woken once and writes them all with
/// one flush (one `writev`).
///
/// Replies that arrive after the connection closed are dropped, and their requests are taken off
/// `server.requests.inFlight` here (the handler counts the others when it writes them).
///
/// Safety argument for `@unchecked Sendable`: `pending` is guarded by its mutex, `isScheduled` is
/// atomic and `counters` is `Sendable`; `handler` is read and written only on `eventLoop` (set at
/// creation on the loop, cleared when the channel goes inactive, read inside the task `post`
/// schedules there).
final class ReplyMailbox: @unchecked Sendable {
    private let pending = Mutex<(writers: [ReplyWriter], encoded: [EncodedQueryReplies], owedBytes: Int)>(([], [], 0))
    private let isScheduled = ManagedAtomic<Bool>(false)
    private let eventLoop: EventLoop
    private let counters: ServerCounters
    weak var handler: ConnectionHandler?

    init(eventLoop: EventLoop, handler: ConnectionHandler, counters: ServerCounters) {
        self.eventLoop = eventLoop
        self.handler = handler
        self.counters = counters
    }

    /// Queues a reply to a request whose `ReplyEstimate` was `owedBytes`; any thread.
    func post(_ writer: @escaping ReplyWriter, owedBytes: Int) {
        pending.withLock {
            $0.writers.append(writer)
            $0.owedBytes += owedBytes
        }
        scheduleDelivery()
    }

    /// Queues query replies already encoded; any thread.
    func post(_ encoded: EncodedQueryReplies) {
        pending.withLock { $0.encoded.append(encoded) }
        scheduleDelivery()
    }

    private func scheduleDelivery() {
        if !isScheduled.exchange(true, ordering: .acquiringAndReleasing) {
            eventLoop.execute { [self] in
                isScheduled.store(false, ordering: .releasing)
                let (writers, encoded, writersOwed) = pending.withLock {
                    queued -> ([ReplyWriter], [EncodedQueryReplies], Int) in
                    defer {
                        queued.writers.removeAll(keepingCapacity: true)
                        queued.encoded.removeAll(keepingCapacity: true)
                        queued.owedBytes = 0
                    }
                    return (queued.writers, queued.encoded, queued.owedBytes)
                }
                guard !writers.isEmpty || !encoded.isEmpty else { return }
                let owed = writersOwed + encoded.reduce(0) { $0 + $1.replyBytesOwed }
                guard let handler else {
                    let count = writers.count + encoded.reduce(0) { $0 + $1.count }
                    counters.requestsInFlight.wrappingDecrement(by: count, ordering: .relaxed)
                    // The closed connection reported these as owed; nobody writes them now.
                    counters.replyBytesOwed.wrappingDecrement(by: owed, ordering: .relaxed)
                    return
                }
                handler.deliver(writers, encoded: encoded, owedBytes: owed)
            }
        }
    }
}
