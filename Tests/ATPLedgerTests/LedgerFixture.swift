import ATPLedger

/// An engine with a manual clock and helpers that speak in names, for tests.
final class LedgerFixture {
    let engine: Engine
    var catalog: Catalog { engine.catalog }
    private var nextSequence: UInt64 = 1

    init(shardCount: Int = 8, workerCount: Int = 2, configure: (inout LedgerConfiguration) -> Void = { _ in }) {
        var configuration = LedgerConfiguration()
        configuration.shardCount = shardCount
        configuration.workerCount = workerCount
        configuration.workerSpinIterations = 50
        configure(&configuration)
        engine = try! Engine(configuration: configuration, clock: .manual())
    }

    deinit { engine.shutdown() }

    func sku(_ name: String) -> SKUID { try! catalog.sku(name) }
    func location(_ name: String) -> LocationID { try! catalog.location(name) }
    func source(_ name: String) -> SourceID { try! catalog.source(name) }

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

    func cell(_ sku: String, _ location: String) -> CellAvailability {
        let result = engine.query([.cell(self.sku(sku), self.location(location))])
        return result.cells(of: 0).first!
    }

    func reserve(_ id: String, _ lines: [(String, String, Int64)], ttl: Int64 = 60_000,
                 mode: ReservationMode = .allOrNothing) -> ReservationReply {
        let request = ReserveRequest(
            id: try! ReservationID(id),
            lines: lines.map { ReservationLine(sku: sku($0.0), target: .location(location($0.1)), quantity: $0.2) },
            ttlMilliseconds: ttl, mode: mode)
        return engine.reserve(request)
    }
}
