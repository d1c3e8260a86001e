#if canImport(Glibc)
import ATPJournal
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPLMDB
import ATPLedger

extension SnapshotStore {
    /// The CSV header `exportCSV` writes first.
    public static let csvHeader =
        "sku,location,onHand,damaged,quarantine,committed,reserved,inbound,returnPending,safetyStock,sellable,projected\n"

    /// Streams every cell of snapshot `id` as CSV (header `csvHeader`, one line per cell in SKU id
    /// then location id order, names quoted per RFC 4180 when needed) to `write`, in chunks of about
    /// 64 KiB, without loading the snapshot in memory: cells come from an LMDB cursor, names from
    /// point lookups (the last SKU and the locations seen are cached). The file checksum is verified
    /// first and the cells checksum at the end; a mismatch throws `.corrupt` (the output written so
    /// far is then incomplete). Throws `SnapshotError` or what `write` throws.
    public func exportCSV(_ id: UInt64, to write: (UnsafeRawBufferPointer) throws -> Void) throws {
        let path = path(of: id)
        guard FileSystem.isDirectory(path) else { throw SnapshotError.notFound(id: id) }
        let reader = SnapshotReader(id: id, path: path)
        let dataBytes = try reader.verifyFile()
        let environment = try reader.openEnvironment(dataBytes: dataBytes)
        defer { environment.close() }
        // The writer's own errors pass through as they are; LMDB's and the format's become SnapshotError.
        do { try withoutActuallyEscaping(write) { write in try environment.read { transaction in
            let databases = try reader.openDatabases(transaction)
            let meta = try reader.readMeta(transaction, databases["meta"]!, dataBytes: dataBytes)
            var exporter = CSVExporter(transaction: transaction, names: databases["names"]!, write: write)
            exporter.text(SnapshotStore.csvHeader)
            var crc = CRC32C()
            var count = 0
            try transaction.forEach(in: databases["cells"]!) { key, value in
                crc.updateEntry(key: key, value: value)
                count += 1
                try exporter.line(try SnapshotFormat.decodeCell(key: key, value: value))
                return true
            }
            try meta.verify("cells", count: count, checksum: crc.value, id: id)
            try exporter.finish()
        } } } catch let error as LMDBError {
            throw error.isCorrupt ? SnapshotError.corrupt(id: id, what: "\(error)") : SnapshotError.lmdb(error)
        } catch let error as SnapshotFormat.Malformed {
            throw SnapshotError.corrupt(id: id, what: error.description)
        }
    }

    /// `exportCSV(_:to:)` into a new file at `filePath` (replaced if present), fsynced at the end.
    public func exportCSV(_ id: UInt64, toFileAt filePath: String) throws {
        let descriptor = open(filePath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw FileSystem.error("open", filePath) }
        defer { close(descriptor) }
        try exportCSV(id) { chunk in try FileSystem.writeAll(descriptor, filePath, Array(chunk)) }
        if fsync(descriptor) != 0 { throw FileSystem.error("fsync", filePath) }
    }
}

/// Turns cells into CSV lines, looking names up in the snapshot's `names` database.
private struct CSVExporter {
    let transaction: LMDBTransaction
    let names: LMDBDatabase
    let write: (UnsafeRawBufferPointer) throws -> Void
    private var buffer: [UInt8] = []
    private var lastSKU: (id: UInt32, field: [UInt8])?
    private var locationFields: [UInt32: [UInt8]] = [:]
    private static let flushBytes = 1 << 16

    init(transaction: LMDBTransaction, names: LMDBDatabase, write: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.transaction = transaction
        self.names = names
        self.write = write
        buffer.reserveCapacity(CSVExporter.flushBytes + 1024)
    }

    mutating func text(_ string: String) { buffer.append(contentsOf: string.utf8) }

    mutating func line(_ cell: StockCell) throws {
        if lastSKU?.id != cell.sku.rawValue {
            lastSKU = (cell.sku.rawValue, try field(.sku, cell.sku.rawValue))
        }
        buffer.append(contentsOf: lastSKU!.field)
        buffer.append(UInt8(ascii: ","))
        if locationFields[cell.location.rawValue] == nil {
            locationFields[cell.location.rawValue] = try field(.location, cell.location.rawValue)
        }
        buffer.append(contentsOf: locationFields[cell.location.rawValue]!)
        for number in [Int64(cell.onHand), Int64(cell.damaged), Int64(cell.quarantine), Int64(cell.committed),
                       Int64(cell.reserved), Int64(cell.inbound), Int64(cell.returnPending), Int64(cell.safetyStock),
                       cell.sellable, cell.projected] {
            buffer.append(UInt8(ascii: ","))
            buffer.append(contentsOf: String(number).utf8)
        }
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= CSVExporter.flushBytes { try flush() }
    }

    mutating func finish() throws { try flush() }

    private mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try write($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    /// The CSV field of a name: as is, or quoted with doubled quotes when it holds , " CR or LF.
    private func field(_ kind: NameKind, _ id: UInt32) throws -> [UInt8] {
        guard let name = try transaction.value(forKey: SnapshotFormat.nameKey(kind: kind, id: id), in: names) else {
            throw SnapshotFormat.Malformed("a cell names \(kind) id \(id), which the snapshot does not hold")
        }
        let special: Set<UInt8> = [UInt8(ascii: ","), UInt8(ascii: "\""), UInt8(ascii: "\n"), UInt8(ascii: "\r")]
        guard name.contains(where: special.contains) else { return name }
        var quoted: [UInt8] = [UInt8(ascii: "\"")]
        for byte in name {
            if byte == UInt8(ascii: "\"") { quoted.append(byte) }
            quoted.append(byte)
        }
        quoted.append(UInt8(ascii: "\""))
        return quoted
    }
}
