import ATPReconcile
import ArgumentParser

/// `atp reconcile --snapshot <dir|latest> --erp counts.csv`: the variance report of an ERP count
/// file against a snapshot (docs/RECONCILE.md). Works on files; needs no server.
public struct ReconcileCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Compare an ERP count file with a snapshot and write a variance report (no server needed).",
        discussion: """
            The ERP file is CSV with a header naming location, sku and quantity (and optionally as_of and \
            unit_cost; --column maps other names). Every row is compared with the snapshot's onHand; the \
            report (summary.json, variances.csv, variances.jsonl, locations.csv, bad-rows.csv) goes to \
            --out-dir. Bad rows are listed and skipped, or with --strict the first one stops the run and \
            nothing is written. Exit status 0 when everything matched, 1 when cells differ or rows were \
            bad, 2 for bad arguments, unreadable files or a --strict stop, 5 for a damaged snapshot. \
            See docs/RECONCILE.md.
            """)

    /// --json applies; host, port and token are not used.
    @OptionGroup public var global: GlobalOptions
    @Option(name: .long, help: "A snapshot directory (…/snapshots/snapshot-<id>), or latest (with --data-dir).")
    var snapshot: String
    @Option(name: .customLong("data-dir"), help: "The directory holding snapshots/ (for --snapshot latest).")
    var dataDirectory: String?
    @Option(name: .long, help: "The ERP count file (CSV, UTF-8, with a header line).") var erp: String
    @Option(name: .customLong("out-dir"), help: "Where to write the report files (created if missing).")
    var outDirectory = "reconcile-report"
    @Option(name: .long, help: "How many of the largest variances the summary lists.") var top = 20
    @Flag(name: .long, help: "Stop at the first bad row (nothing is written) instead of listing them all.") var strict = false
    @Option(name: .customLong("emit-adjustments"), help: "Write count events that align the engine with the ERP file (for atp ingest).")
    var adjustmentsPath: String?
    @Option(name: .customLong("adjustment-first-sequence"), help: "The first sequence number of the adjustment events.")
    var adjustmentFirstSequence: UInt64 = 1
    @Option(name: .customLong("column"), help: "Header name of a field: FIELD=HEADER, e.g. --column location=STORE_ID --column sku=ITEM --column quantity=QTY.")
    var columns: [String] = []

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks ranges.
    public func validate() throws {
        if top < 0 || top > 100_000 { throw ValidationError("--top must be from 0 to 100000, got \(top)") }
        if adjustmentFirstSequence < 1 { throw ValidationError("--adjustment-first-sequence must be at least 1") }
    }

    /// Runs the reconciliation and prints its summary.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let printer = Printer(context, settings)
        let outcome: ReconcileRun.Outcome
        do throws(ReconcileError) {
            var options = ReconcileOptions(erpPath: erp)
            options.mapping = try ERPColumnMapping(specifications: columns)
            options.isStrict = strict
            options.topCount = top
            var run = ReconcileRun(snapshotPath: try SnapshotLocator.resolve(snapshot, dataDirectory: dataDirectory),
                                   options: options, reportDirectory: outDirectory, adjustmentsPath: adjustmentsPath)
            run.adjustmentFirstSequence = adjustmentFirstSequence
            var bar: (phase: ReconcileProgress.Phase, bar: ProgressBar)?
            let showProgress = context.output.isErrorTerminal && !settings.json
            defer { bar?.bar.finish() }
            outcome = try run.run { progress in
                guard showProgress else { return }
                if bar?.phase != progress.phase {
                    bar?.bar.finish()
                    bar = (progress.phase, ProgressBar(output: context.output, total: progress.total,
                                                       unit: progress.phase.rawValue, isEnabled: true))
                }
                bar?.bar.update(done: progress.done)
            }
        } catch {
            throw Self.commandLineError(error)
        }
        if settings.json {
            context.output.line(ReportJSON.summary(outcome.summary, reportDirectory: outDirectory))
        } else {
            for line in TerminalSummary.lines(outcome, reportDirectory: outDirectory, adjustmentsPath: adjustmentsPath) {
                context.output.line(line)
            }
        }
        if outcome.summary.isClean { return .ok }
        let total = outcome.summary.total
        printer.note("\(total.cellsCompared - total.matching) of \(total.cellsCompared) cells differ, \(outcome.summary.badRowCount) bad rows")
        return .partial
    }

    /// The exit status of a failure: a damaged snapshot is `serverError` (5, "other error");
    /// everything else (arguments, unreadable or unwritable files, encoding, header, --strict) `usage`.
    static func commandLineError(_ error: ReconcileError) -> CommandLineError {
        switch error {
        case .snapshot(let snapshotError):
            switch snapshotError {
            case .corrupt, .invalidImage, .unsupportedFormat, .lmdb:
                return CommandLineError(status: .serverError, message: "\(error)")
            default:
                return .usage("\(error)")
            }
        case .snapshotContent:
            return CommandLineError(status: .serverError, message: "\(error)")
        default:
            return .usage("\(error)")
        }
    }
}
