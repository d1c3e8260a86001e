import CATPSupport

/// The cells of one shard in one contiguous buffer, found through an open-addressing index from
/// (SKU, location) to slot, with every SKU's cells linked in ascending location order.
///
/// Safety: the buffers are raw allocations owned by this instance and touched only by the shard's
/// worker thread (the type is not `Sendable`). Invariants, checked by `checkInvariants()`:
/// - slots 0..<count are initialised cells; the index holds exactly one entry (slot + 1) per cell,
///   at or after its home bucket with no empty entry in between (linear probing, no deletion);
/// - the index is at most 3/4 full, so every probe ends at an empty entry;
/// - following `nextSlotOfSKU` from `firstSlotOfSKU[local]` visits each cell of that SKU once, in
///   ascending location id order, and ends at `lastSlotOfSKU[local]`.
/// Growth copies the cell buffer into one half as large again (amortised O(1) per insert; half
/// rather than double, so that at most a third of it, not half, is headroom: the engine's bytes per
/// cell count it) and doubles the index; no cell is lost or duplicated because the index is rebuilt
/// from the cell buffer, which is the single source of truth.
final class CellStore {
    private(set) var cells: UnsafeMutablePointer<StockCell>
    private(set) var capacity: Int
    private(set) var count = 0
    private var index: UnsafeMutablePointer<UInt32>
    private var indexMask: Int
    /// First slot of each SKU of this shard, by the SKU's shard-local number (its placement number
    /// >> shardBits, `SKUPlacementMap`).
    private(set) var firstSlotOfSKU: [UInt32] = []
    /// Last slot of each SKU's chain (its highest location id), by shard-local number, or `noSlot`
    /// when not known yet (after a restore: found by one walk on the SKU's next insert): a new cell
    /// past the last location (how feeds usually come) links in O(1), not by a walk of the whole
    /// chain (which made loading 1,000 locations a SKU quadratic: a quarter of the worker's time
    /// while ingesting 10M cells).
    private var lastSlotOfSKU: [UInt32] = []
    private let shardBits: Int
    /// Where the SKUs' placement numbers come from.
    private let catalog: Catalog

    /// An empty store of a shard of an engine with 2^`shardBits` shards whose SKUs `catalog` places.
    init(initialCapacity: Int, shardBits: Int, catalog: Catalog) {
        precondition(initialCapacity > 0)
        precondition(catalog.placement.shardCount == 1 << shardBits, "the catalog places SKUs over other shards")
        self.shardBits = shardBits
        self.catalog = catalog
        capacity = initialCapacity
        cells = .allocate(capacity: capacity)
        let indexCapacity = CellStore.indexEntries(forCells: capacity)
        index = .allocate(capacity: indexCapacity)
        index.initialize(repeating: 0, count: indexCapacity)
        indexMask = indexCapacity - 1
    }

    deinit {
        cells.deinitialize(count: count)
        cells.deallocate()
        index.deallocate()
    }

    @inline(__always) static func hash(_ sku: SKUID, _ location: LocationID) -> Int {
        Int(truncatingIfNeeded: mix64(UInt64(sku.rawValue) << 32 | UInt64(location.rawValue)))
    }

    /// Hints the CPU to fetch the index entry of (sku, location): the first step of a batch pipeline.
    @inline(__always) func prefetchIndex(hash: Int) {
        atp_prefetch_read(index + (hash & indexMask))
    }

    /// Hints the CPU to fetch a cell for writing.
    @inline(__always) func prefetchCell(_ slot: UInt32) {
        atp_prefetch_write(cells + Int(slot))
    }

    /// The slot of (sku, location), or nil. Cost: one index probe plus one cell read to verify.
    @inline(__always) func slot(sku: SKUID, location: LocationID, hash: Int) -> UInt32? {
        var position = hash & indexMask
        while true {
            let entry = index[position]
            if entry == 0 { return nil }
            let slot = entry &- 1
            let cell = cells + Int(slot)
            if cell.pointee.sku == sku && cell.pointee.location == location { return slot }
            position = (position &+ 1) & indexMask
        }
    }

    /// The slot of (sku, location).
    func slot(sku: SKUID, location: LocationID) -> UInt32? {
        slot(sku: sku, location: location, hash: CellStore.hash(sku, location))
    }

    /// The slot of (sku, location), creating a zeroed cell when absent. Amortised O(1).
    func slotCreating(sku: SKUID, location: LocationID, hash: Int) -> UInt32 {
        if let slot = slot(sku: sku, location: location, hash: hash) { return slot }
        return insert(sku: sku, location: location, hash: hash)
    }

    /// A pointer to the cell in `slot`; valid until the next insert (which may move the buffer).
    @inline(__always) func cell(_ slot: UInt32) -> UnsafeMutablePointer<StockCell> {
        assert(Int(slot) < count, "slot \(slot) out of range \(count)")
        return cells + Int(slot)
    }

    /// The SKU's number among this shard's SKUs (the head of its chain).
    @inline(__always) private func localNumber(of sku: SKUID) -> Int {
        Int(catalog.placementNumber(of: sku) >> UInt32(shardBits))
    }

    /// Calls `body` with each cell of `sku` in ascending location order.
    func forEachSlot(ofSKU sku: SKUID, _ body: (UInt32) -> Void) {
        let local = localNumber(of: sku)
        guard local < firstSlotOfSKU.count else { return }
        var slot = firstSlotOfSKU[local]
        while slot != StockCell.noSlot {
            body(slot)
            slot = cells[Int(slot)].nextSlotOfSKU
        }
    }

    /// Whether the shard holds any cell of `sku`.
    func hasSKU(_ sku: SKUID) -> Bool {
        let local = localNumber(of: sku)
        return local < firstSlotOfSKU.count && firstSlotOfSKU[local] != StockCell.noSlot
    }

    /// Bytes held by buffers, index and SKU heads.
    var bytesAllocated: Int {
        capacity * MemoryLayout<StockCell>.stride + (indexMask + 1) * 4 + firstSlotOfSKU.capacity * 4
            + lastSlotOfSKU.capacity * 4
    }

    /// Adds a cell (used by snapshot restore as well): the caller guarantees the key is absent.
    @discardableResult
    func insert(_ cell: StockCell) -> UInt32 {
        let slot = insert(sku: cell.sku, location: cell.location, hash: CellStore.hash(cell.sku, cell.location))
        let next = cells[Int(slot)].nextSlotOfSKU
        cells[Int(slot)] = cell
        cells[Int(slot)].nextSlotOfSKU = next
        return slot
    }

    private func insert(sku: SKUID, location: LocationID, hash: Int) -> UInt32 {
        precondition(count < Int(UInt32.max) - 1, "shard cell count limit reached")
        if count == capacity { growCells() }
        if (count + 1) * 4 > (indexMask + 1) * 3 { growIndex() }
        let slot = UInt32(count)
        (cells + count).initialize(to: StockCell(sku: sku, location: location))
        count += 1
        place(slot: slot, hash: hash)
        link(slot: slot, sku: sku, location: location)
        return slot
    }

    private func place(slot: UInt32, hash: Int) {
        var position = hash & indexMask
        while index[position] != 0 { position = (position &+ 1) & indexMask }
        index[position] = slot + 1
    }

    /// Links a new cell into its SKU's chain, keeping ascending location order.
    private func link(slot: UInt32, sku: SKUID, location: LocationID) {
        let local = localNumber(of: sku)
        if local >= firstSlotOfSKU.count {
            let newCount = max(local + 1, firstSlotOfSKU.count * 2)
            firstSlotOfSKU.append(contentsOf: repeatElement(StockCell.noSlot, count: newCount - firstSlotOfSKU.count))
            lastSlotOfSKU.append(contentsOf: repeatElement(StockCell.noSlot, count: newCount - lastSlotOfSKU.count))
        }
        let head = firstSlotOfSKU[local]
        if head == StockCell.noSlot {
            cells[Int(slot)].nextSlotOfSKU = StockCell.noSlot
            firstSlotOfSKU[local] = slot
            lastSlotOfSKU[local] = slot
            return
        }
        var tail = lastSlotOfSKU[local]
        if tail == StockCell.noSlot {
            tail = head
            while cells[Int(tail)].nextSlotOfSKU != StockCell.noSlot { tail = cells[Int(tail)].nextSlotOfSKU }
            lastSlotOfSKU[local] = tail
        }
        if cells[Int(tail)].location < location {
            cells[Int(slot)].nextSlotOfSKU = StockCell.noSlot
            cells[Int(tail)].nextSlotOfSKU = slot
            lastSlotOfSKU[local] = slot
            return
        }
        if cells[Int(head)].location > location {
            cells[Int(slot)].nextSlotOfSKU = head
            firstSlotOfSKU[local] = slot
            return
        }
        var previous = head
        while true {
            let next = cells[Int(previous)].nextSlotOfSKU
            if next == StockCell.noSlot || cells[Int(next)].location > location { break }
            previous = next
        }
        cells[Int(slot)].nextSlotOfSKU = cells[Int(previous)].nextSlotOfSKU
        cells[Int(previous)].nextSlotOfSKU = slot
    }

    /// The index entries for `cells` cells: the smallest power of two at most 3/4 full with them.
    static func indexEntries(forCells cells: Int) -> Int {
        var entries = 16
        while cells * 4 > entries * 3 { entries *= 2 }
        return entries
    }

    private func growCells() {
        let newCapacity = capacity + max(capacity / 2, 16)
        let newCells = UnsafeMutablePointer<StockCell>.allocate(capacity: newCapacity)
        newCells.moveInitialize(from: cells, count: count)
        cells.deallocate()
        cells = newCells
        capacity = newCapacity
    }

    private func growIndex() {
        let newCapacity = (indexMask + 1) * 2
        index.deallocate()
        index = .allocate(capacity: newCapacity)
        index.initialize(repeating: 0, count: newCapacity)
        indexMask = newCapacity - 1
        for slot in 0..<count {
            place(slot: UInt32(slot), hash: CellStore.hash(cells[slot].sku, cells[slot].location))
        }
    }

    /// Replaces an empty store's contents with `cells` (slot order kept) and their SKU chain heads,
    /// as captured by a ledger image: one copy of the buffer, then the index is rebuilt from it.
    /// The cells' `nextSlotOfSKU` links must be valid for `firstSlotOfSKU` (images guarantee it).
    /// Cost: O(count), no per-cell allocation.
    func restore(cells restored: UnsafeBufferPointer<StockCell>, firstSlotOfSKU heads: [UInt32]) {
        precondition(count == 0, "restore into a store that already holds cells")
        // Room for the restored cells and an eighth more, not a power of two: a restore does not
        // pay the headroom a run of doublings would have left.
        let newCapacity = max(capacity, restored.count + restored.count / 8)
        if newCapacity != capacity {
            cells.deallocate()
            cells = .allocate(capacity: newCapacity)
            capacity = newCapacity
        }
        let entries = CellStore.indexEntries(forCells: restored.count)
        if entries > indexMask + 1 {
            index.deallocate()
            index = .allocate(capacity: entries)
            index.initialize(repeating: 0, count: entries)
            indexMask = entries - 1
        }
        if let base = restored.baseAddress { cells.initialize(from: base, count: restored.count) }
        count = restored.count
        for slot in 0..<count {
            place(slot: UInt32(slot), hash: CellStore.hash(cells[slot].sku, cells[slot].location))
        }
        firstSlotOfSKU = heads
        lastSlotOfSKU = Array(repeating: StockCell.noSlot, count: heads.count)
    }

    /// Full structural check (tests and debug builds): every cell found at its slot, chains complete
    /// and ordered.
    func checkInvariants() {
        var occupied = 0
        for position in 0...indexMask where index[position] != 0 { occupied += 1 }
        precondition(occupied == count, "index holds \(occupied) entries for \(count) cells")
        precondition(count * 4 <= (indexMask + 1) * 3)
        var chained = 0
        precondition(lastSlotOfSKU.count == firstSlotOfSKU.count, "SKU chain heads and tails differ in number")
        for local in 0..<firstSlotOfSKU.count {
            var slot = firstSlotOfSKU[local]
            var lastLocation: LocationID? = nil
            var lastSlot = StockCell.noSlot
            defer {
                precondition(lastSlotOfSKU[local] == lastSlot || lastSlotOfSKU[local] == StockCell.noSlot,
                             "SKU chain tail is not its last cell")
            }
            while slot != StockCell.noSlot {
                lastSlot = slot
                let cell = cells[Int(slot)]
                precondition(localNumber(of: cell.sku) == local, "cell in the wrong SKU chain")
                if let lastLocation { precondition(lastLocation < cell.location, "SKU chain out of order") }
                lastLocation = cell.location
                chained += 1
                slot = cell.nextSlotOfSKU
            }
        }
        precondition(chained == count, "chains hold \(chained) cells for \(count)")
        for slot in 0..<count {
            let cell = cells[slot]
            precondition(self.slot(sku: cell.sku, location: cell.location) == UInt32(slot), "cell not found at its slot")
            cell.checkInvariants()
        }
    }
}

extension CellStore {
    /// Hints the CPU to fetch the cell the index entry of `hash` points at (the usual match), once the
    /// index entry itself is in cache: the second step of a batch pipeline.
    @inline(__always) func prefetchCandidateCell(hash: Int) {
        let entry = index[hash & indexMask]
        if entry != 0 { atp_prefetch_write(cells + Int(entry &- 1)) }
    }
}
