import ATPJournal
import ATPLMDB
import ATPLedger

/// Reads one snapshot directory back, checking it on the way (docs/SNAPSHOT.md, "Verified on load"):
/// 1. `data.mdb` and its checksum file exist, the size matches and the whole-file CRC-32C matches
///    (before LMDB maps the file, so a damaged file never reaches LMDB);
/// 2. LMDB opens it read-only and its last page lies inside the file;
/// 3. `meta` holds every entry, the format version is known and the id is the directory's;
/// 4. each database's entry count and CRC-32C equal what `meta` recorded;
/// 5. the entries decode and form a valid `LedgerImage` (`LedgerImageBuilder.build()`).
struct SnapshotReader {
    let id: UInt64
    let path: String

    var dataPath: String { path + "/data.mdb" }

    /// Step 1. Answers the size of data.mdb.
    func verifyFile() throws(SnapshotError) -> Int {
        guard let size = try FileSystem.fileSize(dataPath) else { throw .missingFile(id: id, path: dataPath) }
        let checksumPath = path + "/" + SnapshotFormat.checksumFileName
        guard let text = try FileSystem.readFile(checksumPath) else { throw .missingFile(id: id, path: checksumPath) }
        guard let recorded = SnapshotChecksumFile(text) else { throw .corrupt(id: id, what: "unreadable \(checksumPath)") }
        guard recorded.bytes == size else {
            throw .corrupt(id: id, what: "data.mdb is \(size) bytes, \(recorded.bytes) were written")
        }
        let actual = try SnapshotChecksumFile.checksum(of: dataPath)
        guard actual == recorded.crc32c else {
            throw .corrupt(id: id, what: "data.mdb CRC-32C is \(hex(actual)), \(hex(recorded.crc32c)) was written")
        }
        return size
    }

    /// Step 2: the environment, read-only, without a lock file (a snapshot never changes).
    func openEnvironment(dataBytes: Int) throws(SnapshotError) -> LMDBEnvironment {
        let environment: LMDBEnvironment
        let info: LMDBEnvironmentInfo
        do {
            environment = try LMDBEnvironment(path: path, mapSizeBytes: max(dataBytes, 1 << 20),
                                              databasesMax: SnapshotFormat.databasesMax,
                                              flags: [.readOnly, .noLock, .noReadAhead])
            info = try environment.info()
        } catch {
            throw error.isCorrupt ? .corrupt(id: id, what: "\(error)") : .lmdb(error)
        }
        guard (info.lastPageNumber + 1) * info.pageSizeBytes <= dataBytes else {
            environment.close()
            throw .corrupt(id: id, what: "data.mdb is shorter than its last page")
        }
        return environment
    }

    /// Steps 1–5: the image and its info.
    func load() throws(SnapshotError) -> (LedgerImage, SnapshotInfo) {
        let dataBytes = try verifyFile()
        let environment = try openEnvironment(dataBytes: dataBytes)
        defer { environment.close() }
        return try readTransaction(environment) { transaction in
            let databases = try openDatabases(transaction)
            let meta = try readMeta(transaction, databases["meta"]!, dataBytes: dataBytes)
            var builder: LedgerImageBuilder
            do throws(LedgerImageError) {
                builder = try LedgerImageBuilder(
                    version: SnapshotFormat.imageVersion(ofFormat: meta.info.formatVersion),
                    workerGenerations: meta.workerGenerations, channelChangeSequence: meta.channelChangeSequence,
                    shardCount: meta.info.shardCount, skuPlacement: meta.info.skuPlacement, dedupWindowSequences: meta.dedupWindowSequences,
                    workerMarks: meta.info.workerMarks, cutWallClockMilliseconds: meta.info.cutWallClockMilliseconds,
                    clockMilliseconds: meta.info.clockMilliseconds)
            } catch {
                throw SnapshotError.invalidImage(id: id, error)
            }
            // The count is checked only after the walk: bounded by what the file could hold.
            builder.reserveCells(min(meta.info.cellCount, dataBytes / (8 + SnapshotFormat.cellValueBytes)))
            try scan(transaction, databases, "names", meta) { key, value in
                let (kind, nameID) = try SnapshotFormat.decodeNameKey(key)
                try builder.appendName(value, kind: kind, id: nameID)
            }
            try scan(transaction, databases, "cells", meta) { key, value in
                try builder.appendCell(try SnapshotFormat.decodeCell(key: key, value: value))
            }
            try scan(transaction, databases, "reservations", meta) { key, value in
                builder.appendReservation(try SnapshotFormat.decodeReservation(key: key, value: value,
                                                                               version: meta.info.formatVersion))
            }
            try scan(transaction, databases, "holds", meta) { key, value in
                builder.appendHold(try SnapshotFormat.decodeHold(key: key, value: value, version: meta.info.formatVersion))
            }
            try scan(transaction, databases, "channels", meta) { key, value in
                builder.appendChannel(try SnapshotFormat.decodeChannel(key: key, value: value))
            }
            try scan(transaction, databases, "dedup", meta) { key, value in
                builder.appendDedupWindow(try SnapshotFormat.decodeDedup(key: key, value: value))
            }
            do throws(LedgerImageError) {
                return (try builder.build(), meta.info)
            } catch {
                throw SnapshotError.invalidImage(id: id, error)
            }
        }
    }

    /// The meta entries only (steps 2 and 3, with the size check of step 1 but not the CRC).
    func info() throws(SnapshotError) -> SnapshotInfo {
        guard let dataBytes = try FileSystem.fileSize(dataPath) else { throw .missingFile(id: id, path: dataPath) }
        let environment = try openEnvironment(dataBytes: dataBytes)
        defer { environment.close() }
        return try readTransaction(environment) { transaction in
            let databases = try openDatabases(transaction)
            return try readMeta(transaction, databases["meta"]!, dataBytes: dataBytes).info
        }
    }

    /// Runs `body` in a read transaction, mapping every error to a `SnapshotError`.
    func readTransaction<R>(_ environment: LMDBEnvironment, _ body: (LMDBTransaction) throws -> R) throws(SnapshotError) -> R {
        do {
            return try environment.read(body)
        } catch let error as SnapshotError {
            throw error
        } catch let error as LMDBError {
            throw error.isCorrupt ? .corrupt(id: id, what: "\(error)") : .lmdb(error)
        } catch let error as SnapshotFormat.Malformed {
            throw .corrupt(id: id, what: error.description)
        } catch let error as LedgerImageError {
            throw .invalidImage(id: id, error)
        } catch {
            throw .corrupt(id: id, what: "\(error)")
        }
    }

    func openDatabases(_ transaction: LMDBTransaction) throws -> [String: LMDBDatabase] {
        var databases: [String: LMDBDatabase] = [:]
        for name in SnapshotFormat.databases {
            guard let database = try transaction.openDatabase(name) else {
                throw SnapshotError.corrupt(id: id, what: "database \(name) is missing")
            }
            databases[name] = database
        }
        return databases
    }

    /// Walks one database, checking its count and checksum against meta after decoding each entry.
    private func scan(_ transaction: LMDBTransaction, _ databases: [String: LMDBDatabase], _ name: String,
                      _ meta: SnapshotMeta,
                      _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) throws {
        var crc = CRC32C()
        var count = 0
        try transaction.forEach(in: databases[name]!) { key, value in
            crc.updateEntry(key: key, value: value)
            count += 1
            try body(key, value)
            return true
        }
        try meta.verify(name, count: count, checksum: crc.value, id: id)
    }

    func readMeta(_ transaction: LMDBTransaction, _ database: LMDBDatabase, dataBytes: Int) throws -> SnapshotMeta {
        func entry<R>(_ key: String, _ decode: (inout ByteReader) throws -> R) throws -> R {
            let value = try transaction.withValue(forKey: Array(key.utf8), in: database) { bytes -> R in
                var reader = ByteReader(bytes)
                return try decode(&reader)
            }
            guard let value else { throw SnapshotError.corrupt(id: id, what: "meta entry \(key) is missing") }
            return value
        }
        do {
            let version = try entry(SnapshotFormat.Meta.formatVersion) { try $0.u32() }
            guard SnapshotFormat.versionsRead.contains(version) else {
                throw SnapshotError.unsupportedFormat(id: id, version: version)
            }
            let storedID = try entry(SnapshotFormat.Meta.snapshotID) { try $0.u64() }
            guard storedID == id else { throw SnapshotError.corrupt(id: id, what: "meta says snapshot \(storedID)") }
            var counts: [String: Int] = [:]
            var checksums: [String: UInt32] = [:]
            for name in SnapshotFormat.databases where name != "meta" {
                counts[name] = Int(try entry(SnapshotFormat.Meta.count(name)) { try $0.u64() })
                checksums[name] = try entry(SnapshotFormat.Meta.checksum(name)) { try $0.u32() }
            }
            let marks = try entry(SnapshotFormat.Meta.workerMarks) { reader in
                var marks: [UInt64] = []
                while !reader.isAtEnd { marks.append(try reader.u64()) }
                return marks
            }
            let info = SnapshotInfo(
                id: id, path: path,
                cutWallClockMilliseconds: try entry(SnapshotFormat.Meta.cutWallClockMilliseconds) { try $0.i64() },
                clockMilliseconds: try entry(SnapshotFormat.Meta.clockMilliseconds) { try $0.i64() },
                workerMarks: marks, cellCount: counts["cells"] ?? 0,
                engineVersion: try entry(SnapshotFormat.Meta.engineVersion) {
                    String(decoding: try $0.raw($0.remaining), as: UTF8.self)
                },
                formatVersion: version,
                shardCount: Int(try entry(SnapshotFormat.Meta.shardCount) { try $0.u32() }),
                skuPlacement: version >= 3 ? try entry(SnapshotFormat.Meta.skuPlacement) { reader in
                    let code = try reader.u8()
                    guard let scheme = SKUPlacementScheme(rawValue: code) else {
                        throw SnapshotFormat.Malformed("unknown SKU placement scheme \(code)")
                    }
                    return scheme
                } : .skuID,
                dataBytes: dataBytes)
            let window = Int(try entry(SnapshotFormat.Meta.dedupWindowSequences) { try $0.u32() })
            let generations = version >= 2
                ? try entry(SnapshotFormat.Meta.workerGenerations) { try SnapshotFormat.decodeWorkerGenerations(&$0) } : []
            let channelSequence = version >= 2 ? try entry(SnapshotFormat.Meta.channelChangeSequence) { try $0.u64() } : 0
            return SnapshotMeta(info: info, dedupWindowSequences: window, counts: counts, checksums: checksums,
                                workerGenerations: generations, channelChangeSequence: channelSequence)
        } catch is ByteReader.Truncated {
            throw SnapshotError.corrupt(id: id, what: "a meta entry is too short")
        }
    }
}

/// The meta entries of a snapshot.
struct SnapshotMeta {
    var info: SnapshotInfo
    var dedupWindowSequences: Int
    var counts: [String: Int]
    var checksums: [String: UInt32]
    /// The workers' journal generations (empty in version 1).
    var workerGenerations: [WorkerGenerationImage] = []
    /// The newest channel change in the snapshot's channels (0 in version 1).
    var channelChangeSequence: UInt64 = 0

    func verify(_ name: String, count: Int, checksum: UInt32, id: UInt64) throws(SnapshotError) {
        guard count == counts[name] else {
            throw .corrupt(id: id, what: "database \(name) holds \(count) entries, meta says \(counts[name] ?? 0)")
        }
        guard checksum == checksums[name] else {
            throw .corrupt(id: id, what: "database \(name) CRC-32C is \(hex(checksum)), meta says \(hex(checksums[name] ?? 0))")
        }
    }
}

/// The text file beside data.mdb: `crc32c <8 hex digits> bytes <decimal>\n`.
struct SnapshotChecksumFile {
    var crc32c: UInt32
    var bytes: Int

    init(crc32c: UInt32, bytes: Int) {
        self.crc32c = crc32c
        self.bytes = bytes
    }

    init?(_ text: [UInt8]) {
        let fields = String(decoding: text, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count == 4, fields[0] == "crc32c", fields[2] == "bytes",
              let crc = UInt32(fields[1], radix: 16), let bytes = Int(fields[3]), bytes >= 0
        else { return nil }
        self.init(crc32c: crc, bytes: bytes)
    }

    var text: [UInt8] { Array("crc32c \(hex(crc32c)) bytes \(bytes)\n".utf8) }

    /// CRC-32C of a whole file, read in 1 MiB chunks.
    static func checksum(of path: String) throws(SnapshotError) -> UInt32 {
        var crc = CRC32C()
        guard try FileSystem.readChunks(path, chunkBytes: 1 << 20, { crc.update($0) }) else {
            throw FileSystem.error("open", path, 2)
        }
        return crc.value
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
