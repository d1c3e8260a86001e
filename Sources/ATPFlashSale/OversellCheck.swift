/// The check that matters most, per SKU and in total: units granted equal exactly the stock that was
/// sellable minus what is left (never more than the stock), the server holds exactly the units its
/// replies granted, and nothing is left of a SKU once a 1-unit reservation of it was refused.
public struct OversellCheck: Sendable, Equatable, Codable {
    /// One hot SKU's accounts.
    public struct SKULine: Sendable, Equatable, Codable {
        /// The SKU.
        public var sku: String
        /// Units sellable when the sale started.
        public var stockUnits: Int64
        /// Units the buyers' replies granted (sum over granted reservations).
        public var grantedUnits: Int64
        /// Units still sellable at the end (server read-back).
        public var remainingUnits: Int64
        /// Units the server holds for reservations at the end.
        public var heldUnits: Int64
        /// Units granted beyond the stock: max(0, max(granted, held) − stock). Must be 0.
        public var oversoldUnits: Int64
        /// stock − remaining − granted: units gone from the shelf that no reply granted (positive,
        /// say replies lost with a connection) or granted without leaving it (negative). Must be 0.
        public var unaccountedUnits: Int64
        /// Whether a 1-unit reservation of the SKU was refused (it was sold out then).
        public var soldOutSeen: Bool
        /// Units still sellable although a 1-unit reservation was refused. Must be 0.
        public var leftAfterSoldOutUnits: Int64

        /// A line from its fields.
        public init(sku: String, stockUnits: Int64, grantedUnits: Int64, remainingUnits: Int64, heldUnits: Int64,
                    oversoldUnits: Int64, unaccountedUnits: Int64, soldOutSeen: Bool, leftAfterSoldOutUnits: Int64) {
            self.sku = sku
            self.stockUnits = stockUnits
            self.grantedUnits = grantedUnits
            self.remainingUnits = remainingUnits
            self.heldUnits = heldUnits
            self.oversoldUnits = oversoldUnits
            self.unaccountedUnits = unaccountedUnits
            self.soldOutSeen = soldOutSeen
            self.leftAfterSoldOutUnits = leftAfterSoldOutUnits
        }
    }

    /// Per SKU, in catalog order.
    public var skus: [SKULine]
    /// Totals over the SKUs.
    public var stockUnits: Int64
    /// Units granted in total.
    public var grantedUnits: Int64
    /// Units still sellable in total.
    public var remainingUnits: Int64
    /// Units oversold in total (must be 0).
    public var oversoldUnits: Int64
    /// Units unaccounted for in total, as absolute values (must be 0).
    public var unaccountedUnits: Int64
    /// Units left after a refused 1-unit reservation, in total (must be 0).
    public var leftAfterSoldOutUnits: Int64
    /// What failed, one sentence each; empty when the check passed.
    public var failures: [String]

    /// Whether every SKU's accounts are exact.
    public var passed: Bool { failures.isEmpty }

    /// Compares the stock at the start and the cells at the end with what the replies granted.
    /// Precondition: the arrays are in the same SKU order and of the same length.
    public init(start: [CellReading], end: [CellReading], grantedUnitsBySKU: [Int64], soldOutSeen: [Bool]) {
        precondition(start.count == end.count && end.count == grantedUnitsBySKU.count && end.count == soldOutSeen.count,
                     "accounts of different catalogs")
        var failures: [String] = []
        skus = start.indices.map { index in
            let stock = start[index].sellable
            let remaining = end[index].sellable
            let granted = grantedUnitsBySKU[index]
            let held = end[index].reserved
            let line = SKULine(sku: end[index].sku, stockUnits: stock, grantedUnits: granted, remainingUnits: remaining,
                               heldUnits: held, oversoldUnits: max(0, max(granted, held) - stock),
                               unaccountedUnits: stock - remaining - granted, soldOutSeen: soldOutSeen[index],
                               leftAfterSoldOutUnits: soldOutSeen[index] ? remaining : 0)
            if line.oversoldUnits > 0 {
                failures.append("\(line.sku): \(line.oversoldUnits) units oversold (granted \(granted), held \(held), stock \(stock))")
            }
            if line.unaccountedUnits != 0 {
                failures.append("\(line.sku): stock \(stock) − remaining \(remaining) = \(stock - remaining), but replies granted \(granted)")
            }
            if held != granted {
                failures.append("\(line.sku): the server holds \(held) units, replies granted \(granted)")
            }
            if line.leftAfterSoldOutUnits > 0 {
                failures.append("\(line.sku): \(remaining) units still sellable after a 1-unit reservation was refused")
            }
            return line
        }
        stockUnits = skus.reduce(0) { $0 + $1.stockUnits }
        grantedUnits = skus.reduce(0) { $0 + $1.grantedUnits }
        remainingUnits = skus.reduce(0) { $0 + $1.remainingUnits }
        oversoldUnits = skus.reduce(0) { $0 + $1.oversoldUnits }
        unaccountedUnits = skus.reduce(0) { $0 + abs($1.unaccountedUnits) }
        leftAfterSoldOutUnits = skus.reduce(0) { $0 + $1.leftAfterSoldOutUnits }
        self.failures = failures
    }
}
