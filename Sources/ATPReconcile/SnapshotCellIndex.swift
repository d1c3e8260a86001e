import ATPLedger
import ATPSnapshot

/// The part of a snapshot a reconciliation needs, in compact arrays: SKU and location names with
/// their ids, and every cell's location and onHand grouped by SKU (compressed sparse rows).
///
/// Memory: 8 bytes per cell (`cellLocation`, `cellOnHand`), 4 bytes per SKU (`skuFirstCell`) and
/// the name tables (the names' bytes + about 16 bytes per name). A 10M-cell snapshot takes about
/// 80 MB here, whatever the size of the ERP file. Cost of a lookup: two name hashes and a binary
/// search among the SKU's locations.
public final class SnapshotCellIndex {
    /// The snapshot's identity and meta entries.
    public let info: SnapshotInfo
    /// SKU names by id.
    let skus: ByteStringTable
    /// Location names by id.
    let locations: ByteStringTable
    /// Cells of SKU s are `skuFirstCell[s] ..< skuFirstCell[s + 1]`, in ascending location id.
    let skuFirstCell: [UInt32]
    /// Location id of each cell.
    let cellLocation: [UInt32]
    /// onHand of each cell.
    let cellOnHand: [Int32]

    init(info: SnapshotInfo, skus: ByteStringTable, locations: ByteStringTable, skuFirstCell: [UInt32],
         cellLocation: [UInt32], cellOnHand: [Int32]) {
        precondition(skuFirstCell.count == skus.count + 1 && cellLocation.count == cellOnHand.count)
        precondition(skuFirstCell.last.map(Int.init) == cellLocation.count)
        self.info = info
        self.skus = skus
        self.locations = locations
        self.skuFirstCell = skuFirstCell
        self.cellLocation = cellLocation
        self.cellOnHand = cellOnHand
    }

    /// Reads the snapshot directory at `path` (`…/snapshots/snapshot-<id>`), verifying its
    /// checksums (`SnapshotStore.scanNamesAndCells`). `progress` gets (cells read, cell count)
    /// every 65,536 cells. Throws `SnapshotError`.
    public static func load(snapshotAt path: String,
                            progress: (_ cellsRead: Int, _ cellCount: Int) -> Void = { _, _ in }) throws -> SnapshotCellIndex {
        var builder = Builder()
        let info = try SnapshotStore.scanNamesAndCells(snapshotAt: path, start: { info in
            builder.reserve(cells: info.cellCount)
        }, name: { kind, id, bytes in
            try builder.addName(kind, id, bytes)
        }, cell: { cell in
            try builder.addCell(cell)
            if builder.cellLocation.count & 0xFFFF == 0 { progress(builder.cellLocation.count, builder.cellCapacity) }
        })
        progress(builder.cellLocation.count, builder.cellLocation.count)
        return builder.finish(info: info)
    }

    /// Number of cells.
    public var cellCount: Int { cellLocation.count }
    /// Number of SKU names.
    public var skuCount: Int { skus.count }
    /// Number of location names.
    public var locationCount: Int { locations.count }

    /// Bytes this index holds, approximately.
    public var memoryBytes: Int {
        skus.memoryBytes + locations.memoryBytes + skuFirstCell.capacity * 4 + cellLocation.capacity * 4
            + cellOnHand.capacity * 4
    }

    /// The cell of (sku, location), or nil when the snapshot has no such cell.
    @inline(__always)
    func cell(sku: UInt32, location: UInt32) -> Int? {
        var low = Int(skuFirstCell[Int(sku)])
        var high = Int(skuFirstCell[Int(sku) + 1])
        return cellLocation.withUnsafeBufferPointer { locations in
            while low < high {
                let middle = (low + high) >> 1
                let value = locations[middle]
                if value == location { return middle }
                if value < location { low = middle + 1 } else { high = middle }
            }
            return nil
        }
    }

    /// The cell named (sku, location), or nil.
    public func cell(sku: String, location: String) -> Int? {
        guard let skuID = skus.id(of: Array(sku.utf8)), let locationID = locations.id(of: Array(location.utf8)) else {
            return nil
        }
        return cell(sku: skuID, location: locationID)
    }

    /// onHand of cell `index`.
    public func onHand(ofCell index: Int) -> Int32 { cellOnHand[index] }

    /// The SKU name of id `id`.
    public func skuName(_ id: UInt32) -> String { skus.string(id) }
    /// The location name of id `id`.
    public func locationName(_ id: UInt32) -> String { locations.string(id) }

    /// Calls `body` with (cell index, SKU id, location id, onHand) for every cell, in (SKU id,
    /// location id) order.
    func forEachCell(_ body: (_ index: Int, _ sku: UInt32, _ location: UInt32, _ onHand: Int32) throws -> Void) rethrows {
        for sku in 0..<skus.count {
            for index in Int(skuFirstCell[sku])..<Int(skuFirstCell[sku + 1]) {
                try body(index, UInt32(sku), cellLocation[index], cellOnHand[index])
            }
        }
    }

    /// Gathers names and cells as the snapshot streams them.
    struct Builder {
        var skus = ByteStringTable()
        var locations = ByteStringTable()
        var skuFirstCell: [UInt32] = [0]
        var cellLocation: [UInt32] = []
        var cellOnHand: [Int32] = []
        var cellCapacity = 0
        private var lastKey: UInt64?

        mutating func reserve(cells: Int) {
            cellCapacity = cells
            cellLocation.reserveCapacity(cells)
            cellOnHand.reserveCapacity(cells)
        }

        mutating func addName(_ kind: NameKind, _ id: UInt32, _ bytes: UnsafeRawBufferPointer) throws {
            let (assigned, inserted) = kind == .sku ? skus.insert(bytes) : locations.insert(bytes)
            guard inserted, assigned == id else {
                throw SnapshotIndexError("\(kind) name id \(id) is repeated or out of order")
            }
        }

        mutating func addCell(_ cell: StockCell) throws {
            let sku = cell.sku.rawValue
            let location = cell.location.rawValue
            let key = UInt64(sku) << 32 | UInt64(location)
            if let lastKey, key <= lastKey { throw SnapshotIndexError("cells out of order at SKU id \(sku)") }
            guard Int(sku) < skus.count, Int(location) < locations.count else {
                throw SnapshotIndexError("a cell names SKU id \(sku) / location id \(location), which the snapshot lacks")
            }
            lastKey = key
            // Close the offsets of every SKU up to this one.
            while skuFirstCell.count <= Int(sku) { skuFirstCell.append(UInt32(cellLocation.count)) }
            cellLocation.append(location)
            cellOnHand.append(cell.onHand)
        }

        mutating func finish(info: SnapshotInfo) -> SnapshotCellIndex {
            while skuFirstCell.count <= skus.count { skuFirstCell.append(UInt32(cellLocation.count)) }
            return SnapshotCellIndex(info: info, skus: skus, locations: locations, skuFirstCell: skuFirstCell,
                                     cellLocation: cellLocation, cellOnHand: cellOnHand)
        }
    }
}

/// A snapshot whose names or cells do not fit together (only a damaged or foreign snapshot).
public struct SnapshotIndexError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public var description: String
    init(_ description: String) { self.description = description }
}
