@testable import ATPLedger
import Testing

/// Where a SKU lives (docs/ARCHITECTURE.md, "Where a SKU lives"): by default a hash of its name
/// picks its shard, so a client can compute it; data directories from before keep placement by id.
@Suite struct SKUPlacementTests {
    /// The hash is part of the protocol (a shard-aware client computes it): these values must never
    /// change. The same vectors are in docs/ARCHITECTURE.md.
    @Test func theNameHashIsStable() {
        let vectors: [(String, UInt64)] = [
            ("SKU-00001", 0x431C_CED2_321B_210C), ("SKU-00002", 0x4257_903D_8037_E807), ("A", 0x4A98_1157_0D6F_3421),
            ("BOOK-978-0-13-110362-7", 0x3BBE_679C_58BB_DABA), ("caf\u{E9}", 0x40D3_F18F_9579_5B77),
        ]
        for (name, expected) in vectors {
            var copy = name
            #expect(copy.withUTF8 { hashBytes(UnsafeRawBufferPointer($0)) } == expected, "\(name)")
        }
        let placement = SKUPlacement(scheme: .nameHash, shardCount: 64)
        #expect(placement.shardIndex(ofSKUNamed: "SKU-00001") == 12)
        #expect(placement.shardIndex(ofSKUNamed: "SKU-00002") == 7)
        #expect(SKUPlacement(scheme: .nameHash, shardCount: 8).shardIndex(ofSKUNamed: "caf\u{E9}") == 7)
        #expect(SKUPlacement(scheme: .nameHash, shardCount: 1).shardIndex(ofSKUNamed: "A") == 0)
        #expect(SKUPlacement(scheme: .skuID, shardCount: 64).shardIndex(ofSKUNamed: "A") == nil)
    }

    /// Under `.nameHash` every SKU's shard is its name's, and each shard numbers its SKUs densely
    /// in id order; under `.skuID` the placement number is the id.
    @Test(arguments: [1, 8, 64])
    func placementNumbersFollowTheNames(shardCount: Int) throws {
        let placement = SKUPlacement(scheme: .nameHash, shardCount: shardCount)
        let catalog = Catalog(placement: placement)
        var nextLocal = [UInt32](repeating: 0, count: shardCount)
        for n in 0..<2000 {
            let name = "SKU-\(n)"
            let sku = try catalog.sku(name)
            let shard = try #require(placement.shardIndex(ofSKUNamed: name))
            #expect(catalog.shardIndex(of: sku) == shard)
            let number = catalog.placementNumber(of: sku)
            #expect(Int(number) & (shardCount - 1) == shard)
            #expect(number >> UInt32(shardCount.trailingZeroBitCount) == nextLocal[shard], "\(name) local number")
            nextLocal[shard] += 1
        }
        if shardCount == 64 {
            // 2,000 names over 64 shards: about 31 each; no shard is empty or has three times that.
            #expect(nextLocal.min()! > 10 && nextLocal.max()! < 93, "\(nextLocal)")
        }
        // An unknown SKU maps to no shard's SKUs.
        #expect(catalog.placementNumber(of: .unknown) == UInt32.max)

        let byID = Catalog(placement: SKUPlacement(scheme: .skuID, shardCount: shardCount))
        for n in 0..<100 {
            let sku = try byID.sku("SKU-\(n)")
            #expect(byID.placementNumber(of: sku) == sku.rawValue)
            #expect(byID.shardIndex(of: sku) == n & (shardCount - 1))
        }
    }

    /// The engine puts a SKU's cells on its name's shard, and an image restores them there: the
    /// restored engine places every SKU as before and answers the same.
    @Test func anEngineAndItsImagePlaceSKUsByName() throws {
        let f = LedgerFixture(shardCount: 16, workerCount: 2)
        let placement = f.engine.configuration.placement
        #expect(placement.scheme == .nameHash)
        let names = (0..<300).map { "ITEM-\($0)" }
        var events: [StockEvent] = []
        for (n, name) in names.enumerated() {
            events.append(f.event(.receive, name, n % 2 == 0 ? "S1" : "S2", Int64(n + 1)))
        }
        _ = f.engine.apply(EventBatch(events: events))
        for name in names {
            #expect(f.engine.shardIndex(of: f.sku(name)) == placement.shardIndex(ofSKUNamed: name))
            #expect(f.engine.coreIndex(of: f.sku(name)) == placement.shardIndex(ofSKUNamed: name)! % 2)
        }
        let image = f.engine.captureImage { _ in 0 }
        #expect(image.skuPlacement == .nameHash)
        var cellsInOrder: [UInt64] = []
        image.forEachCell { cellsInOrder.append(UInt64($0.sku.rawValue) << 32 | UInt64($0.location.rawValue)) }
        #expect(cellsInOrder == cellsInOrder.sorted() && cellsInOrder.count == names.count)

        let restored = try Engine(restoring: image, configuration: f.engine.configuration, clock: .manual())
        defer { restored.shutdown() }
        restored.checkInvariants()
        for (n, name) in names.enumerated() {
            let sku = try #require(restored.catalog.existingSKU(name))
            #expect(restored.shardIndex(of: sku) == placement.shardIndex(ofSKUNamed: name))
            let location = try #require(restored.catalog.existingLocation(n % 2 == 0 ? "S1" : "S2"))
            #expect(restored.query([.cell(sku, location)]).answers[0].sellable == Int64(n + 1))
        }

        // Restoring into an engine that places SKUs by id is refused: they would land elsewhere.
        var byID = f.engine.configuration
        byID.skuPlacement = .skuID
        #expect(throws: LedgerImageError.skuPlacementMismatch(image: .nameHash, configuration: .skuID)) {
            _ = try Engine(restoring: image, configuration: byID, clock: .manual())
        }
    }

    /// A catalog and a configuration that place SKUs differently cannot make an engine.
    @Test func anEngineRefusesACatalogThatPlacesSKUsElsewhere() {
        var configuration = LedgerConfiguration()
        configuration.shardCount = 8
        configuration.workerCount = 1
        let catalog = Catalog(placement: SKUPlacement(scheme: .nameHash, shardCount: 16))
        #expect(throws: ConfigurationError.self) { _ = try Engine(configuration: configuration, catalog: catalog) }
        configuration.skuPlacement = .skuID
        let engine = try? Engine(configuration: configuration, catalog: Catalog(placement: configuration.placement))
        #expect(engine != nil)
        engine?.shutdown()
    }
}
