import ATPLedger
import ATPReconcile
import Foundation
import Testing

/// The generator's planted variances, found by the diff: every one, and nothing else.
@Suite("Planted variances")
struct PlantedVarianceTests {
    /// A snapshot with zero and negative cells too (a sold-out cell, a short one).
    private func snapshot(_ fixture: ReconcileFixture) throws -> String {
        try fixture.populate(skus: 60, locations: 8)
        try fixture.apply([(.ship, "SKU-3", "L2", 15), (.ship, "SKU-4", "L1", 100), (.ship, "SKU-5", "L0", 15),
                           (.ship, "SKU-6", "L3", 30), (.ship, "SKU-7", "L4", 40), (.ship, "SKU-8", "L5", 50)])
        return try fixture.snapshot()
    }

    @Test("every planted variance is found with its quantities, values and nothing else", arguments: [1, 2, 3] as [UInt64])
    func roundTrip(seed: UInt64) throws {
        let fixture = try ReconcileFixture()
        let snapshotPath = try snapshot(fixture)
        let index = try SnapshotCellIndex.load(snapshotAt: snapshotPath)
        var plan = ERPCountPlan()
        plan.seed = seed
        plan.shrinkFraction = 0.05
        plan.miscountFraction = 0.05
        plan.phantomFraction = 0.03
        plan.missingFraction = 0.03
        plan.includeUnitCosts = true
        plan.asOfMilliseconds = 1_700_000_000_000
        let countsPath = fixture.directory + "/counts.csv"
        let truthPath = fixture.directory + "/truth.csv"
        let planted = try ERPCountGenerator.generate(from: index, plan: plan, countsPath: countsPath, truthPath: truthPath)
        for kind in [PlantedVariance.Kind.shrink, .miscount, .phantom, .missing, .negativeInEngine] {
            #expect(planted.contains { $0.kind == kind }, "seed \(seed) plants some \(kind)")
        }
        #expect(try fixture.read(truthPath).split(separator: "\n").count == planted.count + 1)

        let (summary, sink) = try fixture.reconcile(snapshotPath, countsPath)
        let expected = Set(planted.map { variance in
            ReportedVariance(kind: variance.expectedStatus, location: variance.location, sku: variance.sku,
                             erpQuantity: variance.erpQuantity, engineOnHand: variance.engineOnHand, units: variance.units,
                             unitCostMicros: variance.unitCostMicros, line: nil)
        })
        let found = Set(sink.variances.map { var copy = $0; copy.line = nil; return copy })
        #expect(found.count == sink.variances.count, "each cell reported once")
        #expect(found.subtracting(expected).isEmpty, "reported but not planted: \(found.subtracting(expected))")
        #expect(expected.subtracting(found).isEmpty, "planted but not reported: \(expected.subtracting(found))")
        #expect(sink.badRows.isEmpty && summary.badRowCount == 0)
        #expect(summary.total.cellsCompared - summary.total.matching == planted.count)
        #expect(summary.total.netUnits == planted.reduce(0) { $0 + $1.units })
        #expect(summary.total.absoluteUnits == planted.reduce(0) { $0 + $1.units.magnitude.asInt64 })
        let valued = planted.compactMap { variance in variance.unitCostMicros.map { Int128(variance.units) * Int128($0) } }
        #expect(summary.total.valuedCells == valued.count)
        #expect(summary.total.netValueMicros == valued.reduce(0, +))
        #expect(summary.total.engineOnly == planted.filter { $0.kind == .missing }.count)
        #expect(summary.total.erpOnly == planted.filter { $0.kind == .phantom }.count)
        #expect(summary.byLocation.reduce(0) { $0 + $1.tally.cellsCompared } == summary.total.cellsCompared)
    }

    @Test("a file copied from the snapshot without planting matches everywhere")
    func nothingPlanted() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 30, locations: 4)
        try fixture.apply([(.ship, "SKU-1", "L1", 11)])  // a zero cell
        let snapshotPath = try fixture.snapshot()
        var plan = ERPCountPlan()
        (plan.shrinkFraction, plan.miscountFraction, plan.phantomFraction, plan.missingFraction) = (0, 0, 0, 0)
        let countsPath = fixture.directory + "/counts.csv"
        let planted = try ERPCountGenerator.generate(from: try SnapshotCellIndex.load(snapshotAt: snapshotPath), plan: plan,
                                                     countsPath: countsPath)
        #expect(planted.isEmpty)
        let (summary, sink) = try fixture.reconcile(snapshotPath, countsPath)
        #expect(sink.variances.isEmpty)
        #expect(summary.isClean)
        #expect(summary.total.cellsCompared == 120 && summary.total.matching == 120)
        #expect(summary.total.accuracyPercent == "100.00")
        #expect(summary.rowsRead == 120)
    }

    @Test("the top list holds the largest variances by value, then units, largest first")
    func topList() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 3, locations: 2)  // SKU-s at Ll holds 10 + s + l
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("counts.csv", """
            location,sku,quantity,unit_cost
            L0,SKU-0,0,1.00
            L1,SKU-0,30,0.10
            L0,SKU-1,1,
            L1,SKU-1,13,100
            L0,SKU-2,12,
            L1,SKU-2,13,
            """)
        let (summary, _) = try fixture.reconcile(snapshotPath, erp, top: 3)
        // values: L0/SKU-0 -10 units -10.00; L1/SKU-0 +19 units 1.90; L0/SKU-1 -10 units, no cost;
        // L1/SKU-1 +1 unit 100.00; L1/SKU-2 0 (matches); L0/SKU-2 0 (matches).
        #expect(summary.top.map { "\($0.location)/\($0.sku)" } == ["L1/SKU-1", "L0/SKU-0", "L1/SKU-0"])
        #expect(summary.top.first?.valueMicros == 100_000_000)
        #expect(summary.total.differing == 4 && summary.total.matching == 2)
        #expect(summary.total.absoluteValueMicros == 111_900_000)
        #expect(summary.total.netValueMicros == 91_900_000)
        #expect(summary.total.valuedCells == 3)
        #expect(summary.total.accuracyPercent == "33.33")
    }
}

extension UInt64 {
    var asInt64: Int64 { Int64(self) }
}
