#if canImport(Glibc)
import Glibc
#endif
import ATPLedger
import Testing

/// An engine with a manual clock and helpers that speak in names, for tests.
final class LedgerFixture {
    let engine: Engine
    var catalog: Catalog { engine.catalog }
    private var nextSequence: UInt64 = 1

    /// The threads the cores run on when hosted (thread-per-core), else empty.
    let hosts: [ThreadCoreHost]

    /// Whether fixtures host their cores on `ThreadCoreHost`s unless told (`ATP_TEST_HOSTED_CORES=1`
    /// runs the whole ledger suite once more that way).
    static let hostedByDefault = getenv("ATP_TEST_HOSTED_CORES").map { String(cString: $0) == "1" } ?? false

    init(shardCount: Int = 8, workerCount: Int = 2, hosted: Bool = LedgerFixture.hostedByDefault,
         clock: EngineClock = .manual(), configure: (inout LedgerConfiguration) -> Void = { _ in }) {
        var configuration = LedgerConfiguration()
        configuration.shardCount = shardCount
        configuration.workerCount = workerCount
        configuration.workerSpinIterations = 50
        configure(&configuration)
        hosts = hosted ? ThreadCoreHost.hosts(configuration.workerCount) : []
        engine = try! Engine(configuration: configuration, clock: clock, hosts: hosted ? hosts : nil)
    }

    deinit {
        engine.shutdown()
        for host in hosts { host.stop() }
    }

    func sku(_ name: String) -> SKUID { try! catalog.sku(name) }

    /// Names for `bases` whose SKUs sit on different shards, and whose shards alternate over the
    /// cores: `bases[i]` itself when that fits, else `bases[i]-n` for the smallest n that does
    /// (computed from the names under the engine's placement, without interning them).
    func namesOnDistinctShards(_ bases: [String]) -> [String] {
        let configuration = engine.configuration
        var taken: Set<Int> = []
        return bases.enumerated().map { index, base in
            var n = 0
            while true {
                let name = n == 0 ? base : "\(base)-\(n)"
                let shard = configuration.placement.shardIndex(ofSKUNamed: name) ?? taken.count
                if !taken.contains(shard) && shard % configuration.workerCount == index % configuration.workerCount {
                    taken.insert(shard)
                    return name
                }
                n += 1
            }
        }
    }
    func location(_ name: String) -> LocationID { try! catalog.location(name) }
    func source(_ name: String) -> SourceID { try! catalog.source(name) }
    func channel(_ name: String) -> ChannelID { try! catalog.channel(name) }
    func rid(_ name: String) -> ReservationID { try! ReservationID(name) }

    /// An event with the next sequence of source "test" unless given.
    func event(_ kind: StockEventKind, _ sku: String, _ location: String, _ quantity: Int64,
               source: String = "test", sequence: UInt64? = nil, edit: (inout StockEvent) -> Void = { _ in }) -> StockEvent {
        let seq: UInt64
        if let sequence { seq = sequence } else { seq = nextSequence; nextSequence += 1 }
        var event = StockEvent(kind: kind, sku: self.sku(sku), location: self.location(location), quantity: quantity,
                               source: self.source(source), sequence: seq)
        edit(&event)
        return event
    }

    @discardableResult
    func apply(_ events: StockEvent...) -> EventBatchResult {
        engine.apply(EventBatch(events: events))
    }

    /// Applies events and expects every one of them to be applied.
    func applied(_ events: StockEvent..., sourceLocation: SourceLocation = #_sourceLocation) {
        let result = engine.apply(EventBatch(events: events))
        #expect(result.outcomes == Array(repeating: .applied, count: events.count), sourceLocation: sourceLocation)
    }

    /// Applies one ship that names `correlation` as the committed reservation it fulfils.
    @discardableResult
    func ship(_ sku: String, _ location: String, _ quantity: Int64, correlation: String?) -> EventOutcome {
        var batch = EventBatch()
        batch.append(event(.ship, sku, location, quantity), correlation: correlation.map { rid($0) })
        return engine.apply(batch).outcomes[0]
    }

    func cell(_ sku: String, _ location: String) -> CellAvailability {
        let result = engine.query([.cell(self.sku(sku), self.location(location))])
        return result.cells(of: 0).first!
    }

    /// The eight buckets of a cell (zeros when it does not exist).
    func buckets(_ sku: String, _ location: String) -> Buckets { Buckets(cell(sku, location).cell) }

    /// Expects a cell's buckets, sellable, projected and short flag at once.
    func expect(_ sku: String, _ location: String, _ buckets: Buckets, sellable: Int64, projected: Int64? = nil,
                short: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) {
        let cell = self.cell(sku, location)
        #expect(Buckets(cell.cell) == buckets, sourceLocation: sourceLocation)
        #expect(cell.sellable == sellable, "sellable", sourceLocation: sourceLocation)
        #expect(cell.projected == (projected ?? sellable), "projected", sourceLocation: sourceLocation)
        #expect(cell.isShort == short, "short", sourceLocation: sourceLocation)
    }

    func reserve(_ id: String, _ lines: [(String, String, Int64)], ttl: Int64 = 60_000,
                 mode: ReservationMode = .allOrNothing) -> ReservationReply {
        let request = ReserveRequest(
            id: try! ReservationID(id),
            lines: lines.map { ReservationLine(sku: sku($0.0), target: .location(location($0.1)), quantity: $0.2) },
            ttlMilliseconds: ttl, mode: mode)
        return engine.reserve(request)
    }

    /// Reserves one line through a channel.
    func reserve(_ id: String, sku: String, channel: String, _ quantity: Int64, allowSplit: Bool,
                 mode: ReservationMode = .allOrNothing, ttl: Int64 = 60_000) -> ReservationReply {
        let line = ReservationLine(sku: self.sku(sku), target: .channel(self.channel(channel), allowSplit: allowSplit),
                                   quantity: quantity)
        return engine.reserve(ReserveRequest(id: rid(id), lines: [line], ttlMilliseconds: ttl, mode: mode))
    }

    func commit(_ id: String) -> ReservationReply { engine.commit(rid(id)) }
    func release(_ id: String) -> ReservationReply { engine.release(rid(id)) }

    /// Counters summed over shards.
    var counters: ShardCounters { engine.statistics().counters }

    /// Units of floored decrements past 0, by bucket.
    func exceptionUnits(_ bucket: Bucket) -> UInt64 { counters.exceptionUnitsByBucket[Int(bucket.rawValue)] }

    /// A reservation id (prefix + number) whose home shard is `shard`.
    func reservationID(homeShard shard: Int, prefix: String = "r", skipping: Set<String> = []) -> String {
        for n in 0..<100_000 {
            let name = "\(prefix)\(n)"
            if !skipping.contains(name) && engine.homeShardIndex(of: rid(name)) == shard { return name }
        }
        preconditionFailure("no id found for shard \(shard)")
    }
}

/// The eight buckets of a cell, comparable in one `#expect`.
struct Buckets: Equatable, CustomStringConvertible {
    var onHand: Int32 = 0
    var damaged: Int32 = 0
    var quarantine: Int32 = 0
    var committed: Int32 = 0
    var reserved: Int32 = 0
    var inbound: Int32 = 0
    var returnPending: Int32 = 0
    var safetyStock: Int32 = 0

    var description: String {
        "onHand \(onHand) damaged \(damaged) quarantine \(quarantine) committed \(committed) reserved \(reserved) "
            + "inbound \(inbound) returnPending \(returnPending) safetyStock \(safetyStock)"
    }
}

extension Buckets {
    init(_ cell: StockCell) {
        self.init(onHand: cell.onHand, damaged: cell.damaged, quarantine: cell.quarantine, committed: cell.committed,
                  reserved: cell.reserved, inbound: cell.inbound, returnPending: cell.returnPending,
                  safetyStock: cell.safetyStock)
    }
}

