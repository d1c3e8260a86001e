/// Limits of a reconciliation, with their units in their names.
public struct ReconcileLimits: Sendable, Equatable {
    /// Bytes read from the ERP file at a time. Default 1 MiB.
    public var readChunkBytes = 1 << 20
    /// The longest ERP row, in bytes; a longer one is a bad row (`rowTooLong`). Default 64 KiB.
    public var rowBytesMax = 1 << 16
    /// Distinct (location, sku) keys of rows not in the snapshot remembered to find duplicates among
    /// them; past it such duplicates are no longer detected and the summary says so. Default 1,000,000
    /// (about 40 MB at most).
    public var erpOnlyKeysTrackedMax = 1_000_000
    /// Location names not in the snapshot given their own line in the by-location summary; rows at
    /// further unknown locations are summed under `(other locations)`. Default 10,000.
    public var extraLocationsTrackedMax = 10_000
    /// Bad rows kept in memory for the summary (all of them go to bad-rows.csv). Default 100.
    public var badRowsKeptMax = 100

    /// The defaults.
    public init() {}
}

/// How a reconciliation runs.
public struct ReconcileOptions: Sendable {
    /// The ERP count file (CSV with a header line).
    public var erpPath: String
    /// Header names of the fields.
    public var mapping = ERPColumnMapping()
    /// Stop at the first bad row (true) or list them all and go on (false).
    public var isStrict = false
    /// Largest variances kept for the summary. Default 20.
    public var topCount = 20
    /// Limits in force.
    public var limits = ReconcileLimits()

    /// Options for `erpPath` with the defaults.
    public init(erpPath: String) { self.erpPath = erpPath }
}

/// How a cell differs.
public enum VarianceKind: String, Sendable, CaseIterable {
    /// In the ERP file and in the snapshot, with different quantities.
    case differs
    /// In the ERP file only (a quantity above 0 for a cell the snapshot does not have).
    case erpOnly
    /// In the snapshot only (onHand not 0, and the ERP file has no row for the cell).
    case engineOnly
}

/// One differing cell, as the diff hands it to the report writers. The name bytes are valid only
/// during the call that receives them.
public struct Variance {
    /// How the cell differs.
    public var kind: VarianceKind
    /// The ERP line of the row (nil for `engineOnly`).
    public var line: Int?
    /// The SKU's UTF-8 bytes.
    public var sku: UnsafeRawBufferPointer
    /// The location's UTF-8 bytes.
    public var location: UnsafeRawBufferPointer
    /// The ERP's quantity (nil for `engineOnly`: taken as 0).
    public var erpQuantity: Int64?
    /// The engine's onHand at the snapshot (nil for `erpOnly`: taken as 0).
    public var engineOnHand: Int64?
    /// The row's unit cost in millionths, when the file gives one.
    public var unitCostMicros: Int64?
    /// The row's as_of, milliseconds since 1970, when given.
    public var asOfMilliseconds: Int64?

    /// ERP − engine, in units.
    public var units: Int64 { (erpQuantity ?? 0) - (engineOnHand ?? 0) }
    /// `units` × unit cost, in millionths; nil without a unit cost.
    public var valueMicros: Int128? { unitCostMicros.map { Int128(units) * Int128($0) } }
    /// The SKU as text.
    public var skuName: String { String(decoding: sku, as: UTF8.self) }
    /// The location as text.
    public var locationName: String { String(decoding: location, as: UTF8.self) }
}

/// A variance kept for the top list (owns its names).
public struct TopVariance: Sendable, Equatable, Comparable {
    /// How the cell differs.
    public var kind: VarianceKind
    /// ERP line, nil for engine-only cells.
    public var line: Int?
    /// The location.
    public var location: String
    /// The SKU.
    public var sku: String
    /// ERP quantity (nil: no row).
    public var erpQuantity: Int64?
    /// Engine onHand (nil: no cell).
    public var engineOnHand: Int64?
    /// ERP − engine.
    public var units: Int64
    /// Unit cost in millionths, when given.
    public var unitCostMicros: Int64?
    /// Variance value in millionths, when a unit cost is given.
    public var valueMicros: Int128?

    init(_ variance: Variance) {
        kind = variance.kind
        line = variance.line
        location = variance.locationName
        sku = variance.skuName
        erpQuantity = variance.erpQuantity
        engineOnHand = variance.engineOnHand
        units = variance.units
        unitCostMicros = variance.unitCostMicros
        valueMicros = variance.valueMicros
    }

    /// Ordered by size: absolute value, then absolute units (ties by location and SKU, so the
    /// order is total and the list reproducible).
    public static func < (a: TopVariance, b: TopVariance) -> Bool {
        let valueA = a.valueMicros.map { $0.magnitude } ?? 0
        let valueB = b.valueMicros.map { $0.magnitude } ?? 0
        if valueA != valueB { return valueA < valueB }
        if a.units.magnitude != b.units.magnitude { return a.units.magnitude < b.units.magnitude }
        if a.location != b.location { return a.location > b.location }
        return a.sku > b.sku
    }

    /// Whether `variance` would rank above `self` (without building a TopVariance).
    static func ranksAbove(_ variance: Variance, _ floor: TopVariance) -> Bool {
        let value = variance.valueMicros.map { $0.magnitude } ?? 0
        let floorValue = floor.valueMicros.map { $0.magnitude } ?? 0
        if value != floorValue { return value > floorValue }
        if variance.units.magnitude != floor.units.magnitude { return variance.units.magnitude > floor.units.magnitude }
        return TopVariance(variance) > floor
    }
}

/// Counts and totals over a set of cells (the whole file, or one location).
public struct VarianceTally: Sendable, Equatable {
    /// Cells compared: matching + differing + ERP-only + engine-only.
    public var cellsCompared = 0
    /// Cells with the same quantity on both sides.
    public var matching = 0
    /// Cells on both sides with different quantities.
    public var differing = 0
    /// Cells with an ERP quantity above 0 that the snapshot does not have.
    public var erpOnly = 0
    /// Cells of the snapshot with onHand not 0 that the ERP file does not list.
    public var engineOnly = 0
    /// Σ |ERP − engine| over the cells compared.
    public var absoluteUnits: Int64 = 0
    /// Σ (ERP − engine): negative when the ERP counted less (shrink).
    public var netUnits: Int64 = 0
    /// Differing cells whose row gave a unit cost.
    public var valuedCells = 0
    /// Σ |ERP − engine| × unit cost over the valued cells, in millionths.
    public var absoluteValueMicros: Int128 = 0
    /// Σ (ERP − engine) × unit cost over the valued cells, in millionths.
    public var netValueMicros: Int128 = 0

    /// matching / cellsCompared as a percentage with two decimals ("100.00" when nothing was compared).
    public var accuracyPercent: String { NumberText.percent(matching, of: cellsCompared) }

    @inline(__always)
    mutating func addMatch() {
        cellsCompared += 1
        matching += 1
    }

    mutating func add(_ variance: Variance) {
        cellsCompared += 1
        switch variance.kind {
        case .differs: differing += 1
        case .erpOnly: erpOnly += 1
        case .engineOnly: engineOnly += 1
        }
        let units = variance.units
        absoluteUnits += units.magnitude > UInt64(Int64.max) ? Int64.max : Int64(units.magnitude)
        netUnits += units
        if let value = variance.valueMicros {
            valuedCells += 1
            absoluteValueMicros += value.magnitude > UInt128(Int128.max) ? Int128.max : Int128(value.magnitude)
            netValueMicros += value
        }
    }
}

/// One location's line in the summary.
public struct LocationTally: Sendable, Equatable {
    /// The location's name.
    public var location: String
    /// Whether the snapshot knows the location.
    public var isInSnapshot: Bool
    /// Its counts and totals.
    public var tally: VarianceTally
}

/// What a reconciliation found.
public struct ReconcileSummary: Sendable {
    /// `strict` or `lenient`.
    public var mode: String
    /// The ERP file.
    public var erpPath: String
    /// The snapshot's id.
    public var snapshotID: UInt64
    /// The snapshot's directory.
    public var snapshotPath: String
    /// Wall-clock time of the snapshot's cut, milliseconds since 1970.
    public var snapshotCutWallClockMilliseconds: Int64
    /// Cells in the snapshot.
    public var snapshotCellCount: Int
    /// Data rows read (not counting the header and blank lines), bad ones included.
    public var rowsRead = 0
    /// Bad rows found (header problems included).
    public var badRowCount = 0
    /// Bad rows by problem.
    public var badRowsByProblem: [BadRowProblem: Int] = [:]
    /// The first `badRowsKeptMax` bad rows.
    public var badRowsListed: [BadRow] = []
    /// Totals over all cells.
    public var total = VarianceTally()
    /// ERP rows with quantity 0 for cells the snapshot does not have (agreeing: not compared).
    public var erpOnlyZeroRows = 0
    /// Snapshot cells with onHand 0 the ERP file does not list (agreeing: not compared).
    public var engineOnlyZeroCells = 0
    /// Per location, in descending absolute value then absolute units.
    public var byLocation: [LocationTally] = []
    /// The largest variances, largest first.
    public var top: [TopVariance] = []
    /// False when more than `erpOnlyKeysTrackedMax` distinct rows were not in the snapshot, so
    /// duplicates among the later ones were not detected.
    public var erpOnlyDuplicatesFullyChecked = true
    /// Bytes of the snapshot index held in memory.
    public var snapshotIndexBytes = 0
    /// Wall time of the run, in milliseconds.
    public var elapsedMilliseconds: Int64 = 0

    /// True when every cell compared matched and no row was bad.
    public var isClean: Bool { total.cellsCompared == total.matching && badRowCount == 0 }
}

/// Where the diff sends what it finds, as it finds it (report files, adjustment events).
public protocol VarianceSink: AnyObject {
    /// One differing cell. Called in ERP file order, then for engine-only cells in (SKU id,
    /// location id) order.
    func write(_ variance: Variance) throws(ReconcileError)
    /// One bad row, in file order.
    func write(_ badRow: BadRow) throws(ReconcileError)
}

/// Progress of a run: the phase, and work done of the total (cells for the snapshot, bytes for the
/// ERP file).
public struct ReconcileProgress: Sendable {
    /// What is being done.
    public enum Phase: String, Sendable {
        /// Reading the snapshot's cells into the index (done/total in cells).
        case loadingSnapshot = "snapshot cells"
        /// Reading the ERP file (done/total in bytes).
        case readingERP = "ERP bytes"
        /// Walking the cells the file did not list (done/total in cells).
        case engineOnlyCells = "engine cells"
    }
    /// The phase.
    public var phase: Phase
    /// Work done in the phase.
    public var done: Int
    /// Work of the whole phase.
    public var total: Int
}
