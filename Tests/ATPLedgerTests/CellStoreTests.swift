@testable import ATPLedger
import Testing

/// The shard's cell store: growth by doubling, the (SKU, location) index, per-SKU chains.
@Suite struct CellStoreTests {
    func create(_ store: CellStore, _ sku: UInt32, _ location: UInt32) -> UInt32 {
        store.slotCreating(sku: SKUID(sku), location: LocationID(location),
                           hash: CellStore.hash(SKUID(sku), LocationID(location)))
    }

    /// 40,000 cells from a capacity of 1: fifteen doublings of the cells and the index. Checks the
    /// full invariants at every doubling and that no cell is lost, duplicated or altered.
    @Test func growthNeverLosesOrDuplicatesACell() {
        let store = CellStore(initialCapacity: 1, shardBits: 3, catalog: idPlaced(shardBits: 3))
        let total = 40_000
        var capacities: Set<Int> = [store.capacity]
        var misplaced = 0
        for i in 0..<total {
            // SKU ids of shard 5 (id & 7 == 5), 100 locations each, in a scrambled order.
            let n = (i &* 7919) % total
            let sku = UInt32(n / 100) << 3 | 5
            let location = UInt32(n % 100)
            let slot = create(store, sku, location)
            if slot != UInt32(i) { misplaced += 1 }
            store.cell(slot).pointee.onHand = Int32(n)
            if store.count.nonzeroBitCount == 1 {
                store.checkInvariants()
            }
            capacities.insert(store.capacity)
        }
        store.checkInvariants()
        #expect(misplaced == 0)
        #expect(store.count == total)
        #expect(capacities.count >= 15)
        var wrong = 0
        for n in 0..<total {
            let sku = SKUID(UInt32(n / 100) << 3 | 5)
            let location = LocationID(UInt32(n % 100))
            guard let slot = store.slot(sku: sku, location: location) else { wrong += 1; continue }
            let cell = store.cell(slot).pointee
            if cell.sku != sku || cell.location != location || cell.onHand != Int32(n) { wrong += 1 }
            // Asking again never creates a second cell.
            if create(store, sku.rawValue, location.rawValue) != slot { wrong += 1 }
        }
        #expect(wrong == 0)
        #expect(store.count == total)
        #expect(store.slot(sku: SKUID(5), location: LocationID(100)) == nil)
        #expect(store.slot(sku: SKUID(6), location: LocationID(0)) == nil)
        #expect(store.bytesAllocated >= total * 64)
    }

    @Test func skuChainsInAscendingLocationOrder() {
        let store = CellStore(initialCapacity: 4, shardBits: 0, catalog: idPlaced(shardBits: 0))
        var random = SplitMix64(seed: 42)
        let locations = (0..<300).map { UInt32($0 * 3) }.shuffled(using: &random)
        for (i, location) in locations.enumerated() {
            _ = create(store, 7, location)
            if i % 2 == 0 { _ = create(store, 8, 1_000 - location / 3) }
        }
        store.checkInvariants()
        var chain: [UInt32] = []
        store.forEachSlot(ofSKU: SKUID(7)) { chain.append(store.cell($0).pointee.location.rawValue) }
        #expect(chain == locations.sorted())
        var other: [UInt32] = []
        store.forEachSlot(ofSKU: SKUID(8)) { other.append(store.cell($0).pointee.location.rawValue) }
        #expect(other.count == 150 && other == other.sorted())
        // A location inserted before the current head becomes the head.
        _ = create(store, 7, 1)
        chain = []
        store.forEachSlot(ofSKU: SKUID(7)) { chain.append(store.cell($0).pointee.location.rawValue) }
        #expect(chain.prefix(3) == [0, 1, 3])
        #expect(chain.count == 301)
        store.checkInvariants()
    }

    /// A restored store knows its chains' heads only: its first insert past a SKU's last location
    /// finds the tail by one walk, then appends; inserts before the head and between cells still
    /// land in order, and the tail kept afterwards is the chain's true last cell.
    @Test func restoredChainsTakeInsertsAtTheTailHeadAndMiddle() {
        let original = CellStore(initialCapacity: 4, shardBits: 0, catalog: idPlaced(shardBits: 0))
        for location in stride(from: 10, through: 100, by: 10) { _ = create(original, 3, UInt32(location)) }
        for location in stride(from: 100, through: 10, by: -10) { _ = create(original, 4, UInt32(location)) }
        let copy = Array(UnsafeBufferPointer(start: original.cells, count: original.count))
        let store = CellStore(initialCapacity: 4, shardBits: 0, catalog: idPlaced(shardBits: 0))
        copy.withUnsafeBufferPointer { store.restore(cells: $0, firstSlotOfSKU: original.firstSlotOfSKU) }
        store.checkInvariants()
        for location: UInt32 in [110, 120, 5, 55, 130] { _ = create(store, 3, location) }
        for location: UInt32 in [55, 1, 200, 199] { _ = create(store, 4, location) }
        _ = create(store, 5, 7)
        store.checkInvariants()
        func chain(_ sku: UInt32) -> [UInt32] {
            var locations: [UInt32] = []
            store.forEachSlot(ofSKU: SKUID(sku)) { locations.append(store.cell($0).pointee.location.rawValue) }
            return locations
        }
        #expect(chain(3) == [5, 10, 20, 30, 40, 50, 55, 60, 70, 80, 90, 100, 110, 120, 130])
        #expect(chain(4) == [1, 10, 20, 30, 40, 50, 55, 60, 70, 80, 90, 100, 199, 200])
        #expect(chain(5) == [7])
    }

    /// Growth adds half the capacity (so at most a third of the buffer is headroom) and a restore
    /// takes the restored cells plus an eighth: the engine's bytes per cell count the headroom.
    @Test func growthAddsHalfAndARestoreAnEighth() {
        let store = CellStore(initialCapacity: 1024, shardBits: 0, catalog: idPlaced(shardBits: 0))
        for location in 0..<1025 { _ = create(store, 1, UInt32(location)) }
        #expect(store.capacity == 1536)
        for location in 1025..<1537 { _ = create(store, 1, UInt32(location)) }
        #expect(store.capacity == 2304)
        store.checkInvariants()
        let copy = Array(UnsafeBufferPointer(start: store.cells, count: store.count))
        let restored = CellStore(initialCapacity: 16, shardBits: 0, catalog: idPlaced(shardBits: 0))
        copy.withUnsafeBufferPointer { restored.restore(cells: $0, firstSlotOfSKU: store.firstSlotOfSKU) }
        #expect(restored.capacity == 1537 + 1537 / 8)
        restored.checkInvariants()
        #expect(CellStore.indexEntries(forCells: 1537) == 4096)
        #expect(CellStore.indexEntries(forCells: 1536) == 2048)
    }

    @Test func manySKUs() {
        let store = CellStore(initialCapacity: 16, shardBits: 6, catalog: idPlaced(shardBits: 6))
        let skuCount = 30_000
        for local in 0..<skuCount {
            let sku = UInt32(local) << 6 | 17
            _ = create(store, sku, UInt32(local % 5 + 10))
            if local % 3 == 0 { _ = create(store, sku, 2) }
        }
        store.checkInvariants()
        #expect(store.count == skuCount + skuCount / 3)
        var wrong = 0
        for local in stride(from: 0, to: skuCount, by: 11) {
            let sku = SKUID(UInt32(local) << 6 | 17)
            if !store.hasSKU(sku) { wrong += 1 }
            var locations: [UInt32] = []
            store.forEachSlot(ofSKU: sku) { locations.append(store.cell($0).pointee.location.rawValue) }
            let expected: [UInt32] = local % 3 == 0 ? [2, UInt32(local % 5 + 10)] : [UInt32(local % 5 + 10)]
            if locations != expected { wrong += 1 }
        }
        #expect(wrong == 0)
        // A SKU past the last one, and SKUID.unknown, have no cells.
        #expect(!store.hasSKU(SKUID(UInt32(skuCount) << 6 | 17)))
        #expect(!store.hasSKU(.unknown))
        var visited = 0
        store.forEachSlot(ofSKU: .unknown) { _ in visited += 1 }
        #expect(visited == 0)
    }

    @Test func insertRestoresACellWithItsBuckets() {
        let store = CellStore(initialCapacity: 1, shardBits: 0, catalog: idPlaced(shardBits: 0))
        var cell = StockCell(sku: SKUID(3), location: LocationID(9))
        cell.onHand = 12
        cell.reserved = 2
        cell.version = 5
        _ = create(store, 3, 4)
        let slot = store.insert(cell)
        _ = create(store, 3, 1)
        store.checkInvariants()
        #expect(store.cell(slot).pointee == cell)
        #expect(store.cell(slot).pointee.version == 5)
        var chain: [UInt32] = []
        store.forEachSlot(ofSKU: SKUID(3)) { chain.append(store.cell($0).pointee.location.rawValue) }
        #expect(chain == [1, 4, 9])
    }

    @Test func cellIsOneCacheLine() {
        #expect(MemoryLayout<StockCell>.size == 64)
        #expect(MemoryLayout<StockCell>.stride == 64)
    }
}

/// A catalog that places SKUs by id (the tests use ids without names).
private func idPlaced(shardBits: Int) -> Catalog {
    Catalog(placement: SKUPlacement(scheme: .skuID, shardCount: 1 << shardBits))
}
