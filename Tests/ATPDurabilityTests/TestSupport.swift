import ATPLedger
import Foundation
import Synchronization

/// A `WorkerInputLog` in memory: every record is durable at once, unless `failing` is set, after
/// which appends are refused and completions fail (a journal that hit a full disk).
final class MemoryInputLog: WorkerInputLog, @unchecked Sendable {
    private let records = Mutex<[RecordedInput]>([])
    let failing = Atomic<Bool>(false)

    func append(kind: UInt8, payload: UnsafeRawBufferPointer) -> WorkerInputAppendResult {
        if failing.load(ordering: .relaxed) { return .refused(DurabilityFailure(reason: "injected failure")) }
        return records.withLock { list in
            list.append(RecordedInput(lsn: UInt64(list.count + 1), kind: kind, payload: Array(payload)))
            return .appended(lsn: UInt64(list.count))
        }
    }

    func whenDurable(_ lsn: UInt64, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void) {
        completion(failing.load(ordering: .relaxed) ? DurabilityFailure(reason: "injected failure") : nil)
    }

    var lastAppendedLSN: UInt64 { records.withLock { UInt64($0.count) } }

    var all: [RecordedInput] { records.withLock { $0 } }

    /// A source for `Engine.replayInputs` over the records after `mark`.
    func source(after mark: UInt64 = 0) -> () throws -> RecordedInput? {
        var remaining = all.filter { $0.lsn > mark }[...]
        return { remaining.popFirst() }
    }
}

/// The comparable state of an engine: cells, names, reservation records, holds, dedup windows.
struct EngineState: Equatable {
    var cells: [String]
    var names: [[String]]
    var reservations: [ReservationImage]
    var holds: [String]
    var dedup: [String]
    var channels: [ChannelDefinition]

    init(_ engine: Engine) {
        engine.waitUntilIdle()
        let image = engine.captureImage { _ in 0 }
        var cells: [String] = []
        image.forEachCell { cells.append("\($0)") }
        self.cells = cells
        names = [NameKind.sku, .location, .channel, .source].map { kind in
            let list = image.names(kind)
            return (0..<list.count).map { list.name($0) }
        }
        reservations = image.reservations.sorted { $0.request.id < $1.request.id }
        holds = image.holds.map { "\($0)" }.sorted()
        dedup = image.dedupWindows.map { "\($0)" }.sorted()
        channels = image.channels.sorted { $0.id < $1.id }
    }
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "atp-durability-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A small workload driver against an engine with names.
struct Workload {
    let engine: Engine
    var sequence: UInt64 = 0

    init(engine: Engine) {
        self.engine = engine
    }

    func sku(_ n: Int) -> SKUID { try! engine.catalog.sku("SKU-\(n)") }

    /// The smallest n from `from` whose SKU-n lives on core `core` of an engine configured so
    /// (computed from the name, without interning it).
    static func skuNumber(onCore core: Int, _ configuration: LedgerConfiguration, from: Int = 0) -> Int {
        var n = from
        while true {
            let shard = configuration.placement.shardIndex(ofSKUNamed: "SKU-\(n)") ?? n & (configuration.shardCount - 1)
            if shard % configuration.workerCount == core { return n }
            n += 1
        }
    }
    func location(_ n: Int) -> LocationID { try! engine.catalog.location("LOC-\(n)") }
    var source: SourceID { try! engine.catalog.source("feed") }

    /// Receives `quantity` of SKU `sku` at location `location` (one event, next sequence).
    @discardableResult
    mutating func receive(sku: Int, location: Int, quantity: Int64) -> EventBatchResult {
        sequence += 1
        return resend(sku: sku, location: location, quantity: quantity, sequence: sequence)
    }

    /// The same event again, with a sequence given (a feed resending).
    func resend(sku: Int, location: Int, quantity: Int64, sequence: UInt64) -> EventBatchResult {
        let event = StockEvent(kind: .receive, sku: self.sku(sku), location: self.location(location),
                               quantity: quantity, source: source, sequence: sequence)
        return engine.apply(EventBatch(events: [event]))
    }

    func reserve(_ id: String, lines: [(sku: Int, location: Int, quantity: Int64)], ttlMilliseconds: Int64 = 60_000)
        -> ReservationReply
    {
        let request = ReserveRequest(
            id: try! ReservationID(id),
            lines: lines.map { ReservationLine(sku: sku($0.sku), target: .location(location($0.location)), quantity: $0.quantity) },
            ttlMilliseconds: ttlMilliseconds, mode: .allOrNothing)
        return engine.reserve(request)
    }

    func sellable(sku: Int, location: Int) -> Int64 {
        let result = engine.query([.cell(self.sku(sku), self.location(location))])
        return result.answers[0].sellable
    }
}
