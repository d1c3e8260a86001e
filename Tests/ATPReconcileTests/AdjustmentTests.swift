import ATPLedger
import ATPProtocol
import ATPReconcile
import Foundation
import Testing

@testable import ATPCommandLine

/// `--emit-adjustments`: count events in the format `atp ingest` reads that, applied, make the
/// engine agree with the ERP file.
@Suite("Adjustments")
struct AdjustmentTests {
    @Test("the emitted events parse with the ingest reader and, applied, reconcile to zero variance")
    func alignTheEngine() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 4, locations: 3)  // SKU-s at Ll holds 10 + s + l
        try fixture.apply([(.ship, "SKU-3", "L2", 40)])  // onHand -25: short
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("counts.csv", #"""
            location,sku,quantity,as_of
            L0,SKU-0,7,2024-03-01
            L1,SKU-0,11,
            L0,SKU-1,11,
            "L,new",SKU-1,4,2024-03-01T10:30:00Z
            L0,"SKU ""new""",9,
            L2,SKU-3,0,
            L0,SKU-9,0,
            """#)
        // Not listed: SKU-0@L2, SKU-1@L1, SKU-1@L2, SKU-2@*, SKU-3@L0, SKU-3@L1 (engine-only).
        let adjustmentsPath = fixture.directory + "/adjust.csv"
        var run = ReconcileRun(snapshotPath: snapshotPath, options: ReconcileOptions(erpPath: erp),
                               reportDirectory: fixture.directory + "/report", adjustmentsPath: adjustmentsPath)
        run.adjustmentFirstSequence = 100
        let outcome = try run.run()
        #expect(outcome.summary.total.differing == 2)
        #expect(outcome.summary.total.erpOnly == 2)
        #expect(outcome.summary.total.engineOnly == 8)
        #expect(outcome.summary.erpOnlyZeroRows == 1)
        #expect(outcome.adjustmentCount == 12)

        var reader = EventFileReader(try InputFile.read(adjustmentsPath), format: .csv)
        var events: [(line: Int, event: WireEvent)] = []
        while let next = try reader.next() { events.append(next) }
        #expect(events.count == 12)
        #expect(events.allSatisfy { $0.event.kind == .count })
        #expect(events.map(\.event.sequence) == Array(100..<112))
        let byCell = Dictionary(uniqueKeysWithValues: events.map { ("\($0.event.location)/\($0.event.sku)", $0.event) })
        #expect(byCell["L0/SKU-0"]?.quantity == 7)
        #expect(byCell["L0/SKU-0"]?.eventMilliseconds == 1_709_251_200_000, "as_of 2024-03-01")
        #expect(byCell["L,new/SKU-1"]?.eventMilliseconds == 1_709_289_000_000)
        #expect(byCell["L0/SKU \"new\""]?.quantity == 9)
        #expect(byCell["L2/SKU-3"]?.quantity == 0)
        #expect(byCell["L0/SKU-2"]?.quantity == 0, "engine-only cells are counted to 0")
        #expect(byCell["L0/SKU-2"]?.eventMilliseconds == outcome.summary.snapshotCutWallClockMilliseconds)

        let source = try fixture.engine.catalog.source("reconcile-1")
        let stockEvents = try events.map { item in
            StockEvent(kind: try #require(item.event.kind), sku: try fixture.engine.catalog.sku(item.event.sku),
                       location: try fixture.engine.catalog.location(item.event.location), quantity: item.event.quantity,
                       source: source, sequence: item.event.sequence, eventMilliseconds: item.event.eventMilliseconds)
        }
        let result = fixture.engine.apply(EventBatch(events: stockEvents))
        #expect(result.outcomes.allSatisfy { $0 == .applied }, "\(result.outcomes)")

        let after = try fixture.snapshot()
        let (summary, sink) = try fixture.reconcile(after, erp)
        #expect(sink.variances.isEmpty, "\(sink.variances)")
        #expect(summary.isClean)
        #expect(summary.total.matching == 6)
        #expect(summary.engineOnlyZeroCells == 8)
    }
}
