import DequeModule
import HeapModule

/// One shard: the cells of the SKUs that map to it, the dedup windows of the events it applies, the
/// reservation holds on its cells and the reservation records whose home it is.
///
/// A shard is touched only by the worker thread that owns it (see `ShardWorker`); nothing in it is
/// locked or atomic. Its mutations are split by concern into `Shard-events.swift`,
/// `Shard-holds.swift` and `Shard-queries.swift`; reservations are decided by the owning `CoreLedger`.
final class Shard {
    let index: Int
    let configuration: LedgerConfiguration
    let cells: CellStore
    var counters = ShardCounters()

    // Dedup: one window per source that sent events to this shard.
    var dedupWindows: [DedupWindow] = []
    var dedupWindowBySource: [SourceID: Int] = [:]
    var lastSource = SourceID(.max)
    /// The window of `lastSource`, unretained (its storage lives in `dedupWindows`).
    var lastSourceBits: DedupBits? = nil
    /// Hot-path counters kept outside `counters` (plain stores, no array checks); see `currentCounters`.
    let appliedByKind = UnsafeMutablePointer<UInt64>.allocate(capacity: 16)
    var duplicatesDropped: UInt64 = 0

    /// Rejections produced since the worker last collected them.
    var pendingRejections: [RejectedEvent] = []

    // Reservations: holds on this shard's cells, by reservation id.
    var holds = ReservationTable<Hold>()
    /// Records of the reservations whose home is this shard. Changed only through `insertRecord`,
    /// `setRecord` and `modifyRecord`, which keep `forgettableRecords` and `expiries` right.
    private(set) var records = ReservationTable<ReservationRecord>()
    /// Records that may be forgotten once their retention passed (settled, no acknowledgement
    /// awaited): what the per-shard maximum counts.
    private(set) var forgettableRecords = 0
    /// The held records of the core's shards by deadline (shared by the core's shards): exactly
    /// the records in state held. This shard's records are the nodes at `expiryPosition`.
    let expiries: ExpiryQueue
    /// This shard's position among its core's shards (its records' nodes in `expiries`).
    let expiryPosition: Int
    /// The engine's id → home map: every record of this shard is in it (added and removed with it).
    let directory: ReservationDirectory
    var finishedOutcomes = FinishedOutcomeQueue()

    /// Adds the record of an id that has none yet; returns its slot in `records`.
    @discardableResult
    func insertRecord(_ record: ReservationRecord) -> Int {
        let slot = records.insert(record)
        directory.insert(record.id, home: index)
        if record.isForgettable { forgettableRecords += 1 }
        if record.state == .held { expiries.add(node: expiryNode(slot), deadline: record.expiresAtMilliseconds) }
        return slot
    }

    /// Sets (or with nil removes) the record of `id`.
    func setRecord(_ record: ReservationRecord?, for id: ReservationID) {
        assert(record == nil || record!.id == id, "a record stored under another id")
        guard let slot = records.slot(of: id) else {
            if let record { insertRecord(record) }
            return
        }
        if let record {
            modifyRecord(slot: slot) { $0 = record }
        } else {
            expiries.remove(node: expiryNode(slot))
            if records[slot: slot].isForgettable { forgettableRecords -= 1 }
            records.remove(slot: slot)
            directory.remove(id, home: index)
        }
        assert(forgettableRecords >= 0)
    }

    /// Changes the record in `slot` of `records` in place (no copy of its arrays), keeping the
    /// forgettable count and the expiry queue right; returns what `body` returned.
    @discardableResult
    func modifyRecord<R>(slot: Int, _ body: (inout ReservationRecord) -> R) -> R {
        let wasForgettable = records[slot: slot].isForgettable
        let heldUntilBefore = records[slot: slot].heldUntilMilliseconds
        let result = body(&records[slot: slot])
        let isForgettable = records[slot: slot].isForgettable
        let heldUntil = records[slot: slot].heldUntilMilliseconds
        if wasForgettable != isForgettable { forgettableRecords += isForgettable ? 1 : -1 }
        if heldUntil != heldUntilBefore {
            if heldUntilBefore != nil { expiries.remove(node: expiryNode(slot)) }
            if let heldUntil { expiries.add(node: expiryNode(slot), deadline: heldUntil) }
        }
        assert(forgettableRecords >= 0)
        return result
    }

    /// The expiry-queue node of the record in `slot`.
    @inline(__always) func expiryNode(_ slot: Int) -> Int { ExpiryQueue.node(position: expiryPosition, slot: slot) }

    /// Queues a settled record for forgetting once its retention window (from `since`) has passed
    /// (`FinishedOutcomeQueue`: forgotten by (since, id), so which records the per-shard maximum
    /// forgets is a function of the records alone).
    func noteFinished(_ id: ReservationID, sinceMilliseconds since: Int64) {
        finishedOutcomes.append(id, sinceMilliseconds: since)
    }

    init(index: Int, configuration: LedgerConfiguration, catalog: Catalog, expiries: ExpiryQueue, expiryPosition: Int,
         directory: ReservationDirectory) {
        self.index = index
        self.directory = directory
        self.configuration = configuration
        self.expiries = expiries
        self.expiryPosition = expiryPosition
        cells = CellStore(
            initialCapacity: configuration.initialCellsPerShard,
            shardBits: configuration.shardCount.trailingZeroBitCount, catalog: catalog)
        appliedByKind.initialize(repeating: 0, count: 16)
    }

    deinit { appliedByKind.deallocate() }

    /// The shard's counters, hot-path counters included.
    var currentCounters: ShardCounters {
        var result = counters
        for kind in 0..<result.eventsAppliedByKind.count { result.eventsAppliedByKind[kind] = appliedByKind[kind] }
        result.duplicatesDropped = duplicatesDropped
        return result
    }

    /// Full consistency check (tests): cell store structure, short-cell counter, reserved and
    /// committed units equal to what the holds say.
    func checkInvariants() {
        cells.checkInvariants()
        var short = 0
        var reservedBySlot: [UInt32: Int64] = [:]
        var committedBySlot: [UInt32: Int64] = [:]
        for hold in holds.values {
            for line in hold.lines where line.units > 0 {
                if hold.isCommitted {
                    committedBySlot[line.slot, default: 0] += Int64(line.units)
                } else {
                    reservedBySlot[line.slot, default: 0] += Int64(line.units)
                }
            }
        }
        for slot in 0..<cells.count {
            let cell = cells.cell(UInt32(slot)).pointee
            if cell.isShort { short += 1 }
            precondition(Int64(cell.reserved) == reservedBySlot[UInt32(slot), default: 0],
                         "cell reserved \(cell.reserved) differs from its holds")
            precondition(Int64(cell.committed) == committedBySlot[UInt32(slot), default: 0],
                         "cell committed \(cell.committed) differs from its holds")
        }
        precondition(short == counters.shortCells, "short-cell counter \(counters.shortCells) != \(short)")
        var forgettable = 0
        for (_, record) in records {
            if record.isForgettable { forgettable += 1 }
            precondition(directory.home(of: record.id) == index,
                         "record \(record.id) of shard \(index) maps to \(String(describing: directory.home(of: record.id)))")
            let queued = expiries.contains(node: expiryNode(records.slot(of: record.id)!))
            precondition(queued == (record.state == .held), "record \(record.id) (\(record.state)) queued to expire: \(queued)")
        }
        precondition(forgettable == forgettableRecords, "forgettable count \(forgettableRecords) != \(forgettable)")
    }
}
