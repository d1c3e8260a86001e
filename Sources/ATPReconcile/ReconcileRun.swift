import ATPSnapshot

/// One whole reconciliation as `atp reconcile` runs it: load the snapshot's index, diff the ERP
/// file against it, write the report files and (optionally) the adjustment events.
public struct ReconcileRun {
    /// The snapshot directory (`…/snapshots/snapshot-<id>`).
    public var snapshotPath: String
    /// The diff's options.
    public var options: ReconcileOptions
    /// Where the report files go.
    public var reportDirectory: String
    /// Where to write count events that align the engine with the ERP file, if anywhere.
    public var adjustmentsPath: String?
    /// The first sequence number of the adjustment events.
    public var adjustmentFirstSequence: UInt64 = 1

    /// A run from its parts.
    public init(snapshotPath: String, options: ReconcileOptions, reportDirectory: String, adjustmentsPath: String? = nil) {
        self.snapshotPath = snapshotPath
        self.options = options
        self.reportDirectory = reportDirectory
        self.adjustmentsPath = adjustmentsPath
    }

    /// What a run produced.
    public struct Outcome: Sendable {
        /// The diff's summary.
        public var summary: ReconcileSummary
        /// Adjustment events written (0 without `adjustmentsPath`).
        public var adjustmentCount: Int
    }

    /// Runs it. Nothing is left in `reportDirectory` or at `adjustmentsPath` when it throws.
    /// Throws `ReconcileError`.
    public func run(progress: (ReconcileProgress) -> Void = { _ in }) throws(ReconcileError) -> Outcome {
        let index = try Self.loadIndex(snapshotPath) { done, total in
            progress(ReconcileProgress(phase: .loadingSnapshot, done: done, total: total))
        }
        let report = try ReportFiles(directory: reportDirectory)
        var adjustments: AdjustmentWriter?
        do throws(ReconcileError) {
            if let adjustmentsPath {
                adjustments = try AdjustmentWriter(path: adjustmentsPath, firstSequence: adjustmentFirstSequence,
                                                   defaultEventMilliseconds: index.info.cutWallClockMilliseconds)
            }
            var sinks: [any VarianceSink] = [report]
            if let adjustments { sinks.append(adjustments) }
            var reconciler = Reconciler(index: index, options: options, sinks: sinks)
            var summary = try reconciler.run(progress: progress)
            summary.snapshotIndexBytes = max(summary.snapshotIndexBytes, index.memoryBytes)
            try report.finish(summary: summary)
            try adjustments?.finish()
            return Outcome(summary: summary, adjustmentCount: adjustments?.eventCount ?? 0)
        } catch {
            report.discard()
            adjustments?.discard()
            throw error
        }
    }

    /// The index of the snapshot at `path`, with its errors as `ReconcileError`.
    public static func loadIndex(_ path: String, progress: (Int, Int) -> Void = { _, _ in }) throws(ReconcileError) -> SnapshotCellIndex {
        do {
            return try SnapshotCellIndex.load(snapshotAt: path, progress: progress)
        } catch let error as SnapshotError {
            throw .snapshot(error)
        } catch let error as SnapshotIndexError {
            throw .snapshotContent(path: path, error)
        } catch {
            throw .file(path: path, "\(error)")
        }
    }
}

/// The short human summary `atp reconcile` prints.
public enum TerminalSummary {
    /// The summary's lines: what ran, the counts, the largest variances and locations, the files.
    public static func lines(_ outcome: ReconcileRun.Outcome, reportDirectory: String, adjustmentsPath: String?,
                             topShown: Int = 10, locationsShown: Int = 5) -> [String] {
        let summary = outcome.summary
        let total = summary.total
        var lines = ["reconciled \(summary.erpPath) against snapshot \(summary.snapshotID) (cut \(CivilTime.iso8601(milliseconds: summary.snapshotCutWallClockMilliseconds)), \(NumberText.grouped(summary.snapshotCellCount)) cells), \(summary.mode) mode"]
        let rows: [(String, String)] = [
            ("rows read", NumberText.grouped(summary.rowsRead)),
            ("bad rows", NumberText.grouped(summary.badRowCount)),
            ("cells compared", NumberText.grouped(total.cellsCompared)),
            ("matching", NumberText.grouped(total.matching) + "  (\(total.accuracyPercent)% accurate)"),
            ("differing", NumberText.grouped(total.differing)),
            ("only in ERP", NumberText.grouped(total.erpOnly)),
            ("only in engine", NumberText.grouped(total.engineOnly)),
            ("abs. variance", NumberText.grouped(total.absoluteUnits) + " units" + (total.valuedCells > 0
                ? ", value \(NumberText.decimal(micros: total.absoluteValueMicros)) (\(NumberText.grouped(total.valuedCells)) cells with a unit cost)" : "")),
            ("net variance", NumberText.grouped(total.netUnits) + " units" + (total.valuedCells > 0
                ? ", value \(NumberText.decimal(micros: total.netValueMicros))" : "")),
        ]
        for (label, value) in rows { lines.append("  " + pad(label, 16) + value) }
        if summary.badRowCount > 0 {
            let byProblem = BadRowProblem.allCases.compactMap { problem in
                summary.badRowsByProblem[problem].map { "\(problem.rawValue) \($0)" }
            }
            lines.append("bad rows (\(byProblem.joined(separator: ", "))):")
            for row in summary.badRowsListed.prefix(5) { lines.append("  line \(row.line): \(row.problem.rawValue): \(row.message)") }
            if summary.badRowCount > 5 { lines.append("  ... \(summary.badRowCount - 5) more in \(ReportFiles.fileNames.badRows)") }
        }
        if !summary.erpOnlyDuplicatesFullyChecked {
            lines.append("note: more rows were not in the snapshot than tracked; duplicates among the later ones were not checked")
        }
        if !summary.top.isEmpty {
            lines.append("largest variances:")
            lines += table(["STATUS", "LOCATION", "SKU", "ERP", "ENGINE", "VARIANCE", "VALUE"],
                           summary.top.prefix(topShown).map { variance in
                [variance.kind.rawValue, variance.location, variance.sku, variance.erpQuantity.map { String($0) } ?? "-",
                 variance.engineOnHand.map { String($0) } ?? "-", String(variance.units),
                 variance.valueMicros.map { NumberText.decimal(micros: $0) } ?? "-"]
            })
        }
        let worst = summary.byLocation.filter { $0.tally.cellsCompared > $0.tally.matching }.prefix(locationsShown)
        if !worst.isEmpty {
            lines.append("locations with the largest variances:")
            lines += table(["LOCATION", "COMPARED", "MATCHING", "ACCURACY", "ABS UNITS", "ABS VALUE"], worst.map { line in
                [line.location, String(line.tally.cellsCompared), String(line.tally.matching), line.tally.accuracyPercent + "%",
                 String(line.tally.absoluteUnits), NumberText.decimal(micros: line.tally.absoluteValueMicros)]
            })
        }
        lines.append("report: \(reportDirectory)/{\(ReportFiles.fileNames.summary),\(ReportFiles.fileNames.variancesCSV),\(ReportFiles.fileNames.variancesJSON),\(ReportFiles.fileNames.locations),\(ReportFiles.fileNames.badRows)}")
        if let adjustmentsPath {
            lines.append("adjustments: \(NumberText.grouped(outcome.adjustmentCount)) count events in \(adjustmentsPath) (review, then: atp ingest \(adjustmentsPath) --source reconcile-\(summary.snapshotID))")
        }
        lines.append("elapsed \(NumberText.grouped(summary.elapsedMilliseconds)) ms")
        return lines
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(1, width - text.count))
    }

    /// Columns aligned: text left, numbers right.
    private static func table(_ header: [String], _ rows: [[String]]) -> [String] {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        let numeric = header.indices.map { column in
            rows.allSatisfy { row in row[column] == "-" || row[column].allSatisfy { "0123456789-.%".contains($0) } }
        }
        return all.map { row in
            "  " + row.indices.map { column in
                let gap = String(repeating: " ", count: widths[column] - row[column].count)
                return numeric[column] ? gap + row[column] : row[column] + gap
            }.joined(separator: "  ")
        }
    }
}
