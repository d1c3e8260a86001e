import ATPLedger

/// The demo data set `atpd --demo` loads so that a newcomer can query something at once:
/// 20 stores (STORE-001 … STORE-020), two DCs (DC-EAST, DC-WEST), 5,000 SKUs (SKU-00001 …
/// SKU-05000) with stock everywhere, and two channels:
/// - `web`: DC-EAST, DC-WEST, then every store; buffer 2 units;
/// - `marketplace`: DC-EAST only; buffer 5 units, cap 50 %.
public enum DemoCatalog {
    public static let storeCount = 20
    public static let skuCount = 5000

    /// Loads the demo catalogue into `engine` (blocking; call before serving). Returns the number of
    /// cells created.
    @discardableResult
    public static func load(into engine: Engine) throws -> Int {
        let catalog = engine.catalog
        let dcs = [try catalog.location("DC-EAST"), try catalog.location("DC-WEST")]
        let stores = try (1...storeCount).map { try catalog.location("STORE-\(pad($0, 3))") }
        let source = try catalog.source("demo-loader")
        var sequence: UInt64 = 1
        var batch = EventBatch(capacity: 10_000)
        var cells = 0
        for number in 1...skuCount {
            let sku = try catalog.sku("SKU-\(pad(number, 5))")
            for (index, location) in (dcs + stores).enumerated() {
                let isDC = index < dcs.count
                let quantity = isDC ? Int64(50 + (number * 7 + index * 13) % 200) : Int64((number + index * 3) % 9)
                guard quantity > 0 else { continue }
                batch.append(StockEvent(kind: .receive, sku: sku, location: location, quantity: quantity, source: source,
                                        sequence: sequence))
                sequence += 1
                cells += 1
            }
            if batch.count >= 9_000 {
                _ = engine.apply(batch)
                batch = EventBatch(capacity: 10_000)
            }
        }
        if batch.count > 0 { _ = engine.apply(batch) }
        try engine.defineChannel(ChannelDefinition(id: catalog.channel("web"), locations: dcs + stores, bufferUnits: 2))
        try engine.defineChannel(ChannelDefinition(id: catalog.channel("marketplace"), locations: [dcs[0]],
                                                   bufferUnits: 5, capPercent: 50))
        return cells
    }

    private static func pad(_ number: Int, _ width: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
