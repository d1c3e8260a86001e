import ATPLedger
import ATPReconcile
import ATPSnapshot
import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `erp-counts`: ERP count files with planted variances, generated from a snapshot, for testing and
/// measuring `atp reconcile` (docs/RECONCILE.md, "The generator").
@main
struct ERPCounts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erp-counts",
        abstract: "Generate ERP count files with planted variances from a snapshot.",
        subcommands: [Generate.self, MakeSnapshot.self],
        defaultSubcommand: Generate.self)
}

/// `erp-counts generate --snapshot DIR|latest [--data-dir D] --out counts.csv --truth truth.csv ...`
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a shuffled ERP count file from a snapshot, with shrink, miscounts, phantom and missing rows, and a truth file listing every planted variance.")

    @Option(help: "A snapshot directory (…/snapshots/snapshot-<id>) or latest.") var snapshot: String
    @Option(name: .customLong("data-dir"), help: "The directory holding snapshots/ (for latest).") var dataDirectory: String?
    @Option(help: "The count file to write.") var out: String
    @Option(help: "The truth file to write (every planted variance).") var truth: String?
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Fraction of cells counted 1-5 below onHand.") var shrink = 0.01
    @Option(help: "Fraction of cells counted 1-3 off either way.") var miscount = 0.01
    @Option(help: "Extra rows for cells the snapshot lacks, as a fraction of its cells.") var phantom = 0.002
    @Option(help: "Fraction of cells (onHand not 0) left out.") var missing = 0.002
    @Flag(name: .customLong("unit-costs"), help: "Write a unit_cost column.") var unitCosts = false
    @Flag(name: .customLong("as-of"), help: "Write an as_of column (the snapshot's cut time).") var asOf = false
    @Flag(name: .customLong("no-shuffle"), help: "Keep the snapshot's order.") var noShuffle = false
    @Option(name: .customLong("column"), help: "Header name of a field, FIELD=HEADER (e.g. location=STORE_ID).") var columns: [String] = []

    func run() throws {
        do throws(ReconcileError) {
            let path = try SnapshotLocator.resolve(snapshot, dataDirectory: dataDirectory)
            let index = try ReconcileRun.loadIndex(path)
            var plan = ERPCountPlan()
            plan.seed = seed
            plan.shrinkFraction = shrink
            plan.miscountFraction = miscount
            plan.phantomFraction = phantom
            plan.missingFraction = missing
            plan.includeUnitCosts = unitCosts
            plan.asOfMilliseconds = asOf ? index.info.cutWallClockMilliseconds : nil
            plan.shuffle = !noShuffle
            plan.mapping = try ERPColumnMapping(specifications: columns)
            let planted = try ERPCountGenerator.generate(from: index, plan: plan, countsPath: out, truthPath: truth)
            var byKind: [String] = []
            for kind in PlantedVariance.Kind.allCases {
                let count = planted.filter { $0.kind == kind }.count
                if count > 0 { byKind.append("\(kind.rawValue) \(count)") }
            }
            print("wrote \(out) from snapshot \(index.info.id) (\(index.cellCount) cells): \(planted.count) planted variances (\(byKind.joined(separator: ", ")))")
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// `erp-counts make-snapshot --data-dir D --skus N --locations M`: a synthetic snapshot to measure with.
struct MakeSnapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-snapshot",
        abstract: "Build an engine with SKUs × locations cells (receipts, some shipped to 0 or below) and write a snapshot of it.")

    @Option(name: .customLong("data-dir"), help: "The directory to hold snapshots/.") var dataDirectory: String
    @Option(help: "Number of SKUs.") var skus: Int
    @Option(help: "Number of locations (every SKU has a cell at each).") var locations: Int
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func validate() throws {
        guard skus >= 1, locations >= 1, skus * locations <= 100_000_000 else {
            throw ValidationError("--skus and --locations must be at least 1, at most 100M cells")
        }
    }

    func run() throws {
        var configuration = LedgerConfiguration()
        configuration.initialCellsPerShard = max(1024, skus * locations / configuration.shardCount + 1)
        let engine = try Engine(configuration: configuration)
        defer { engine.shutdown() }
        let source = try engine.catalog.source("erp-counts")
        let locationIDs = try (0..<locations).map { try engine.catalog.location(name("LOC", $0, 5)) }
        var random = SplitMix64(seed: seed)
        var sequence: UInt64 = 0
        var events: [StockEvent] = []
        events.reserveCapacity(20_000)
        func flush() {
            let result = engine.apply(EventBatch(events: events))
            precondition(result.outcomes.allSatisfy { $0 == .applied }, "every synthetic event applies")
            events.removeAll(keepingCapacity: true)
        }
        for skuNumber in 0..<skus {
            let sku = try engine.catalog.sku(name("SKU", skuNumber, 8))
            for location in locationIDs {
                let quantity = Int64(1 + random.next() % 200)
                sequence += 1
                events.append(StockEvent(kind: .receive, sku: sku, location: location, quantity: quantity,
                                         source: source, sequence: sequence))
                let draw = random.next() % 1000
                if draw < 10 {  // 1% sold out, 0.1% short
                    sequence += 1
                    events.append(StockEvent(kind: .ship, sku: sku, location: location,
                                             quantity: quantity + (draw == 0 ? 2 : 0), source: source, sequence: sequence))
                }
                if events.count >= 10_000 { flush() }
            }
        }
        if !events.isEmpty { flush() }
        engine.waitUntilIdle()
        let image = engine.captureImage { _ in 0 }
        let store = SnapshotStore(directory: dataDirectory, keep: 100)
        let info = try store.write(image, metadata: SnapshotMetadata(engineVersion: "erp-counts make-snapshot"))
        print("wrote snapshot \(info.id) at \(info.path): \(info.cellCount) cells, \(info.dataBytes) bytes")
    }

    private func name(_ prefix: String, _ number: Int, _ digits: Int) -> String {
        let text = String(number)
        return prefix + "-" + String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
