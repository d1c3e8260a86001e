import ATPJournal
import ATPLMDB
import ATPLedger

extension SnapshotStore {
    /// The id in a snapshot directory's name (`snapshot-<20 digits>`), nil for any other name
    /// (a `.tmp` directory of a write in progress is not a snapshot).
    public static func snapshotID(ofDirectoryName name: String) -> UInt64? { id(ofDirectoryName: name) }

    /// Streams the SKU and location names, then every cell, of the snapshot directory at `path`
    /// (`…/snapshots/snapshot-<id>`), without building a `LedgerImage`: `start` gets the snapshot's
    /// info (cell count, cut time) once its meta entries are read, `name` gets each SKU and
    /// location name in id order per kind (bytes valid only during the call), `cell` each cell in
    /// ascending (SKU id, location id) order. Channel and source names, reservations, holds and
    /// dedup windows are not read.
    ///
    /// Checks on the way (docs/SNAPSHOT.md, "Verified on load", steps 1–4 for `names` and `cells`):
    /// the whole-file CRC-32C before LMDB maps the file, the meta entries and the snapshot id,
    /// and each database's entry count and CRC-32C after its walk — so a mismatch is thrown after
    /// the callbacks already ran: treat what they gathered as void when this throws. Cost: one pass
    /// over data.mdb for its checksum, one cursor walk over `names` and `cells`; memory O(1).
    /// Throws `SnapshotError` (`.notFound` when `path` is not a snapshot directory) or what the
    /// callbacks throw.
    public static func scanNamesAndCells(
        snapshotAt path: String,
        start: (SnapshotInfo) throws -> Void = { _ in },
        name: (_ kind: NameKind, _ id: UInt32, _ bytes: UnsafeRawBufferPointer) throws -> Void,
        cell: (StockCell) throws -> Void
    ) throws -> SnapshotInfo {
        let directoryName = path.split(separator: "/").last.map(String.init) ?? path
        guard let id = id(ofDirectoryName: directoryName), FileSystem.isDirectory(path) else {
            throw SnapshotError.io(operation: "open snapshot", path: path, errno: 2,
                                   message: "not a snapshot directory (expected …/snapshots/snapshot-<20 digits>)")
        }
        let reader = SnapshotReader(id: id, path: path)
        let dataBytes = try reader.verifyFile()
        let environment = try reader.openEnvironment(dataBytes: dataBytes)
        defer { environment.close() }
        do {
            return try withoutActuallyEscaping(start) { start in
                try withoutActuallyEscaping(name) { name in try withoutActuallyEscaping(cell) { cell in
                try environment.read { transaction in
                    let databases = try reader.openDatabases(transaction)
                    guard let meta = databases["meta"], let names = databases["names"], let cells = databases["cells"] else {
                        throw SnapshotError.corrupt(id: id, what: "a database is missing")
                    }
                    let info = try reader.readMeta(transaction, meta, dataBytes: dataBytes)
                    try start(info.info)
                    var crc = CRC32C()
                    var count = 0
                    try transaction.forEach(in: names) { key, value in
                        crc.updateEntry(key: key, value: value)
                        count += 1
                        let (kind, nameID) = try SnapshotFormat.decodeNameKey(key)
                        if kind == .sku || kind == .location { try name(kind, nameID, value) }
                        return true
                    }
                    try info.verify("names", count: count, checksum: crc.value, id: id)
                    crc = CRC32C()
                    count = 0
                    try transaction.forEach(in: cells) { key, value in
                        crc.updateEntry(key: key, value: value)
                        count += 1
                        try cell(try SnapshotFormat.decodeCell(key: key, value: value))
                        return true
                    }
                    try info.verify("cells", count: count, checksum: crc.value, id: id)
                    return info.info
                }
            } } }
        } catch let error as LMDBError {
            throw error.isCorrupt ? SnapshotError.corrupt(id: id, what: "\(error)") : SnapshotError.lmdb(error)
        } catch let error as SnapshotFormat.Malformed {
            throw SnapshotError.corrupt(id: id, what: error.description)
        }
    }
}
