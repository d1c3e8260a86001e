import Synchronization

/// What every connection of a run shares: which SKUs are known to be sold out, and whether the sale
/// stopped because all of them are. (The time limit needs no sharing: every connection knows the
/// deadline.) Thread-safe; the hot path (`isStopping`) is one relaxed atomic load.
final class SaleControl: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let soldOut: Mutex<[Bool]>
    private let soldOutCount = Atomic<Int>(0)
    private let skuCount: Int
    private let stopWhenSoldOut: Bool

    /// A control for `skuCount` SKUs; with `stopWhenSoldOut` the run stops once every SKU is sold out.
    init(skuCount: Int, stopWhenSoldOut: Bool) {
        precondition(skuCount > 0, "a sale needs at least one SKU")
        self.skuCount = skuCount
        self.stopWhenSoldOut = stopWhenSoldOut
        soldOut = Mutex(Array(repeating: false, count: skuCount))
    }

    /// Whether the sale stopped because every SKU is sold out (only with `stopWhenSoldOut`):
    /// connections send nothing more and drop the buyers still waiting.
    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    private func stop() { stopping.store(true, ordering: .relaxed) }

    /// Whether every SKU is known to be sold out.
    var isSoldOut: Bool { soldOutCount.load(ordering: .relaxed) == skuCount }

    /// Per SKU, whether it is known to be sold out.
    var soldOutFlags: [Bool] { soldOut.withLock { $0 } }

    /// SKUs known to be sold out.
    var soldOutSKUs: Int { soldOutCount.load(ordering: .relaxed) }

    /// Records that a 1-unit all-or-nothing reservation of `sku` was refused: nothing of it was
    /// sellable then, and since this run never gives units back, nothing will be again.
    func markSoldOut(sku: Int) {
        let isNew = soldOut.withLock { flags in
            if flags[sku] { return false }
            flags[sku] = true
            return true
        }
        guard isNew else { return }
        let count = soldOutCount.add(1, ordering: .relaxed).newValue
        assert(count <= skuCount, "more SKUs sold out than on sale")
        if stopWhenSoldOut && count == skuCount { stop() }
    }
}
