import ATPLedger

/// What `ERPCountGenerator` plants in a count file. Fractions are of the snapshot's cells.
public struct ERPCountPlan: Sendable, Equatable {
    /// The random seed: the same snapshot and plan give the same file.
    public var seed: UInt64 = 1
    /// Cells counted 1–5 units below onHand (theft, damage, loss). Only cells with onHand > 0.
    public var shrinkFraction = 0.01
    /// Cells counted 1–3 units off in either direction.
    public var miscountFraction = 0.01
    /// Extra rows for cells the snapshot does not have (a known SKU at a location where it has no
    /// cell, or an unknown SKU), 1–20 units.
    public var phantomFraction = 0.002
    /// Cells left out of the file. Only cells with onHand ≠ 0 (a missing zero agrees).
    public var missingFraction = 0.002
    /// Write a unit_cost column (a price per SKU derived from its name, 0.50 to 500.00).
    public var includeUnitCosts = false
    /// Write an as_of column with this time (milliseconds since 1970).
    public var asOfMilliseconds: Int64?
    /// Shuffle the rows (ERP exports are not in the engine's order).
    public var shuffle = true
    /// Header names to write.
    public var mapping = ERPColumnMapping()

    /// The defaults.
    public init() {}
}

/// What was planted, one per differing cell (cells with a negative onHand, which no count can
/// match, are listed as `negativeInEngine` with an ERP quantity of 0).
public struct PlantedVariance: Sendable, Hashable {
    /// Why the cell differs.
    public enum Kind: String, Sendable, CaseIterable {
        /// Counted below onHand; a miscount either way; a row for a cell the snapshot lacks; a cell
        /// left out; a cell whose onHand is below 0 (written as 0).
        case shrink, miscount, phantom, missing, negativeInEngine
    }
    /// Why the cell differs.
    public var kind: Kind
    /// The location.
    public var location: String
    /// The SKU.
    public var sku: String
    /// The quantity written (nil for `missing`).
    public var erpQuantity: Int64?
    /// The snapshot's onHand (nil for `phantom`).
    public var engineOnHand: Int64?
    /// The unit cost written, in millionths, when costs are written (nil for `missing`: no row).
    public var unitCostMicros: Int64?

    /// ERP − engine.
    public var units: Int64 { (erpQuantity ?? 0) - (engineOnHand ?? 0) }

    /// The variance status `Reconciler` must report for it.
    public var expectedStatus: VarianceKind {
        switch kind {
        case .phantom: .erpOnly
        case .missing: .engineOnly
        case .shrink, .miscount, .negativeInEngine: .differs
        }
    }
}

/// Writes a realistic ERP count file from a snapshot with planted variances (tools/erp-counts), and
/// a truth file listing every planted variance, so tests can check that the diff finds exactly
/// those. Memory: 4 bytes per cell (the row order) plus the planted variances.
public enum ERPCountGenerator {
    /// The truth file's header.
    public static let truthHeader = "kind,location,sku,erp_quantity,engine_on_hand,variance,unit_cost,variance_value\n"

    /// Writes the count file to `countsPath` (and the truth file to `truthPath` when given) and
    /// answers the planted variances. Throws `ReconcileError.file`.
    public static func generate(from index: SnapshotCellIndex, plan: ERPCountPlan, countsPath: String,
                                truthPath: String? = nil) throws(ReconcileError) -> [PlantedVariance] {
        var random = SplitMix64(seed: plan.seed)
        var rowQuantity: [UInt32: Int64] = [:]  // planted cells: the quantity written
        var rows: [UInt32] = []
        rows.reserveCapacity(index.cellCount)
        var planted: [PlantedVariance] = []
        index.forEachCell { cell, sku, location, onHandValue in
            let onHand = Int64(onHandValue)
            let draw = unit(&random)
            var kind: PlantedVariance.Kind?
            var quantity = onHand
            if draw < plan.missingFraction {
                if onHand != 0 { kind = .missing }
            } else if draw < plan.missingFraction + plan.shrinkFraction {
                if onHand > 0 {
                    kind = .shrink
                    quantity = onHand - 1 - Int64(random.next() % UInt64(min(onHand, 5)))
                }
            } else if draw < plan.missingFraction + plan.shrinkFraction + plan.miscountFraction {
                kind = .miscount
                let delta = 1 + Int64(random.next() % 3)
                quantity = random.next() & 1 == 0 ? onHand + delta : onHand - delta
                if quantity < 0 { quantity = onHand + delta }
            }
            if quantity < 0 {
                kind = .negativeInEngine
                quantity = 0
            }
            if let kind {
                let skuName = index.skuName(sku)
                planted.append(PlantedVariance(kind: kind, location: index.locationName(location), sku: skuName,
                                               erpQuantity: kind == .missing ? nil : quantity, engineOnHand: onHand,
                                               unitCostMicros: plan.includeUnitCosts && kind != .missing ? unitCostMicros(skuName) : nil))
                if kind == .missing { return }
                rowQuantity[UInt32(cell)] = quantity
            }
            rows.append(UInt32(cell))
        }
        let phantoms = makePhantoms(index, plan, &random)
        for (offset, phantom) in phantoms.enumerated() {
            planted.append(phantom)
            rows.append(UInt32(index.cellCount + offset))
        }
        if plan.shuffle && rows.count > 1 {
            for position in stride(from: rows.count - 1, to: 0, by: -1) {
                rows.swapAt(position, Int(random.next() % UInt64(position + 1)))
            }
        }
        try writeCounts(index, plan, rows, rowQuantity, phantoms, countsPath)
        if let truthPath { try writeTruth(planted, truthPath) }
        return planted
    }

    /// A price per SKU, from its name: 0.50 to 500.00, in millionths.
    public static func unitCostMicros(_ sku: String) -> Int64 {
        var copy = sku
        let hash = copy.withUTF8 { ByteStringTable.hash(UnsafeRawBufferPointer($0)) }
        return (50 + Int64(hash % 49_951)) * 10_000
    }

    private static func unit(_ random: inout SplitMix64) -> Double {
        Double(random.next() >> 11) / Double(1 << 53)
    }

    private static func makePhantoms(_ index: SnapshotCellIndex, _ plan: ERPCountPlan,
                                     _ random: inout SplitMix64) -> [PlantedVariance] {
        let count = Int((Double(index.cellCount) * plan.phantomFraction).rounded())
        var keys = Set<String>()
        var phantoms: [PlantedVariance] = []
        var serial = 0
        while phantoms.count < count {
            let quantity = 1 + Int64(random.next() % 20)
            var sku: String?
            var location = index.locationCount > 0 ? index.locationName(UInt32(random.next() % UInt64(index.locationCount))) : "PHANTOM-LOCATION"
            if random.next() & 1 == 0 && index.skuCount > 0 && index.locationCount > 0 {
                for _ in 0..<10 {
                    let skuID = UInt32(random.next() % UInt64(index.skuCount))
                    let locationID = UInt32(random.next() % UInt64(index.locationCount))
                    if index.cell(sku: skuID, location: locationID) == nil {
                        sku = index.skuName(skuID)
                        location = index.locationName(locationID)
                        break
                    }
                }
            }
            if sku == nil {
                repeat {
                    serial += 1
                    sku = "PHANTOM-\(plan.seed)-\(serial)"
                } while index.skus.id(of: Array(sku!.utf8)) != nil
            }
            guard let sku, keys.insert(location + "\u{0}" + sku).inserted else { continue }
            phantoms.append(PlantedVariance(kind: .phantom, location: location, sku: sku, erpQuantity: quantity,
                                            engineOnHand: nil,
                                            unitCostMicros: plan.includeUnitCosts ? unitCostMicros(sku) : nil))
        }
        return phantoms
    }

    private static func writeCounts(_ index: SnapshotCellIndex, _ plan: ERPCountPlan, _ rows: [UInt32],
                                    _ rowQuantity: [UInt32: Int64], _ phantoms: [PlantedVariance],
                                    _ path: String) throws(ReconcileError) {
        let output = try BufferedFileOutput(path: path)
        var fields: [ERPField] = [.location, .sku, .quantity]
        if plan.includeUnitCosts { fields.append(.unitCost) }
        if plan.asOfMilliseconds != nil { fields.append(.asOf) }
        for (position, field) in fields.enumerated() {
            if position > 0 { output.byte(44) }
            output.csvField(plan.mapping.headerName(field))
        }
        output.byte(10)
        let asOfText = plan.asOfMilliseconds.map { CivilTime.iso8601(milliseconds: $0) }
        let cellCount = UInt32(index.cellCount)
        var costOfSKU: [UInt32: String] = [:]
        for row in rows {
            var cost: String?
            if row < cellCount {
                let cell = Int(row)
                let sku = skuOf(index, cell)
                let location = index.cellLocation[cell]
                index.locations.withBytes(location) { output.csvField($0) }
                output.byte(44)
                index.skus.withBytes(sku) { output.csvField($0) }
                output.byte(44)
                output.integer(rowQuantity[row] ?? Int64(index.cellOnHand[cell]))
                if plan.includeUnitCosts {
                    if let known = costOfSKU[sku] { cost = known } else {
                        let text = NumberText.decimal(micros: Int128(unitCostMicros(index.skuName(sku))))
                        if costOfSKU.count < 1 << 20 { costOfSKU[sku] = text }
                        cost = text
                    }
                }
            } else {
                let phantom = phantoms[Int(row - cellCount)]
                output.csvField(phantom.location)
                output.byte(44)
                output.csvField(phantom.sku)
                output.byte(44)
                output.integer(phantom.erpQuantity ?? 0)
                cost = phantom.unitCostMicros.map { NumberText.decimal(micros: Int128($0)) }
            }
            if let cost {
                output.byte(44)
                output.text(cost)
            }
            if let asOfText {
                output.byte(44)
                output.text(asOfText)
            }
            output.byte(10)
            try output.endRecord()
        }
        try output.commit()
    }

    /// The SKU of a cell: a binary search over the SKUs' first cells.
    private static func skuOf(_ index: SnapshotCellIndex, _ cell: Int) -> UInt32 {
        var low = 0
        var high = index.skuCount  // the answer s has skuFirstCell[s] <= cell < skuFirstCell[s + 1]
        while high - low > 1 {
            let middle = (low + high) / 2
            if Int(index.skuFirstCell[middle]) <= cell { low = middle } else { high = middle }
        }
        return UInt32(low)
    }

    private static func writeTruth(_ planted: [PlantedVariance], _ path: String) throws(ReconcileError) {
        let output = try BufferedFileOutput(path: path)
        output.text(truthHeader)
        for variance in planted {
            output.text(variance.kind.rawValue)
            output.byte(44)
            output.csvField(variance.location)
            output.byte(44)
            output.csvField(variance.sku)
            output.byte(44)
            if let quantity = variance.erpQuantity { output.integer(quantity) }
            output.byte(44)
            if let onHand = variance.engineOnHand { output.integer(onHand) }
            output.byte(44)
            output.integer(variance.units)
            output.byte(44)
            if let cost = variance.unitCostMicros {
                output.text(NumberText.decimal(micros: Int128(cost)))
                output.byte(44)
                output.text(NumberText.decimal(micros: Int128(variance.units) * Int128(cost)))
            } else {
                output.byte(44)
            }
            output.byte(10)
            try output.endRecord()
        }
        try output.commit()
    }
}
