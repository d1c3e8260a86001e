import ATPReconcile
import Foundation
import Testing

/// Each kind of bad input, with its line number: listed and skipped in lenient mode, the first one
/// stopping the run under --strict.
@Suite("Bad rows")
struct BadRowTests {
    /// A file with one bad row of every kind, each on a known line, among good rows.
    static let mixed = """
        location,sku,quantity,unit_cost,as_of,comment
        L0,SKU-0,10,,,
        L0,SKU-1,12.5,,,
        L1,SKU-1,-3,,,
        L0,SKU-0,10,,,
        L1,SKU-0,11,,,extra,field
        L0,\(String(repeating: "X", count: 65)),1,,,
        L1,SKU-2,13,abc,,
        L0,SKU-2,12,,yesterday,
        "L1,SKU-3,1,,,
        """
    // Line 1: unknownColumn (comment). 3: nonInteger. 4: negative. 5: duplicate of line 2.
    // 6: malformed (7 fields). 7: invalid name. 8: invalid unit cost. 9: invalid as_of.
    // 10: unclosed quote to the end of the file.

    static let expectedProblems: [(Int, BadRowProblem)] = [
        (1, .unknownColumn), (3, .nonIntegerQuantity), (4, .negativeQuantity), (5, .duplicateCell), (6, .malformedRow),
        (7, .invalidName), (8, .invalidUnitCost), (9, .invalidAsOf), (10, .malformedRow),
    ]

    @Test("lenient mode lists every bad row with its line and reconciles the good ones")
    func lenientListsAll() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 3, locations: 2)
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("counts.csv", Self.mixed)
        let (summary, sink) = try fixture.reconcile(snapshotPath, erp)
        #expect(sink.badRows.map { "\($0.line) \($0.problem)" } == Self.expectedProblems.map { "\($0.0) \($0.1)" })
        #expect(summary.mode == "lenient")
        #expect(summary.badRowCount == 9)
        #expect(summary.badRowsByProblem[.malformedRow] == 2)
        #expect(summary.badRowsListed.count == 9)
        #expect(summary.rowsRead == 9, "data rows, bad ones included")
        // Good rows: line 2 (L0/SKU-0 = 10, matches). Every other cell of the snapshot is engine-only.
        #expect(summary.total.matching == 1)
        #expect(summary.total.engineOnly == 5)
        #expect(sink.badRows[1].message == "quantity \"12.5\" is not a whole number")
        #expect(sink.badRows[2].message == "quantity \"-3\" is negative")
        #expect(!summary.isClean)
    }

    @Test("strict mode stops at the first bad row, naming its line, and writes no report", arguments: [
        ("location,sku,quantity\nL0,SKU-0,10\nL0,SKU-1,x\nL0,SKU-2,-1\n", 3, BadRowProblem.nonIntegerQuantity),
        ("location,sku,quantity\nL0,SKU-0,10\n\nL0,SKU-1,-1\n", 4, .negativeQuantity),
        ("location,sku,quantity\nL0,SKU-0,10\nL0,SKU-0,10\n", 3, .duplicateCell),
        ("location,sku,quantity\nL0,SKU-0,10\nL0,SKU-1\n", 3, .malformedRow),
        ("location,sku,quantity,color\nL0,SKU-0,10,red\n", 1, .unknownColumn),
        ("location,sku,quantity\nL9,NEW,1\nL9,NEW,1\n", 3, .duplicateCell),
    ])
    func strictStopsAtFirst(text: String, line: Int, problem: BadRowProblem) throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 3, locations: 2)
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("counts.csv", text)
        var run = ReconcileRun(snapshotPath: snapshotPath, options: ReconcileOptions(erpPath: erp),
                               reportDirectory: fixture.directory + "/report", adjustmentsPath: fixture.directory + "/adj.csv")
        run.options.isStrict = true
        do {
            _ = try run.run()
            Issue.record("strict mode did not stop")
        } catch {
            guard case .badRow(let file, let row) = error else { Issue.record("unexpected \(error)"); return }
            #expect(file == erp)
            #expect(row.line == line)
            #expect(row.problem == problem)
            #expect("\(error)".hasPrefix("\(erp):\(line): \(problem.rawValue)"))
        }
        let left = try FileManager.default.contentsOfDirectory(atPath: fixture.directory + "/report")
        #expect(left.isEmpty, "no partial report: \(left)")
        #expect(!FileManager.default.fileExists(atPath: fixture.directory + "/adj.csv"))
    }

    @Test("a row that is not UTF-8 is a bad row with its line; a UTF-8 byte order mark is skipped")
    func encoding() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 2, locations: 1)
        let snapshotPath = try fixture.snapshot()
        var bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("location,sku,quantity\nL0,SKU-0,10\nL0,SKU-".utf8)
        bytes += [0xC3, 0x28] + Array(",3\nL0,SKU-1,11\n".utf8)
        let erp = try fixture.bytesFile("latin.csv", bytes)
        let (summary, sink) = try fixture.reconcile(snapshotPath, erp)
        #expect(sink.badRows.map(\.line) == [3])
        #expect(sink.badRows.first?.problem == .encoding)
        #expect(summary.total.matching == 2, "the header was read past the BOM, lines 2 and 4 match")
        #expect(throws: ReconcileError.self) { try fixture.reconcile(snapshotPath, erp, strict: true) }
    }

    @Test("a UTF-16 file is refused as a whole")
    func utf16() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 1, locations: 1)
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.bytesFile("utf16.csv", [0xFF, 0xFE] + Array("location,sku,quantity\n".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        do {
            _ = try fixture.reconcile(snapshotPath, erp)
            Issue.record("a UTF-16 file was read")
        } catch let error as ReconcileError {
            guard case .encoding = error else { Issue.record("unexpected \(error)"); return }
            #expect("\(error)".contains("UTF-16"))
        }
    }

    @Test("a row longer than the limit is reported once and skipped to the next line")
    func rowTooLong() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 2, locations: 1)
        let snapshotPath = try fixture.snapshot()
        let long = "L0,\"" + String(repeating: "y", count: 70_000) + "\",1\n"
        let erp = try fixture.file("long.csv", "location,sku,quantity\nL0,SKU-0,10\n" + long + "L0,SKU-1,11\n")
        let (summary, sink) = try fixture.reconcile(snapshotPath, erp)
        #expect(sink.badRows.map { "\($0.line) \($0.problem)" } == ["3 rowTooLong"])
        #expect(summary.total.matching == 2)

        // An unclosed quote running past the whole buffer (1 MiB chunk + 64 KiB): reported, then
        // the reader resynchronises at the next line break.
        let runaway = "L0,\"" + String(repeating: "z,", count: 600_000) + "\n"
        let erp2 = try fixture.file("runaway.csv", "location,sku,quantity\nL0,SKU-0,10\n" + runaway + runaway + "L0,SKU-1,11\n")
        let (summary2, sink2) = try fixture.reconcile(snapshotPath, erp2)
        #expect(sink2.badRows.map(\.problem).first == .rowTooLong)
        #expect(sink2.badRows.first?.line == 3)
        #expect(summary2.total.matching == 2, "the row after the runaway quote is read: \(sink2.badRows)")
    }

    @Test("a header without a required column stops the run with its line")
    func missingColumn() throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 1, locations: 1)
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("counts.csv", "\nlocation,item,quantity\nL0,SKU-0,10\n")
        do {
            _ = try fixture.reconcile(snapshotPath, erp)
            Issue.record("a header without sku was accepted")
        } catch let error as ReconcileError {
            guard case .header(_, let line, let message) = error else { Issue.record("unexpected \(error)"); return }
            #expect(line == 2)
            #expect(message.contains("lacks the sku column"), "\(message)")
        }
    }
}
