import DequeModule
import Synchronization

/// The bounded log of rejected events, readable back by position. Rejections are off the hot path,
/// so a mutex guards the log; the oldest entries are dropped first when it is full.
final class RejectionLog: Sendable {
    private struct State {
        var entries = Deque<RejectedEvent>()
        var nextSequence: UInt64 = 1
        var dropped: UInt64 = 0
        /// Rejections recorded from outside the shards (decoders), by reason code.
        var recordedByReason = [UInt64](repeating: 0, count: 32)
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    /// Appends rejections, numbering them.
    func append<S: Sequence>(_ rejections: S) where S.Element == RejectedEvent {
        state.withLock { state in
            for var rejection in rejections {
                rejection.logSequence = state.nextSequence
                state.nextSequence += 1
                state.entries.append(rejection)
                if state.entries.count > capacity {
                    state.entries.removeFirst()
                    state.dropped += 1
                }
            }
        }
    }

    /// Appends rejections made before events reached a shard, counting them by reason too.
    func record(_ rejections: [RejectedEvent]) {
        state.withLock { state in
            for rejection in rejections { state.recordedByReason[Int(rejection.reason.rawValue)] += 1 }
        }
        append(rejections)
    }

    /// Rejections recorded from outside the shards, by reason code.
    var recordedByReason: [UInt64] { state.withLock { $0.recordedByReason } }

    /// Up to `limit` entries with `logSequence > afterSequence`, oldest first.
    func read(afterSequence: UInt64, limit: Int) -> RejectionLogPage {
        state.withLock { state in
            let firstKept = state.entries.first?.logSequence ?? state.nextSequence
            // Clamp to the newest position first: a caller may pass any position (statistics()
            // passes .max - 1 to read only the header), and the offset must stay within the log.
            let startSequence = max(min(afterSequence, state.nextSequence - 1) + 1, firstKept)
            let offset = Int(startSequence - firstKept)
            var entries: [RejectedEvent] = []
            if offset < state.entries.count {
                let end = min(state.entries.count, offset + max(0, limit))
                entries = Array(state.entries[offset..<end])
            }
            return RejectionLogPage(entries: entries, oldestKeptSequence: firstKept,
                                    newestSequence: state.nextSequence - 1, droppedCount: state.dropped)
        }
    }
}

/// A page of the rejection log.
public struct RejectionLogPage: Sendable {
    /// Entries in log order.
    public var entries: [RejectedEvent]
    /// The oldest position still kept (earlier ones were dropped when the log was full).
    public var oldestKeptSequence: UInt64
    /// The newest position written so far (0 when none).
    public var newestSequence: UInt64
    /// How many entries were dropped because the log was full.
    public var droppedCount: UInt64
}
