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
    private let pending = Mutex<[ReplyWriter]>([])
    private let isScheduled = ManagedAtomic<Bool>(false)
    private let eventLoop: EventLoop
    private let counters: ServerCounters
    weak var handler: ConnectionHandler?

    init(eventLoop: EventLoop, handler: ConnectionHandler, counters: ServerCounters) {
        self.eventLoop = eventLoop
        self.handler = handler
        self.counters = counters
    }

    /// Queues a reply; any thread.
    func post(_ writer: @escaping ReplyWriter) {
        pending.withLock { $0.append(writer) }
        scheduleDelivery()
    }

    /// Queues several replies at once; any thread.
    func post(_ writers: [ReplyWriter]) {
        pending.withLock { $0.append(contentsOf: writers) }
        scheduleDelivery()
    }

    private func scheduleDelivery() {
        if !isScheduled.exchange(true, ordering: .acquiringAndReleasing) {
            eventLoop.execute { [self] in
                isScheduled.store(false, ordering: .releasing)
                let writers = pending.withLock { queued -> [ReplyWriter] in
                    defer { queued.removeAll(keepingCapacity: true) }
                    return queued
                }
                guard !writers.isEmpty else { return }
                guard let handler else {
                    counters.requestsInFlight.wrappingDecrement(by: writers.count, ordering: .relaxed)
                    return
                }
                handler.deliver(writers)
            }
        }
    }
}
