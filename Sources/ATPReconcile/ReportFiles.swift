/// The report of a reconciliation, written to a directory (docs/RECONCILE.md, "Report files"):
///
/// - `variances.csv` and `variances.jsonl`: every differing cell, streamed as found;
/// - `bad-rows.csv`: every bad row, streamed;
/// - `locations.csv`: the summary by location;
/// - `summary.json`: mode, counts, totals, by location, the top variances, the first bad rows.
///
/// Each file is written to `<name>.tmp` and renamed into place by `finish(summary:)`, so a run that
/// fails (or stops under `--strict`) leaves no partial report behind: `discard()` removes them.
public final class ReportFiles: VarianceSink {
    /// The directory.
    public let directory: String
    private let variancesCSV: BufferedFileOutput
    private let variancesJSON: BufferedFileOutput
    private let badRowsCSV: BufferedFileOutput

    /// The file names, for messages and the summary.
    public static let fileNames = (variancesCSV: "variances.csv", variancesJSON: "variances.jsonl",
                                   badRows: "bad-rows.csv", locations: "locations.csv", summary: "summary.json")

    /// The header of variances.csv.
    public static let variancesHeader =
        "status,location,sku,erp_quantity,engine_on_hand,variance,unit_cost,variance_value,as_of,erp_line\n"

    /// Starts the report files in `directory` (created if missing). Throws `ReconcileError.file`.
    public init(directory: String) throws(ReconcileError) {
        try FileTree.makeDirectories(directory)
        self.directory = directory
        variancesCSV = try BufferedFileOutput(path: directory + "/" + Self.fileNames.variancesCSV)
        variancesJSON = try BufferedFileOutput(path: directory + "/" + Self.fileNames.variancesJSON)
        badRowsCSV = try BufferedFileOutput(path: directory + "/" + Self.fileNames.badRows)
        variancesCSV.text(Self.variancesHeader)
        badRowsCSV.text("erp_line,problem,message\n")
    }

    /// Writes one variance to variances.csv and variances.jsonl.
    public func write(_ variance: Variance) throws(ReconcileError) {
        let csv = variancesCSV
        csv.text(variance.kind.rawValue)
        csv.byte(44)
        csv.csvField(variance.location)
        csv.byte(44)
        csv.csvField(variance.sku)
        csv.byte(44)
        if let quantity = variance.erpQuantity { csv.integer(quantity) }
        csv.byte(44)
        if let onHand = variance.engineOnHand { csv.integer(onHand) }
        csv.byte(44)
        csv.integer(variance.units)
        csv.byte(44)
        if let cost = variance.unitCostMicros { csv.text(NumberText.decimal(micros: Int128(cost))) }
        csv.byte(44)
        if let value = variance.valueMicros { csv.text(NumberText.decimal(micros: value)) }
        csv.byte(44)
        if let asOf = variance.asOfMilliseconds { csv.text(CivilTime.iso8601(milliseconds: asOf)) }
        csv.byte(44)
        if let line = variance.line { csv.integer(Int64(line)) }
        csv.byte(10)
        try csv.endRecord()

        let json = variancesJSON
        json.text("{\"status\":\"")
        json.text(variance.kind.rawValue)
        json.text("\",\"location\":")
        json.jsonString(variance.location)
        json.text(",\"sku\":")
        json.jsonString(variance.sku)
        json.text(",\"erpQuantity\":")
        if let quantity = variance.erpQuantity { json.integer(quantity) } else { json.text("null") }
        json.text(",\"engineOnHand\":")
        if let onHand = variance.engineOnHand { json.integer(onHand) } else { json.text("null") }
        json.text(",\"variance\":")
        json.integer(variance.units)
        json.text(",\"unitCost\":")
        if let cost = variance.unitCostMicros { json.text(NumberText.decimal(micros: Int128(cost))) } else { json.text("null") }
        json.text(",\"varianceValue\":")
        if let value = variance.valueMicros { json.text(NumberText.decimal(micros: value)) } else { json.text("null") }
        json.text(",\"asOf\":")
        if let asOf = variance.asOfMilliseconds { json.jsonString(CivilTime.iso8601(milliseconds: asOf)) } else { json.text("null") }
        json.text(",\"erpLine\":")
        if let line = variance.line { json.integer(Int64(line)) } else { json.text("null") }
        json.text("}\n")
        try json.endRecord()
    }

    /// Writes one bad row to bad-rows.csv.
    public func write(_ badRow: BadRow) throws(ReconcileError) {
        badRowsCSV.integer(Int64(badRow.line))
        badRowsCSV.byte(44)
        badRowsCSV.text(badRow.problem.rawValue)
        badRowsCSV.byte(44)
        badRowsCSV.csvField(badRow.message)
        badRowsCSV.byte(10)
        try badRowsCSV.endRecord()
    }

    /// Writes locations.csv and summary.json and renames every file into place.
    public func finish(summary: ReconcileSummary) throws(ReconcileError) {
        let locations = try BufferedFileOutput(path: directory + "/" + Self.fileNames.locations)
        locations.text("location,in_snapshot,cells_compared,matching,differing,erp_only,engine_only,accuracy_percent,absolute_unit_variance,net_unit_variance,valued_cells,absolute_value_variance,net_value_variance\n")
        for line in summary.byLocation {
            let tally = line.tally
            locations.csvField(line.location)
            locations.text(line.isInSnapshot ? ",true," : ",false,")
            locations.text([tally.cellsCompared, tally.matching, tally.differing, tally.erpOnly, tally.engineOnly]
                .map(String.init).joined(separator: ","))
            locations.text(",\(tally.accuracyPercent),\(tally.absoluteUnits),\(tally.netUnits),\(tally.valuedCells),")
            locations.text("\(NumberText.decimal(micros: tally.absoluteValueMicros)),\(NumberText.decimal(micros: tally.netValueMicros))\n")
            try locations.endRecord()
        }
        let json = try BufferedFileOutput(path: directory + "/" + Self.fileNames.summary)
        json.text(ReportJSON.summary(summary, reportDirectory: directory))
        json.byte(10)
        for file in [variancesCSV, variancesJSON, badRowsCSV, locations, json] { try file.commit() }
    }

    /// Removes the files written so far (a failed or stopped run).
    public func discard() {
        for file in [variancesCSV, variancesJSON, badRowsCSV] { file.discard() }
    }
}

/// The JSON form of a summary (one object, keys in a fixed order).
public enum ReportJSON {
    /// summary.json's text (and what `atp reconcile --json` prints), on one line.
    public static func summary(_ summary: ReconcileSummary, reportDirectory: String?) -> String {
        var members: [(String, String)] = [
            ("mode", string(summary.mode)),
            ("erpFile", string(summary.erpPath)),
            ("snapshot", object([
                ("id", String(summary.snapshotID)), ("path", string(summary.snapshotPath)),
                ("cutWallClockMilliseconds", String(summary.snapshotCutWallClockMilliseconds)),
                ("cut", string(CivilTime.iso8601(milliseconds: summary.snapshotCutWallClockMilliseconds))),
                ("cellCount", String(summary.snapshotCellCount)),
            ])),
            ("rowsRead", String(summary.rowsRead)),
            ("badRows", String(summary.badRowCount)),
            ("badRowsByProblem", object(BadRowProblem.allCases.compactMap { problem in
                summary.badRowsByProblem[problem].map { (problem.rawValue, String($0)) }
            })),
        ]
        members += tally(summary.total)
        members += [
            ("erpOnlyZeroRows", String(summary.erpOnlyZeroRows)),
            ("engineOnlyZeroCells", String(summary.engineOnlyZeroCells)),
            ("erpOnlyDuplicatesFullyChecked", summary.erpOnlyDuplicatesFullyChecked ? "true" : "false"),
            ("elapsedMilliseconds", String(summary.elapsedMilliseconds)),
            ("top", "[" + summary.top.map(topVariance).joined(separator: ",") + "]"),
            ("byLocation", "[" + summary.byLocation.map { line in
                object([("location", string(line.location)), ("inSnapshot", line.isInSnapshot ? "true" : "false")] + tally(line.tally))
            }.joined(separator: ",") + "]"),
            ("badRowsListed", "[" + summary.badRowsListed.map { row in
                object([("line", String(row.line)), ("problem", string(row.problem.rawValue)), ("message", string(row.message))])
            }.joined(separator: ",") + "]"),
        ]
        if let reportDirectory {
            let names = ReportFiles.fileNames
            members.append(("files", object([
                ("variancesCSV", string(reportDirectory + "/" + names.variancesCSV)),
                ("variancesJSON", string(reportDirectory + "/" + names.variancesJSON)),
                ("badRows", string(reportDirectory + "/" + names.badRows)),
                ("locations", string(reportDirectory + "/" + names.locations)),
                ("summary", string(reportDirectory + "/" + names.summary)),
            ])))
        }
        return object(members)
    }

    private static func tally(_ tally: VarianceTally) -> [(String, String)] {
        [("cellsCompared", String(tally.cellsCompared)), ("matching", String(tally.matching)),
         ("differing", String(tally.differing)), ("erpOnly", String(tally.erpOnly)), ("engineOnly", String(tally.engineOnly)),
         ("accuracyPercent", tally.accuracyPercent), ("absoluteUnitVariance", String(tally.absoluteUnits)),
         ("netUnitVariance", String(tally.netUnits)), ("valuedCells", String(tally.valuedCells)),
         ("absoluteValueVariance", NumberText.decimal(micros: tally.absoluteValueMicros)),
         ("netValueVariance", NumberText.decimal(micros: tally.netValueMicros))]
    }

    private static func topVariance(_ variance: TopVariance) -> String {
        object([
            ("status", string(variance.kind.rawValue)), ("location", string(variance.location)), ("sku", string(variance.sku)),
            ("erpQuantity", variance.erpQuantity.map { String($0) } ?? "null"),
            ("engineOnHand", variance.engineOnHand.map { String($0) } ?? "null"),
            ("variance", String(variance.units)),
            ("unitCost", variance.unitCostMicros.map { NumberText.decimal(micros: Int128($0)) } ?? "null"),
            ("varianceValue", variance.valueMicros.map { NumberText.decimal(micros: $0) } ?? "null"),
            ("erpLine", variance.line.map { String($0) } ?? "null"),
        ])
    }

    private static func object(_ members: [(String, String)]) -> String {
        "{" + members.map { string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    /// A JSON string literal.
    static func string(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
