import Atomics
import NIOCore
import Synchronization

/// Hands reply writers from shard worker threads to a connection's event loop, coalescing them:
/// however many replies arrive while the loop is busy, it is woken once and writes them all with
/// one flush (one `writev`).
///
/// Safety argument for `@unchecked Sendable`: `pending` is guarded by its mutex and `isScheduled`
/// is atomic; `handler` is read and written only on `eventLoop` (set at creation on the loop,
/// cleared when the channel goes inactive, read inside the task `post` schedules there).
final class ReplyMailbox: @unchecked Sendable {
    private let pending = Mutex<[ReplyWriter]>([])
    private let isScheduled = ManagedAtomic<Bool>(false)
    private let eventLoop: EventLoop
    weak var handler: ConnectionHandler?

    init(eventLoop: EventLoop, handler: ConnectionHandler) {
        self.eventLoop = eventLoop
        self.handler = handler
    }

    /// Queues a reply; any thread.
    func post(_ writer: @escaping ReplyWriter) {
        pending.withLock { $0.append(writer) }
        if !isScheduled.exchange(true, ordering: .acquiringAndReleasing) {
            eventLoop.execute { [self] in
                isScheduled.store(false, ordering: .releasing)
                let writers = pending.withLock { queued -> [ReplyWriter] in
                    defer { queued.removeAll(keepingCapacity: true) }
                    return queued
                }
                guard !writers.isEmpty else { return }
                handler?.deliver(writers)
            }
        }
    }
}
