import ATPJournal
import ATPLMDB
import ATPLedger

/// Writes one ledger image into a fresh LMDB environment, database by database, in key order
/// (`MDB_APPEND`), in transactions of `entriesPerTransaction` entries, computing each database's
/// count and CRC-32C as it goes; `meta` last. The map starts at an estimate and doubles on
/// MDB_MAP_FULL (the failed transaction is redone) up to `mapSizeBytesMax`. Runs on the caller's
/// thread; the environment is opened with `noSync` and synced once at the end.
final class SnapshotWriter {
    private let environment: LMDBEnvironment
    private let configuration: SnapshotStoreConfiguration
    private var mapSizeBytes: Int
    private var databases: [String: LMDBDatabase] = [:]
    private var counts: [String: Int] = [:]
    private var checksums: [String: CRC32C] = [:]

    /// Opens a new environment in the existing, empty directory `path`.
    init(path: String, mapSizeBytes: Int, configuration: SnapshotStoreConfiguration) throws(SnapshotError) {
        self.configuration = configuration
        self.mapSizeBytes = min(mapSizeBytes, configuration.mapSizeBytesMax)
        do {
            environment = try LMDBEnvironment(path: path, mapSizeBytes: self.mapSizeBytes,
                                              databasesMax: SnapshotFormat.databasesMax, flags: [.noSync])
        } catch {
            throw .lmdb(error)
        }
    }

    /// The initial map: cells × 80 bytes plus the other parts, +25%, at least 1 MiB.
    static func estimatedMapSizeBytes(_ image: LedgerImage) -> Int {
        var bytes = image.cellCount * 80
        for kind in [NameKind.sku, .location, .channel, .source] {
            bytes += image.names(kind).byteCount + image.names(kind).count * 24
        }
        bytes += image.dedupWindows.reduce(0) { $0 + $1.words.count * 8 + 64 }
        bytes += image.reservations.reduce(0) { $0 + 128 + $1.request.lines.count * 64 }
        bytes += image.holds.reduce(0) { $0 + 96 + $1.lines.count * 12 }
        bytes += image.channels.reduce(0) { $0 + 64 + $1.locations.count * 4 }
        return max(1 << 20, (bytes + (1 << 20)) / 4 * 5)
    }

    /// Writes every database and the meta entries, syncs and closes the environment.
    func write(_ image: LedgerImage, id: UInt64, metadata: SnapshotMetadata) throws(SnapshotError) {
        defer { environment.close() }
        try createDatabases()
        try writeNames(image)
        try writeCells(image)
        try writeSorted("reservations", image.reservations.map {
            (SnapshotFormat.reservationKey($0), SnapshotFormat.reservationValue($0))
        })
        try writeSorted("holds", image.holds.map { (SnapshotFormat.holdKey($0), SnapshotFormat.holdValue($0)) })
        try writeSorted("channels", image.channels.map {
            (SnapshotFormat.channelKey($0.id), SnapshotFormat.channelValue($0))
        })
        try writeSorted("dedup", image.dedupWindows.map {
            (SnapshotFormat.dedupKey(shard: $0.shard, source: $0.source), SnapshotFormat.dedupValue($0))
        })
        try writeMeta(image, id: id, metadata: metadata)
        do { try environment.sync(force: true) } catch { throw .lmdb(error) }
    }

    private func createDatabases() throws(SnapshotError) {
        try transact { transaction in
            for name in SnapshotFormat.databases {
                guard let database = try transaction.openDatabase(name, create: true) else {
                    preconditionFailure("mdb_dbi_open with MDB_CREATE answered not found")
                }
                databases[name] = database
            }
        }
        for name in SnapshotFormat.databases {
            counts[name] = 0
            checksums[name] = CRC32C()
        }
    }

    private func writeNames(_ image: LedgerImage) throws(SnapshotError) {
        var batch = EntryBatch()
        for kind in [NameKind.sku, .location, .channel, .source] {
            let names = image.names(kind)
            for id in 0..<names.count {
                let key = SnapshotFormat.nameKey(kind: kind, id: UInt32(id))
                key.withUnsafeBytes { keyBytes in names.withName(id) { batch.add(key: keyBytes, value: $0) } }
                if batch.count >= configuration.entriesPerTransaction { try flush(&batch, into: "names") }
            }
        }
        try flush(&batch, into: "names")
    }

    private func writeCells(_ image: LedgerImage) throws(SnapshotError) {
        var batch = EntryBatch()
        var failure: SnapshotError?
        var writer = ByteWriter(capacity: 8 + SnapshotFormat.cellValueBytes)
        image.forEachCell { cell in
            guard failure == nil else { return }
            writer.bytes.removeAll(keepingCapacity: true)
            SnapshotFormat.appendCellKey(cell, to: &writer)
            SnapshotFormat.appendCellValue(cell, to: &writer)
            writer.bytes.withUnsafeBytes { raw in
                batch.add(key: UnsafeRawBufferPointer(rebasing: raw[0..<8]), value: UnsafeRawBufferPointer(rebasing: raw[8...]))
            }
            if batch.count >= configuration.entriesPerTransaction {
                do throws(SnapshotError) { try flush(&batch, into: "cells") } catch { failure = error }
            }
        }
        if let failure { throw failure }
        try flush(&batch, into: "cells")
    }

    private func writeSorted(_ database: String, _ entries: [([UInt8], [UInt8])]) throws(SnapshotError) {
        var batch = EntryBatch()
        for (key, value) in entries.sorted(by: { $0.0.lexicographicallyPrecedes($1.0) }) {
            key.withUnsafeBytes { (keyBytes: UnsafeRawBufferPointer) in
                value.withUnsafeBytes { (valueBytes: UnsafeRawBufferPointer) in batch.add(key: keyBytes, value: valueBytes) }
            }
            if batch.count >= configuration.entriesPerTransaction { try flush(&batch, into: database) }
        }
        try flush(&batch, into: database)
    }

    private func writeMeta(_ image: LedgerImage, id: UInt64, metadata: SnapshotMetadata) throws(SnapshotError) {
        var entries: [(String, [UInt8])] = []
        func add(_ key: String, _ fill: (inout ByteWriter) -> Void) {
            var writer = ByteWriter()
            fill(&writer)
            entries.append((key, writer.bytes))
        }
        add(SnapshotFormat.Meta.formatVersion) { $0.u32(SnapshotFormat.version) }
        add(SnapshotFormat.Meta.snapshotID) { $0.u64(id) }
        add(SnapshotFormat.Meta.cutWallClockMilliseconds) { $0.i64(image.cutWallClockMilliseconds) }
        add(SnapshotFormat.Meta.clockMilliseconds) { $0.i64(image.clockMilliseconds) }
        add(SnapshotFormat.Meta.engineVersion) { $0.raw(Array(metadata.engineVersion.utf8)) }
        add(SnapshotFormat.Meta.shardCount) { $0.u32(UInt32(image.shardCount)) }
        add(SnapshotFormat.Meta.skuPlacement) { $0.u8(image.skuPlacement.rawValue) }
        add(SnapshotFormat.Meta.dedupWindowSequences) { $0.u32(UInt32(image.dedupWindowSequences)) }
        add(SnapshotFormat.Meta.workerMarks) { writer in for mark in image.workerMarks { writer.u64(mark) } }
        add(SnapshotFormat.Meta.workerGenerations) { $0.raw(SnapshotFormat.workerGenerationsValue(image.workerGenerations)) }
        add(SnapshotFormat.Meta.channelChangeSequence) { $0.u64(image.channelChangeSequence) }
        for name in SnapshotFormat.databases where name != "meta" {
            add(SnapshotFormat.Meta.count(name)) { $0.u64(UInt64(counts[name] ?? 0)) }
        }
        // The checksums go last, in the same final transaction: a snapshot without them is incomplete.
        for name in SnapshotFormat.databases where name != "meta" {
            add(SnapshotFormat.Meta.checksum(name)) { $0.u32(checksums[name]?.value ?? 0) }
        }
        guard let meta = databases["meta"] else { preconditionFailure("meta database not created") }
        try transact { transaction in
            for (key, value) in entries { try transaction.put(value, forKey: Array(key.utf8), in: meta) }
        }
    }

    /// Writes a batch in one transaction with MDB_APPEND, growing the map and redoing the
    /// transaction on MDB_MAP_FULL. Counts and checksums the entries once they are committed.
    private func flush(_ batch: inout EntryBatch, into name: String) throws(SnapshotError) {
        guard batch.count > 0 else { return }
        guard let database = databases[name], var checksum = checksums[name] else {
            preconditionFailure("database \(name) not created")
        }
        // The batch is used in place, not copied: a copy would make `removeAll` allocate a fresh
        // buffer (and fault in its pages) for every transaction.
        try transact { transaction in
            try batch.forEach { key, value in try transaction.put(value, forKey: key, in: database, flags: .append) }
        }
        batch.forEach { key, value in checksum.updateEntry(key: key, value: value) }
        checksums[name] = checksum
        counts[name, default: 0] += batch.count
        batch.removeAll()
    }

    /// Runs a write transaction, growing the map and retrying while LMDB answers MDB_MAP_FULL.
    private func transact(_ body: (LMDBTransaction) throws -> Void) throws(SnapshotError) {
        while true {
            do {
                try environment.write(body)
                return
            } catch let error as LMDBError where error.isMapFull {
                try growMap()
            } catch let error as LMDBError {
                throw .lmdb(error)
            } catch let error as SnapshotError {
                throw error
            } catch {
                preconditionFailure("unexpected error \(error)")
            }
        }
    }

    private func growMap() throws(SnapshotError) {
        guard mapSizeBytes < configuration.mapSizeBytesMax else {
            throw .mapFull(mapSizeBytesMax: configuration.mapSizeBytesMax)
        }
        mapSizeBytes = min(configuration.mapSizeBytesMax, mapSizeBytes * 2)
        do { try environment.setMapSize(mapSizeBytes) } catch { throw .lmdb(error) }
    }
}

/// Encoded entries of one transaction, packed in one buffer.
struct EntryBatch {
    private var bytes: [UInt8] = []
    private var entries: [(keyEnd: Int, valueEnd: Int)] = []

    var count: Int { entries.count }

    mutating func add(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        append(key)
        let keyEnd = bytes.count
        append(value)
        entries.append((keyEnd, bytes.count))
    }

    /// Appends raw bytes with one copy (`Array.append(contentsOf:)` takes a raw buffer byte by byte:
    /// a fifth of a 10M-cell snapshot's time).
    private mutating func append(_ raw: UnsafeRawBufferPointer) {
        guard let base = raw.baseAddress, raw.count > 0 else { return }
        // Bytes as bytes: any memory may be read as UInt8.
        bytes.append(contentsOf: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: raw.count))
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
    }

    func forEach(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Void) rethrows {
        try bytes.withUnsafeBytes { raw in
            var start = 0
            for (keyEnd, valueEnd) in entries {
                try body(UnsafeRawBufferPointer(rebasing: raw[start..<keyEnd]),
                         UnsafeRawBufferPointer(rebasing: raw[keyEnd..<valueEnd]))
                start = valueEnd
            }
        }
    }
}

extension CRC32C {
    /// Feeds one database entry: key length (u32 LE), key, value length (u32 LE), value.
    mutating func updateEntry(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        update(littleEndian: UInt32(key.count))
        update(key)
        update(littleEndian: UInt32(value.count))
        update(value)
    }
}
