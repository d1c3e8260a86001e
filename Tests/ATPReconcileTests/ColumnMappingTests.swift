import ATPReconcile
import Testing

/// Header names: the defaults, `--column FIELD=HEADER`, case and spaces, quoting.
@Suite("Column mapping")
struct ColumnMappingTests {
    @Test("mapped header names are read in any order, without regard to case")
    func mappedNames() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 2, locations: 2)  // SKU-s at Ll holds 10 + s + l
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("export.csv", """
            QTY , item,Store_Id,COST
            10,SKU-0,L0,2.5
            99,SKU-1,L1,2.5
            """)
        let (summary, sink) = try fixture.reconcile(snapshotPath, erp,
                                                    mapping: ["location=STORE_ID", "sku=ITEM", "quantity=qty", "unit_cost=cost"])
        #expect(summary.badRowCount == 0)
        #expect(sink.variances.filter { $0.kind == .differs }.map(\.description) == ["differs L1/SKU-1 erp 99 engine 12"])
        #expect(sink.variances.first { $0.kind == .differs }?.unitCostMicros == 2_500_000)
        #expect(summary.total.matching == 1 && summary.total.engineOnly == 2)
    }

    @Test("without the mapping, the ERP's own names are unknown and the required ones missing")
    func unmappedNamesFail() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 1, locations: 1)
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("export.csv", "STORE_ID,ITEM,QTY\nL0,SKU-0,10\n")
        #expect(throws: ReconcileError.self) { try fixture.reconcile(snapshotPath, erp) }
    }

    @Test("bad --column specifications are usage errors", arguments: [
        "location", "place=STORE", "location=", "sku=A,sku=B", "sku=X,location=x",
    ])
    func badSpecifications(_ text: String) {
        #expect(throws: ReconcileError.self) { try ERPColumnMapping(specifications: text.split(separator: ",").map(String.init)) }
    }

    @Test("quoted names keep their commas and quotes; a quoted field may span lines")
    func quotedFields() throws {
        let fixture = try ReconcileFixture()
        try fixture.apply([(.receive, "SKU,\"7\"", "L 0", 5), (.receive, "SKU-8", "L1", 6), (.receive, "SKU-9", "L1", 7)])
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("quoted.csv", "location,sku,quantity\r\n\"L 0\",\"SKU,\"\"7\"\"\",5\r\n  L1 , SKU-8 , 6 \r\n\"L\n1\",SKU-9,7\nL1,SKU-9,7\n")
        let (summary, sink) = try fixture.reconcile(snapshotPath, erp)
        #expect(sink.badRows.isEmpty)
        #expect(summary.total.matching == 3, "\(sink.variances)")
        #expect(sink.variances.map(\.description) == ["erpOnly L\n1/SKU-9 erp 7 engine -"])
        #expect(sink.variances.first?.line == 4, "a record spanning lines keeps its first line's number")
    }
}
