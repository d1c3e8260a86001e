import ATPLedger

/// The simulator's own account of what stock events do to a cell's buckets (docs/SEMANTICS.md),
/// written apart from the engine on purpose: the simulator compares the two after every recovery.
/// `reserved` and `committed` are not here: they follow from reservations (`SimulationModel`).
struct ModelCell: Equatable, CustomStringConvertible {
    var onHand: Int64 = 0
    var damaged: Int64 = 0
    var quarantine: Int64 = 0
    var inbound: Int64 = 0
    var returnPending: Int64 = 0
    var safetyStock: Int64 = 0

    var description: String {
        "onHand \(onHand) damaged \(damaged) quarantine \(quarantine) inbound \(inbound) returnPending \(returnPending) "
            + "safetyStock \(safetyStock)"
    }

    /// Whether `cell`'s buckets (other than reserved and committed) are these.
    func matches(_ cell: StockCell) -> Bool {
        onHand == Int64(cell.onHand) && damaged == Int64(cell.damaged) && quarantine == Int64(cell.quarantine)
            && inbound == Int64(cell.inbound) && returnPending == Int64(cell.returnPending)
            && safetyStock == Int64(cell.safetyStock)
    }

    subscript(bucket: Bucket) -> Int64 {
        get {
            switch bucket {
            case .onHand: onHand
            case .damaged: damaged
            case .quarantine: quarantine
            case .inbound: inbound
            case .returnPending: returnPending
            case .safetyStock: safetyStock
            case .committed, .reserved: 0
            }
        }
        set {
            switch bucket {
            case .onHand: onHand = newValue
            case .damaged: damaged = newValue
            case .quarantine: quarantine = newValue
            case .inbound: inbound = newValue
            case .returnPending: returnPending = newValue
            case .safetyStock: safetyStock = newValue
            case .committed, .reserved: preconditionFailure("reservation buckets follow the holds")
            }
        }
    }

    /// Lowers a bucket that stops at 0 (docs/SEMANTICS.md: the part past 0 is an exception).
    mutating func lower(_ bucket: Bucket, by units: Int64) {
        self[bucket] = max(0, self[bucket] - units)
    }
}

/// A cell's key.
struct CellKey: Hashable, Comparable, CustomStringConvertible {
    var sku: SKUID
    var location: LocationID

    static func < (a: CellKey, b: CellKey) -> Bool {
        (a.sku.rawValue, a.location.rawValue) < (b.sku.rawValue, b.location.rawValue)
    }

    var description: String { "(\(sku), \(location))" }
}

/// Cells as the model computes them from the events that were applied, in order.
struct StockModel {
    private(set) var cells: [CellKey: ModelCell] = [:]

    /// Applies one event that the engine applied (the workload sends only valid events).
    mutating func apply(_ event: StockEvent) {
        let key = CellKey(sku: event.sku, location: event.location)
        var cell = cells[key] ?? ModelCell()
        let q = event.quantity
        switch event.kind {
        case .receive:
            cell.onHand += q
            if event.flags.contains(.intoQuarantine) { cell.quarantine += q }
            if event.flags.contains(.closesInbound) { cell.lower(.inbound, by: q) }
        case .ship:
            cell.onHand -= q
        case .transferOut:
            cell.onHand -= q
            let to = CellKey(sku: event.sku, location: event.toLocation)
            cells[to, default: ModelCell()].inbound += q
        case .adjust:
            let bucket = event.bucket!
            if q < 0 && bucket.isFlooredAtZero { cell.lower(bucket, by: -q) } else { cell[bucket] += q }
        case .count:
            cell.onHand = q
            if event.flags.contains(.countsDamaged) { cell.damaged = Int64(event.countDamaged) }
            if event.flags.contains(.countsQuarantine) { cell.quarantine = Int64(event.countQuarantine) }
        case .returnAuthorized:
            cell.returnPending += q
        case .returnReceived:
            cell.lower(.returnPending, by: q)
            cell.onHand += q
            cell.quarantine += q
        case .disposition:
            cell.lower(.quarantine, by: q)
            switch event.outcome! {
            case .restock: break
            case .damaged: cell.damaged += q
            case .scrap, .vendor: cell.onHand -= q
            }
        case .damage:
            cell.damaged += q
        case .writeOff:
            cell.onHand -= q
            if let bucket = event.bucket, bucket != .onHand { cell.lower(bucket, by: q) }
        case .setSafetyStock:
            cell.safetyStock = q
        }
        // A transfer's source is written after its destination (they may be the same entry only
        // when from == to, which the workload never sends).
        cells[key] = cell
    }
}
