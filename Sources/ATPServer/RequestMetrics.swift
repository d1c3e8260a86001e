import ATPProtocol
import Atomics
import NIOCore

/// What a query request asked about, for its latency histogram: the kind of its items, or `mixed`
/// when they differ.
public enum QueryRequestKind: Int, CaseIterable, Sendable {
    case cell, sku, channel, mixed

    /// The Prometheus label value.
    public var label: String {
        switch self {
        case .cell: "cell"
        case .sku: "sku"
        case .channel: "channel"
        case .mixed: "mixed"
        }
    }

    /// The kind of `request`'s items. Cost: stops at the first item of another kind.
    init(_ request: QueryRequest) {
        guard request.count > 0 else {
            self = .mixed
            return
        }
        let first = request.item(at: 0).kind
        let kind: QueryRequestKind = switch first {
        case .cell: .cell
        case .sku: .sku
        case .channel: .channel
        }
        for index in 1..<request.count where request.item(at: index).kind != first {
            self = .mixed
            return
        }
        self = kind
    }
}

/// Requests per `QueryRequestKind`, without an array.
struct QueryKindCounts: Sendable {
    private var cell = 0, sku = 0, channel = 0, mixed = 0

    /// Requests of every kind.
    var total: Int { cell + sku + channel + mixed }

    subscript(kind: QueryRequestKind) -> Int {
        get {
            switch kind {
            case .cell: cell
            case .sku: sku
            case .channel: channel
            case .mixed: mixed
            }
        }
        set {
            switch kind {
            case .cell: cell = newValue
            case .sku: sku = newValue
            case .channel: channel = newValue
            case .mixed: mixed = newValue
            }
        }
    }
}

/// Per-request facts the server sees anyway, recorded on the event loops with plain relaxed loads
/// and stores (one writer per loop, no lock, no read-modify-write), summed over loops on request.
///
/// - frames sent, by opcode and outcome (0 = a reply; otherwise the error code of an error reply
///   or a notice), read back from each frame's header right after it was encoded;
/// - query requests, by kind: a latency histogram (time from the end of the read that brought the
///   request to the moment its reply is encoded) with buckets from 10 µs to 100 ms.
public final class RequestMetrics: Sendable {
    /// Upper bounds of the latency buckets, in nanoseconds (a last, unbounded bucket follows).
    public static let latencyBucketUpperBoundsNanoseconds: [UInt64] = [
        10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000,
    ]
    /// Outcome codes kept apart; larger error codes are counted under `outcomeSlots - 1`.
    public static let outcomeSlots = 32

    private let recorders: [ObjectIdentifier: LoopRequestMetrics]
    private let all: [LoopRequestMetrics]

    /// One recorder per event loop of `group`.
    init(group: EventLoopGroup) {
        var recorders: [ObjectIdentifier: LoopRequestMetrics] = [:]
        for loop in group.makeIterator() { recorders[ObjectIdentifier(loop)] = LoopRequestMetrics() }
        self.recorders = recorders
        all = Array(recorders.values)
    }

    /// The recorder of `loop` (one of the server's loops).
    func recorder(for loop: EventLoop) -> LoopRequestMetrics {
        guard let recorder = recorders[ObjectIdentifier(loop)] else {
            preconditionFailure("event loop \(loop) is not one of the server's")
        }
        return recorder
    }

    /// The counts summed over every loop. Any thread; cost O(loops × counters), no lock.
    public func snapshot() -> RequestMetricsSnapshot {
        var result = RequestMetricsSnapshot()
        for recorder in all { recorder.add(into: &result) }
        return result
    }
}

/// Summed request metrics (see `RequestMetrics`).
public struct RequestMetricsSnapshot: Sendable, Equatable {
    /// Frames sent, indexed by `opcode * RequestMetrics.outcomeSlots + outcome` (outcome 0: a
    /// reply; else the error code, capped at `outcomeSlots - 1`).
    public var framesSent = [UInt64](repeating: 0, count: 256 * RequestMetrics.outcomeSlots)
    /// Query requests per `QueryRequestKind.rawValue`, per bucket (the last one unbounded):
    /// non-cumulative counts.
    public var queryLatencyBuckets = [[UInt64]](
        repeating: [UInt64](repeating: 0, count: RequestMetrics.latencyBucketUpperBoundsNanoseconds.count + 1),
        count: QueryRequestKind.allCases.count)
    /// Sum of the query latencies per kind, in nanoseconds.
    public var queryLatencySumNanoseconds = [UInt64](repeating: 0, count: QueryRequestKind.allCases.count)

    public init() {}

    /// Frames sent with `opcode` and `outcome` (0: replies; else the error code).
    public func framesSent(opcode: UInt8, outcome: UInt16) -> UInt64 {
        framesSent[Int(opcode) * RequestMetrics.outcomeSlots + min(Int(outcome), RequestMetrics.outcomeSlots - 1)]
    }

    /// Error frames (error replies and notices) sent with `code`, over every opcode.
    public func errorFramesSent(code: UInt16) -> UInt64 {
        (0..<256).reduce(0) { $0 + framesSent(opcode: UInt8($1), outcome: code) }
    }

    /// Query requests answered of `kind`.
    public func queryCount(_ kind: QueryRequestKind) -> UInt64 { queryLatencyBuckets[kind.rawValue].reduce(0, +) }
}

/// The counters of one event loop. Safety argument for `@unchecked Sendable`: the counter cells are
/// atomics, written only by the loop's thread (a relaxed load then a relaxed store, so a concurrent
/// reader sees a recent value, never a torn one); `deliveryNanoseconds` is read and written only on
/// the loop.
final class LoopRequestMetrics: @unchecked Sendable {
    /// swift-atomics' storage of one `UInt64` (spelled through `UnsafeAtomic`: `UInt64.AtomicRepresentation`
    /// is ambiguous next to the Synchronization module's).
    private typealias AtomicCell = UnsafeAtomic<UInt64>.Storage
    private static let framesBase = 0
    private static let framesCount = 256 * RequestMetrics.outcomeSlots
    private static let bucketCount = RequestMetrics.latencyBucketUpperBoundsNanoseconds.count + 1
    private static let latencyBase = framesBase + framesCount
    private static let sumBase = latencyBase + QueryRequestKind.allCases.count * bucketCount
    private static let cellCount = sumBase + QueryRequestKind.allCases.count

    private let cells: UnsafeMutablePointer<AtomicCell>
    private let bounds = RequestMetrics.latencyBucketUpperBoundsNanoseconds
    /// The loop's time when it began writing the replies being encoded now (`deliver`), so query
    /// reply writers need no clock read of their own. Loop thread only.
    var deliveryNanoseconds: UInt64 = 0

    init() {
        cells = .allocate(capacity: Self.cellCount)
        cells.initialize(repeating: AtomicCell(0), count: Self.cellCount)
    }

    deinit { cells.deallocate() }

    @inline(__always) private func bump(_ index: Int, by amount: UInt64) {
        let cell = cells + index
        let value = AtomicCell.atomicLoad(at: cell, ordering: .relaxed)
        AtomicCell.atomicStore(value &+ amount, at: cell, ordering: .relaxed)
    }

    @inline(__always) private func load(_ index: Int) -> UInt64 {
        AtomicCell.atomicLoad(at: cells + index, ordering: .relaxed)
    }

    /// Counts the frames written into `buffer` from `start` on (whole frames, as the writers put
    /// them). Loop thread only.
    func recordFramesSent(in buffer: ByteBuffer, from start: Int) {
        var offset = start
        while let length = buffer.getInteger(at: offset, endianness: .little, as: UInt32.self),
              let opcode = buffer.getInteger(at: offset + 4, as: UInt8.self),
              let flags = buffer.getInteger(at: offset + 5, as: UInt8.self) {
            var outcome = 0
            if flags & 0x02 != 0 {
                outcome = Int(buffer.getInteger(at: offset + 10, endianness: .little, as: UInt16.self) ?? 0)
            }
            bump(Self.framesBase + Int(opcode) * RequestMetrics.outcomeSlots
                 + min(outcome, RequestMetrics.outcomeSlots - 1), by: 1)
            offset += 4 + Int(length)
        }
    }

    /// Records query requests, `kinds` of each kind, that started at `startNanoseconds` (`NIODeadline`
    /// uptime) and are answered now (`deliveryNanoseconds`): the replies of one read. Loop thread only.
    func recordQueries(_ kinds: QueryKindCounts, startNanoseconds: UInt64) {
        let elapsed = deliveryNanoseconds > startNanoseconds ? deliveryNanoseconds - startNanoseconds : 0
        var bucket = 0
        while bucket < bounds.count && elapsed > bounds[bucket] { bucket += 1 }
        for kind in QueryRequestKind.allCases where kinds[kind] > 0 {
            let count = UInt64(kinds[kind])
            bump(Self.latencyBase + kind.rawValue * Self.bucketCount + bucket, by: count)
            bump(Self.sumBase + kind.rawValue, by: elapsed &* count)
        }
    }

    func add(into snapshot: inout RequestMetricsSnapshot) {
        for i in 0..<Self.framesCount { snapshot.framesSent[i] &+= load(Self.framesBase + i) }
        for kind in QueryRequestKind.allCases {
            for bucket in 0..<Self.bucketCount {
                snapshot.queryLatencyBuckets[kind.rawValue][bucket] &+= load(
                    Self.latencyBase + kind.rawValue * Self.bucketCount + bucket)
            }
            snapshot.queryLatencySumNanoseconds[kind.rawValue] &+= load(Self.sumBase + kind.rawValue)
        }
    }
}

extension RequestMetricsSnapshot {
    /// The query latency histogram as `stats` entries, summed over kinds, so that a client such as
    /// `atp top` can compute percentiles over an interval from two readings:
    /// `server.queryLatency.count`, `server.queryLatency.sumNanoseconds`, and per bucket
    /// `server.queryLatency.le.<upper bound in µs>` (cumulative; the last is `le.inf`).
    public func statEntries() -> [StatEntry] {
        var entries: [StatEntry] = []
        var cumulative: UInt64 = 0
        let bounds = RequestMetrics.latencyBucketUpperBoundsNanoseconds
        for bucket in 0...bounds.count {
            cumulative &+= queryLatencyBuckets.reduce(0) { $0 &+ $1[bucket] }
            let name = bucket < bounds.count ? "\(bounds[bucket] / 1000)" : "inf"
            entries.append(StatEntry("server.queryLatency.le.\(name)", .unsigned(cumulative)))
        }
        entries.append(StatEntry("server.queryLatency.count", .unsigned(cumulative)))
        entries.append(StatEntry("server.queryLatency.sumNanoseconds",
                                 .unsigned(queryLatencySumNanoseconds.reduce(0, &+))))
        return entries
    }
}
