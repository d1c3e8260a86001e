import ATPLedger
import Foundation
import Testing

/// A small ledger with every kind of state an image must carry: cells with all buckets, names
/// (one needing CSV quoting), two channels, held, committed, released and refused reservations, a
/// correlated shipment, and dedup windows of two sources. Deterministic.
final class SnapshotFixture {
    static let skuCount = 40
    static let locationCount = 5
    let engine: Engine
    let clock: EngineClock
    var configuration: LedgerConfiguration
    var catalog: Catalog { engine.catalog }
    private var nextSequence: UInt64 = 1

    init(workerCount: Int = 2) {
        var configuration = LedgerConfiguration()
        configuration.shardCount = 8
        configuration.workerCount = workerCount
        configuration.workerSpinIterations = 50
        configuration.dedupWindowSequences = 64
        self.configuration = configuration
        clock = .manual()
        engine = try! Engine(configuration: configuration, clock: clock)
    }

    deinit { engine.shutdown() }

    static func skuName(_ n: Int) -> String { n == 7 ? "SKU,\"7\"" : "SKU-\(n)" }
    static func locationName(_ n: Int) -> String { "L\(n)" }

    func sku(_ n: Int) -> SKUID { try! catalog.sku(SnapshotFixture.skuName(n)) }
    func location(_ n: Int) -> LocationID { try! catalog.location(SnapshotFixture.locationName(n)) }

    func event(_ kind: StockEventKind, _ sku: Int, _ location: Int, _ quantity: Int64, source: String = "wms",
               sequence: UInt64? = nil) -> StockEvent {
        let seq = sequence ?? nextSequence
        if sequence == nil { nextSequence += 1 }
        return StockEvent(kind: kind, sku: self.sku(sku), location: self.location(location), quantity: quantity,
                          source: try! catalog.source(source), sequence: seq, eventMilliseconds: 1_000 + Int64(seq))
    }

    /// Fills the ledger. Afterwards: "held" is held (expires at start + 60 s), "committed" is
    /// committed with one unit shipped, "released" released, "refused" refused.
    func populate() {
        var events: [StockEvent] = []
        for s in 0..<SnapshotFixture.skuCount {
            for l in 0..<SnapshotFixture.locationCount {
                events.append(event(.receive, s, l, Int64(10 + s + l)))
            }
        }
        events.append(event(.damage, 1, 0, 2))
        var quarantined = event(.receive, 2, 1, 3)
        quarantined.flags = .intoQuarantine
        events.append(quarantined)
        var transfer = event(.transferOut, 3, 0, 4)
        transfer.toLocation = location(4)
        events.append(transfer)
        events.append(event(.setSafetyStock, 4, 2, 5))
        events.append(event(.returnAuthorized, 5, 3, 6))
        events.append(event(.ship, 6, 1, 100))  // drives onHand below 0: a short cell
        events.append(event(.receive, 8, 0, 1, source: "pos", sequence: 900))
        let result = engine.apply(EventBatch(events: events))
        precondition(result.outcomes.allSatisfy { $0 == .applied })

        try! engine.defineChannel(ChannelDefinition(
            id: try! catalog.channel("web"), locations: [location(0), location(1)], bufferUnits: 2, capPercent: 50))
        try! engine.defineChannel(ChannelDefinition(id: try! catalog.channel("store"), locations: [location(2)]))

        let held = engine.reserve(request("held", [(10, 0, 3), (11, 1, 2), (12, 2, 1)]))
        precondition(held.state == .held)
        precondition(engine.reserve(request("committed", [(13, 0, 4), (14, 3, 2)])).state == .held)
        precondition(engine.commit(try! ReservationID("committed")).state == .committed)
        var batch = EventBatch()
        batch.append(event(.ship, 13, 0, 1), correlation: try! ReservationID("committed"))
        precondition(engine.apply(batch).outcomes == [.applied])
        precondition(engine.reserve(request("released", [(15, 1, 2)])).state == .held)
        precondition(engine.release(try! ReservationID("released")).state == .released)
        precondition(engine.reserve(request("refused", [(16, 2, 1_000)])).state == .refused)
        let channelLine = ReservationLine(sku: sku(17), target: .channel(try! catalog.channel("web"), allowSplit: true),
                                          quantity: 5)
        precondition(engine.reserve(ReserveRequest(id: try! ReservationID("via-web"), lines: [channelLine],
                                                   ttlMilliseconds: 120_000, mode: .partial)).state == .held)
        engine.waitUntilIdle()
    }

    func request(_ id: String, _ lines: [(Int, Int, Int64)], ttl: Int64 = 60_000) -> ReserveRequest {
        ReserveRequest(id: try! ReservationID(id),
                       lines: lines.map { ReservationLine(sku: sku($0.0), target: .location(location($0.1)), quantity: $0.2) },
                       ttlMilliseconds: ttl, mode: .allOrNothing)
    }
}

/// Everything observable about an engine's state, in a comparable form.
struct ObservedState: Equatable {
    struct Cell: Equatable {
        var sku: UInt32, location: UInt32
        var buckets: [Int32]
        var version: UInt32
        var lastEventMilliseconds: Int64
    }
    var cells: [Cell] = []
    var names: [[String]] = []
    var channels: [ChannelDefinition] = []
    var skuAnswers: [QueryAnswerSummary] = []
    var channelAnswers: [QueryAnswerSummary] = []
    var reservations: [ReservationImage] = []
    var holds: [HoldImage] = []
    var dedupWindows: [DedupWindowImage] = []

    struct QueryAnswerSummary: Equatable {
        var sellable: Int64, projected: Int64, isShort: Bool, exists: Bool
    }

    init(_ engine: Engine) {
        let image = engine.captureImage { _ in 0 }
        image.forEachCell { cell in
            cells.append(Cell(sku: cell.sku.rawValue, location: cell.location.rawValue,
                              buckets: [cell.onHand, cell.damaged, cell.quarantine, cell.committed, cell.reserved,
                                        cell.inbound, cell.returnPending, cell.safetyStock],
                              version: cell.version, lastEventMilliseconds: cell.lastEventMilliseconds))
        }
        for kind in [NameKind.sku, .location, .channel, .source] {
            names.append((0..<engine.catalog.count(kind)).map { id in
                engine.catalog.withName(kind, id: UInt32(id)) { String(decoding: $0, as: UTF8.self) }
            })
        }
        channels = engine.channels()
        let skus = (0..<engine.catalog.count(.sku)).map { SKUID(UInt32($0)) }
        let summary = { (answer: QueryAnswer) in
            QueryAnswerSummary(sellable: answer.sellable, projected: answer.projected, isShort: answer.isShort,
                               exists: answer.exists)
        }
        skuAnswers = engine.query(skus.map { .sku($0) }).answers.map(summary)
        channelAnswers = engine.query(skus.flatMap { sku in channels.map { .channel(sku, $0.id) } }).answers.map(summary)
        // Which workers hold a reservation's lines, and the origins of their holds, depend on the
        // worker count; what is held where does not.
        reservations = image.reservations.sorted { $0.id < $1.id }.map { reservation in
            var copy = reservation
            copy.parts = []
            return copy
        }
        holds = image.holds.sorted { ($0.shard, $0.id) < ($1.shard, $1.id) }.map { hold in
            var copy = hold
            copy.originGeneration = 0
            copy.originPrepareLSN = 0
            return copy
        }
        dedupWindows = image.dedupWindows.sorted { ($0.shard, $0.source) < ($1.shard, $1.source) }
    }
}

/// A fresh directory under the system's temporary directory, removed at deinit.
final class TemporaryDirectory {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "/atp-snapshot-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        path = String(cString: template)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
