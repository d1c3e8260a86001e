import ATPLedger
import ATPReconcile
import ATPSnapshot
import Foundation
import Testing

/// An engine with a known set of cells, snapshots of it in a temporary directory, ERP files
/// written there, and a sink that keeps what the diff reports.
final class ReconcileFixture {
    let engine: Engine
    let directory: String
    private var nextSequence: UInt64 = 1

    init() throws {
        var configuration = LedgerConfiguration()
        configuration.shardCount = 8
        configuration.workerCount = 2
        configuration.workerSpinIterations = 50
        engine = try Engine(configuration: configuration, clock: .manual())
        var template = Array((NSTemporaryDirectory() + "/atp-reconcile-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        directory = String(cString: try #require(created))
    }

    deinit {
        engine.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The data directory snapshots go to (`<directory>/data/snapshots/...`).
    var dataDirectory: String { directory + "/data" }

    /// Applies `kind` events (names interned on the way); every one must apply.
    func apply(_ events: [(kind: StockEventKind, sku: String, location: String, quantity: Int64)],
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let source = try engine.catalog.source("test")
        var batch: [StockEvent] = []
        for event in events {
            batch.append(StockEvent(kind: event.kind, sku: try engine.catalog.sku(event.sku),
                                    location: try engine.catalog.location(event.location), quantity: event.quantity,
                                    source: source, sequence: nextSequence))
            nextSequence += 1
        }
        let result = engine.apply(EventBatch(events: batch))
        #expect(result.outcomes.allSatisfy { $0 == .applied }, "\(result.outcomes)", sourceLocation: sourceLocation)
    }

    /// Receives `quantity` of every (SKU-s, L-l) for s < skus, l < locations, quantity 10 + s + l.
    func populate(skus: Int, locations: Int) throws {
        var events: [(StockEventKind, String, String, Int64)] = []
        for s in 0..<skus {
            for l in 0..<locations { events.append((.receive, "SKU-\(s)", "L\(l)", Int64(10 + s + l))) }
        }
        try apply(events)
    }

    /// Captures the engine and writes a snapshot; answers its directory.
    func snapshot() throws -> String {
        engine.waitUntilIdle()
        let image = engine.captureImage { _ in 0 }
        let store = SnapshotStore(directory: dataDirectory, keep: 10)
        return try store.write(image, metadata: SnapshotMetadata(engineVersion: "reconcile tests")).path
    }

    /// Writes `text` to a file in the fixture's directory; answers its path.
    func file(_ name: String, _ text: String) throws -> String {
        try bytesFile(name, Array(text.utf8))
    }

    /// Writes raw bytes to a file in the fixture's directory; answers its path.
    func bytesFile(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = directory + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Runs the diff of `erpPath` against the snapshot at `snapshotPath` with a collecting sink.
    func reconcile(_ snapshotPath: String, _ erpPath: String, strict: Bool = false, mapping: [String] = [],
                   top: Int = 20) throws -> (ReconcileSummary, CollectingSink) {
        let index = try SnapshotCellIndex.load(snapshotAt: snapshotPath)
        var options = ReconcileOptions(erpPath: erpPath)
        options.isStrict = strict
        options.mapping = try ERPColumnMapping(specifications: mapping)
        options.topCount = top
        let sink = CollectingSink()
        var reconciler = Reconciler(index: index, options: options, sinks: [sink])
        return (try reconciler.run(), sink)
    }

    /// The contents of a file.
    func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
}

/// A variance with owned names, for comparisons.
struct ReportedVariance: Hashable, CustomStringConvertible {
    var kind: VarianceKind
    var location: String
    var sku: String
    var erpQuantity: Int64?
    var engineOnHand: Int64?
    var units: Int64
    var unitCostMicros: Int64?
    var line: Int?

    var description: String {
        "\(kind.rawValue) \(location)/\(sku) erp \(erpQuantity.map(String.init) ?? "-") engine \(engineOnHand.map(String.init) ?? "-")"
    }
}

/// Keeps every variance and bad row the diff reports.
final class CollectingSink: VarianceSink {
    var variances: [ReportedVariance] = []
    var badRows: [BadRow] = []

    func write(_ variance: Variance) throws(ReconcileError) {
        variances.append(ReportedVariance(kind: variance.kind, location: variance.locationName, sku: variance.skuName,
                                          erpQuantity: variance.erpQuantity, engineOnHand: variance.engineOnHand,
                                          units: variance.units, unitCostMicros: variance.unitCostMicros, line: variance.line))
    }

    func write(_ badRow: BadRow) throws(ReconcileError) { badRows.append(badRow) }
}
