import ATPCommandLine
import ATPReconcile
import Foundation
import Testing

/// `atp reconcile` end to end through the CLI entry point (as the `atp` executable runs it), output
/// captured.
@Suite("atp reconcile")
struct ReconcileCommandTests {
    struct Run {
        var status: ATPExitStatus
        var standardOutput: String
        var standardError: String
    }

    static func atp(_ arguments: [String], errorIsTerminal: Bool = false) async -> Run {
        let output = CapturedOutput(errorIsTerminal: errorIsTerminal)
        let status = await ATPCommandLine.run(arguments: arguments, context: CommandContext(output: output, environment: [:]))
        return Run(status: status, standardOutput: output.standardOutput, standardError: output.standardError)
    }

    @Test("differences: exit 1, the summary on stdout, every report file written, a note on stderr")
    func differences() async throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 3, locations: 2)  // SKU-s at Ll holds 10 + s + l
        _ = try fixture.snapshot()
        let erp = try fixture.file("counts.csv", """
            STORE,ITEM,QTY,unit_cost
            L0,SKU-0,10,1
            L1,SKU-0,5,2.25
            L0,SKU-1,x,
            L7,SKU-1,3,
            L0,SKU-2,12,
            L1,SKU-2,13,
            """)
        let report = fixture.directory + "/report"
        let adjust = fixture.directory + "/adjust.csv"
        let run = await Self.atp(["reconcile", "--snapshot", "latest", "--data-dir", fixture.dataDirectory, "--erp", erp,
                                  "--out-dir", report, "--emit-adjustments", adjust, "--column", "location=STORE",
                                  "--column", "sku=ITEM", "--column", "quantity=QTY"], errorIsTerminal: true)
        #expect(run.status == .partial, "\(run.standardError)")
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("against snapshot 1") == true)
        #expect(lines.first?.hasSuffix("lenient mode") == true)
        #expect(lines.contains { $0.hasPrefix("  bad rows") && $0.hasSuffix(" 1") })
        #expect(lines.contains("  line 4: nonIntegerQuantity: quantity \"x\" is not a whole number"))
        #expect(lines.contains { $0.hasPrefix("  matching") && $0.contains("(42.86% accurate)") })
        #expect(lines.contains { $0.contains("adjustments: 4 count events") })
        #expect(run.standardError.contains("atp: 4 of 7 cells differ, 1 bad rows"))
        #expect(run.standardError.contains("["), "a progress bar is drawn on a terminal")

        let variances = try fixture.read(report + "/variances.csv").split(separator: "\n").map(String.init)
        #expect(variances.first == ReportFiles.variancesHeader.trimmingCharacters(in: .newlines))
        #expect(variances.contains("differs,L1,SKU-0,5,11,-6,2.25,-13.50,,3"))
        #expect(variances.contains("erpOnly,L7,SKU-1,3,,3,,,,5"))
        #expect(variances.contains("engineOnly,L1,SKU-1,,12,-12,,,,"))
        #expect(variances.count == 5)
        #expect(try fixture.read(report + "/variances.jsonl").split(separator: "\n").count == 4)
        #expect(try fixture.read(report + "/bad-rows.csv") == "erp_line,problem,message\n4,nonIntegerQuantity,\"quantity \"\"x\"\" is not a whole number\"\n")
        let summary = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report + "/summary.json"))) as? [String: Any])
        #expect(summary["mode"] as? String == "lenient")
        #expect((summary["badRows"] as? NSNumber)?.intValue == 1)
        #expect((summary["cellsCompared"] as? NSNumber)?.intValue == 7)
        #expect((summary["top"] as? [Any])?.count == 4)
        #expect(try fixture.read(report + "/locations.csv").split(separator: "\n").count == 4)  // header, L0, L1, L7
        #expect(try fixture.read(adjust).hasPrefix(AdjustmentWriter.header))
    }

    @Test("a matching file exits 0; --json prints the summary object")
    func clean() async throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 2, locations: 1)
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("counts.csv", "sku,location,quantity\nSKU-0,L0,10\nSKU-1,L0,11\n")
        let run = await Self.atp(["reconcile", "--snapshot", snapshotPath, "--erp", erp, "--out-dir",
                                  fixture.directory + "/r", "--json", "--strict"])
        #expect(run.status == .ok, "\(run.standardError)")
        #expect(run.standardError.isEmpty)
        let object = try #require(JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any])
        #expect(object["mode"] as? String == "strict")
        #expect((object["matching"] as? NSNumber)?.intValue == 2)
        #expect(object["accuracyPercent"] as? NSNumber == 100)
    }

    @Test("strict mode stops with exit 2 and file:line; a missing snapshot or ERP file is exit 2")
    func failures() async throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 1, locations: 1)
        let snapshotPath = try fixture.snapshot()
        let erp = try fixture.file("counts.csv", "location,sku,quantity\nL0,SKU-0,-1\n")
        let strict = await Self.atp(["reconcile", "--snapshot", snapshotPath, "--erp", erp, "--out-dir",
                                     fixture.directory + "/r", "--strict"])
        #expect(strict.status == .usage)
        #expect(strict.standardError.hasPrefix("atp: \(erp):2: negativeQuantity: quantity \"-1\" is negative"))
        #expect(strict.standardOutput.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: fixture.directory + "/r/summary.json"))

        let noSnapshot = await Self.atp(["reconcile", "--snapshot", "latest", "--data-dir", fixture.directory + "/none",
                                         "--erp", erp])
        #expect(noSnapshot.status == .usage)
        #expect(noSnapshot.standardError.contains("--snapshot latest"))
        let noFile = await Self.atp(["reconcile", "--snapshot", snapshotPath, "--erp", fixture.directory + "/missing.csv",
                                     "--out-dir", fixture.directory + "/r"])
        #expect(noFile.status == .usage)
        #expect(noFile.standardError.contains("missing.csv: cannot open"))
    }

    @Test("a damaged snapshot is exit 5")
    func damagedSnapshot() async throws {
        let fixture = try ReconcileFixture()
        try fixture.populate(skus: 2, locations: 2)
        let snapshotPath = try fixture.snapshot()
        let data = snapshotPath + "/data.mdb"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: data))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: data))
        let erp = try fixture.file("counts.csv", "location,sku,quantity\nL0,SKU-0,10\n")
        let run = await Self.atp(["reconcile", "--snapshot", snapshotPath, "--erp", erp, "--out-dir", fixture.directory + "/r"])
        #expect(run.status == .serverError)
        #expect(run.standardError.contains("corrupt"))
    }
}
