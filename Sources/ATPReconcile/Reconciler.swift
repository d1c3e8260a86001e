import ATPLedger
import HeapModule

/// The diff of an ERP count file against a snapshot (docs/RECONCILE.md).
///
/// Streams the file once: each row is looked up in the `SnapshotCellIndex` and either matches
/// (counted, nothing kept), differs (streamed to the sinks and offered to the top-N heap), is not
/// in the snapshot (`erpOnly`), or is bad (streamed to the sinks; `--strict` stops). Then every
/// snapshot cell the file did not mention is an `engineOnly` variance when its onHand is not 0.
///
/// Memory besides the index: a seen-bitmap of one bit per snapshot cell, one tally per location,
/// the top-N heap, and the keys of rows not in the snapshot up to `erpOnlyKeysTrackedMax` (to find
/// duplicates among them). Nothing grows with the number of rows or of matching rows.
public struct Reconciler {
    private let index: SnapshotCellIndex
    private let options: ReconcileOptions
    private let sinks: [any VarianceSink]
    private var summary: ReconcileSummary
    private var seen: [UInt64]
    private var erpOnlyKeys = ByteStringTable()
    private var keyScratch: [UInt8] = []
    private var extraLocations = ByteStringTable()
    private var tallies: [VarianceTally]
    private var otherLocations = VarianceTally()
    private var top = Heap<TopVariance>()
    private var header = ERPHeader.empty
    private var columns = Columns()

    /// A diff of `options.erpPath` against `index`, sending what it finds to `sinks`.
    public init(index: SnapshotCellIndex, options: ReconcileOptions, sinks: [any VarianceSink]) {
        precondition(options.topCount >= 0)
        self.index = index
        self.options = options
        self.sinks = sinks
        summary = ReconcileSummary(
            mode: options.isStrict ? "strict" : "lenient", erpPath: options.erpPath, snapshotID: index.info.id,
            snapshotPath: index.info.path, snapshotCutWallClockMilliseconds: index.info.cutWallClockMilliseconds,
            snapshotCellCount: index.cellCount)
        seen = [UInt64](repeating: 0, count: (index.cellCount + 63) / 64)
        tallies = [VarianceTally](repeating: VarianceTally(), count: index.locationCount)
        keyScratch.reserveCapacity(256)
    }

    /// Runs the diff. `progress` is called about every MiB of the file and every 1M engine cells.
    /// Throws `ReconcileError`: the file cannot be read or is not UTF-8, the header lacks a
    /// required column, a sink failed, or (`--strict`) the first bad row.
    public mutating func run(progress: (ReconcileProgress) -> Void = { _ in }) throws(ReconcileError) -> ReconcileSummary {
        let clock = ContinuousClock()
        let started = clock.now
        let reader = try ERPFileReader(path: options.erpPath, chunkBytes: options.limits.readChunkBytes,
                                       rowBytesMax: options.limits.rowBytesMax)
        try readHeader(reader)
        var rowsSinceProgress = 0
        while let record = try reader.next() {
            try process(record)
            rowsSinceProgress += 1
            if rowsSinceProgress == 16_384 {
                rowsSinceProgress = 0
                progress(ReconcileProgress(phase: .readingERP, done: reader.bytesConsumed, total: reader.fileBytes))
            }
        }
        progress(ReconcileProgress(phase: .readingERP, done: reader.fileBytes, total: reader.fileBytes))
        try addEngineOnlyCells(progress: progress)
        finishSummary()
        let elapsed = clock.now - started
        summary.elapsedMilliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        return summary
    }

    // MARK: - Header

    private mutating func readHeader(_ reader: ERPFileReader) throws(ReconcileError) {
        guard let record = try reader.next() else {
            throw .header(file: options.erpPath, line: 1, "the file is empty; it needs a header line naming the columns")
        }
        if let problem = record.problem {
            throw .header(file: options.erpPath, line: record.line, "the header line: \(problem.message)")
        }
        guard record.fieldCount <= reader.fieldsKeptMax else {
            throw .header(file: options.erpPath, line: record.line, "the header has \(record.fieldCount) columns, at most \(reader.fieldsKeptMax) are read")
        }
        let names = (0..<record.fieldCount).map { record.text($0) }
        header = try ERPHeader(names: names, mapping: options.mapping, file: options.erpPath, line: record.line)
        columns = Columns(header)
        for unknown in header.unknownColumns {
            try bad(BadRow(line: record.line, problem: .unknownColumn,
                           message: "column \(unknown.index + 1) \(unknown.name.debugDescription) is not one of \(ERPField.allNames) (map names with --column FIELD=HEADER); its values are ignored"),
                    countsAsRow: false)
        }
    }

    /// Column indexes of the fields (-1: absent).
    private struct Columns {
        var location = -1, sku = -1, quantity = -1, asOf = -1, unitCost = -1
        init() {}
        init(_ header: ERPHeader) {
            location = header.columnOfField[.location] ?? -1
            sku = header.columnOfField[.sku] ?? -1
            quantity = header.columnOfField[.quantity] ?? -1
            asOf = header.columnOfField[.asOf] ?? -1
            unitCost = header.columnOfField[.unitCost] ?? -1
        }
    }

    // MARK: - Rows

    private mutating func process(_ record: ERPRecord) throws(ReconcileError) {
        summary.rowsRead += 1
        if let problem = record.problem { return try bad(BadRow(line: record.line, problem: problem.kind, message: problem.message)) }
        guard record.fieldCount == header.columnCount else {
            return try bad(BadRow(line: record.line, problem: .malformedRow,
                                  message: "\(record.fieldCount) fields, the header has \(header.columnCount)"))
        }
        let line = record.line
        let sku = record.field(columns.sku)
        let location = record.field(columns.location)
        if let problem = Self.nameProblem(sku, .sku) ?? Self.nameProblem(location, .location) {
            return try bad(BadRow(line: line, problem: problem.kind, message: problem.message))
        }
        let quantityField = record.field(columns.quantity)
        guard !quantityField.isEmpty else {
            return try bad(BadRow(line: line, problem: .malformedRow, message: "quantity is empty"))
        }
        let quantity: Int64
        switch ERPValues.quantity(quantityField) {
        case .success(let value): quantity = value
        case .failure(let problem): return try bad(Self.fieldProblem(line, "quantity", quantityField, problem))
        }
        var unitCost: Int64?
        if columns.unitCost >= 0, case let field = record.field(columns.unitCost), !field.isEmpty {
            switch ERPValues.unitCostMicros(field) {
            case .success(let value): unitCost = value
            case .failure(let problem): return try bad(Self.fieldProblem(line, "unit_cost", field, problem))
            }
        }
        var asOf: Int64?
        if columns.asOf >= 0, case let field = record.field(columns.asOf), !field.isEmpty {
            switch ERPValues.asOfMilliseconds(field) {
            case .success(let value): asOf = value
            case .failure(let problem): return try bad(Self.fieldProblem(line, "as_of", field, problem))
            }
        }
        if let skuID = index.skus.id(of: sku), let locationID = index.locations.id(of: location),
           let cell = index.cell(sku: skuID, location: locationID) {
            let word = cell >> 6
            let bit = UInt64(1) << UInt64(cell & 63)
            if seen[word] & bit != 0 { return try duplicate(line) }
            seen[word] |= bit
            let onHand = Int64(index.cellOnHand[cell])
            if onHand == quantity {
                tallies[Int(locationID)].addMatch()
                summary.total.addMatch()
                return
            }
            try found(Variance(kind: .differs, line: line, sku: sku, location: location, erpQuantity: quantity,
                               engineOnHand: onHand, unitCostMicros: unitCost, asOfMilliseconds: asOf),
                      tallyIndex: Int(locationID))
        } else {
            try notInSnapshot(line: line, sku: sku, location: location, quantity: quantity, unitCost: unitCost, asOf: asOf)
        }
    }

    /// A row whose cell the snapshot does not have: a duplicate check among such rows, then an
    /// `erpOnly` variance (or an agreeing zero).
    private mutating func notInSnapshot(line: Int, sku: UnsafeRawBufferPointer, location: UnsafeRawBufferPointer,
                                        quantity: Int64, unitCost: Int64?, asOf: Int64?) throws(ReconcileError) {
        keyScratch.removeAll(keepingCapacity: true)
        keyScratch.append(UInt8(sku.count))
        keyScratch.append(contentsOf: sku)
        keyScratch.append(contentsOf: location)
        if erpOnlyKeys.id(of: keyScratch) != nil { return try duplicate(line) }
        if erpOnlyKeys.count < options.limits.erpOnlyKeysTrackedMax {
            erpOnlyKeys.insert(keyScratch)
        } else {
            summary.erpOnlyDuplicatesFullyChecked = false
        }
        if quantity == 0 {
            summary.erpOnlyZeroRows += 1
            return
        }
        try found(Variance(kind: .erpOnly, line: line, sku: sku, location: location, erpQuantity: quantity,
                           engineOnHand: nil, unitCostMicros: unitCost, asOfMilliseconds: asOf),
                  tallyIndex: locationTallyIndex(location))
    }

    /// The tally of a location: its snapshot id, a new line for an unknown location, or -1 for
    /// "other locations" once `extraLocationsTrackedMax` are tracked.
    private mutating func locationTallyIndex(_ location: UnsafeRawBufferPointer) -> Int {
        if let id = index.locations.id(of: location) { return Int(id) }
        if let id = extraLocations.id(of: location) { return index.locationCount + Int(id) }
        guard extraLocations.count < options.limits.extraLocationsTrackedMax else { return -1 }
        let id = extraLocations.insert(location).id
        tallies.append(VarianceTally())
        return index.locationCount + Int(id)
    }

    private mutating func found(_ variance: Variance, tallyIndex: Int) throws(ReconcileError) {
        if tallyIndex >= 0 { tallies[tallyIndex].add(variance) } else { otherLocations.add(variance) }
        summary.total.add(variance)
        for sink in sinks { try sink.write(variance) }
        guard options.topCount > 0 else { return }
        if top.count < options.topCount {
            top.insert(TopVariance(variance))
        } else if let floor = top.min, TopVariance.ranksAbove(variance, floor) {
            _ = top.popMin()
            top.insert(TopVariance(variance))
        }
    }

    private mutating func duplicate(_ line: Int) throws(ReconcileError) {
        try bad(BadRow(line: line, problem: .duplicateCell,
                       message: "this (location, sku) was already counted on an earlier line; this row is ignored"))
    }

    private mutating func bad(_ row: BadRow, countsAsRow: Bool = true) throws(ReconcileError) {
        if options.isStrict { throw .badRow(file: options.erpPath, row) }
        summary.badRowCount += 1
        summary.badRowsByProblem[row.problem, default: 0] += 1
        if summary.badRowsListed.count < options.limits.badRowsKeptMax { summary.badRowsListed.append(row) }
        for sink in sinks { try sink.write(row) }
    }

    private static func nameProblem(_ bytes: UnsafeRawBufferPointer, _ kind: NameKind) -> BadRow.Problem? {
        if bytes.isEmpty { return BadRow.Problem(.malformedRow, "\(kind) is empty") }
        if bytes.count > kind.bytesMax {
            return BadRow.Problem(.invalidName, "\(kind) is \(bytes.count) bytes, at most \(kind.bytesMax) are allowed")
        }
        return nil
    }

    private static func fieldProblem(_ line: Int, _ name: String, _ field: UnsafeRawBufferPointer,
                                     _ problem: BadRow.Problem) -> BadRow {
        let text = String(decoding: field.prefix(80), as: UTF8.self)
        return BadRow(line: line, problem: problem.kind, message: "\(name) \(text.debugDescription) \(problem.message)")
    }

    // MARK: - Cells the file did not list

    private mutating func addEngineOnlyCells(progress: (ReconcileProgress) -> Void) throws(ReconcileError) {
        let total = index.cellCount
        for sku in 0..<index.skuCount {
            let first = Int(index.skuFirstCell[sku])
            let end = Int(index.skuFirstCell[sku + 1])
            var cell = first
            while cell < end {
                defer { cell += 1 }
                if cell & 0xFFFFF == 0 { progress(ReconcileProgress(phase: .engineOnlyCells, done: cell, total: total)) }
                if seen[cell >> 6] & (UInt64(1) << UInt64(cell & 63)) != 0 { continue }
                let onHand = index.cellOnHand[cell]
                if onHand == 0 {
                    summary.engineOnlyZeroCells += 1
                    continue
                }
                let location = index.cellLocation[cell]
                let result: Result<Void, ReconcileError> = index.skus.withBytes(UInt32(sku)) { skuBytes in
                    index.locations.withBytes(location) { locationBytes in
                        do throws(ReconcileError) {
                            try found(Variance(kind: .engineOnly, line: nil, sku: skuBytes, location: locationBytes,
                                               erpQuantity: nil, engineOnHand: Int64(onHand), unitCostMicros: nil,
                                               asOfMilliseconds: nil), tallyIndex: Int(location))
                            return .success(())
                        } catch { return .failure(error) }
                    }
                }
                try result.get()
            }
        }
        progress(ReconcileProgress(phase: .engineOnlyCells, done: total, total: total))
    }

    private mutating func finishSummary() {
        var byLocation: [LocationTally] = []
        for (position, tally) in tallies.enumerated() where tally.cellsCompared > 0 {
            let isInSnapshot = position < index.locationCount
            let name = isInSnapshot ? index.locations.string(UInt32(position))
                : extraLocations.string(UInt32(position - index.locationCount))
            byLocation.append(LocationTally(location: name, isInSnapshot: isInSnapshot, tally: tally))
        }
        if otherLocations.cellsCompared > 0 {
            byLocation.append(LocationTally(location: "(other locations)", isInSnapshot: false, tally: otherLocations))
        }
        byLocation.sort { a, b in
            if a.tally.absoluteValueMicros != b.tally.absoluteValueMicros { return a.tally.absoluteValueMicros > b.tally.absoluteValueMicros }
            if a.tally.absoluteUnits != b.tally.absoluteUnits { return a.tally.absoluteUnits > b.tally.absoluteUnits }
            return a.location < b.location
        }
        summary.byLocation = byLocation
        var largest: [TopVariance] = []
        while let next = top.popMax() { largest.append(next) }
        summary.top = largest
        summary.snapshotIndexBytes = index.memoryBytes + seen.capacity * 8 + erpOnlyKeys.memoryBytes
    }
}

extension ERPHeader {
    static let empty = ERPHeader()
    private init() {}
}
