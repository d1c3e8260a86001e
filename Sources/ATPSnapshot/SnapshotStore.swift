import ATPLMDB
import ATPLedger
import Synchronization

/// Snapshots of the ledger on disk: `<directory>/snapshots/snapshot-<id, 20 digits>/`, each an LMDB
/// environment readable by `mdb_stat` and `mdb_dump` (format: docs/SNAPSHOT.md).
///
/// Writing goes to `snapshot-<id>.tmp/`, which becomes the final directory only once everything is
/// written, synced and checksummed (then the rename is made durable by fsyncing the parent): a
/// crash or error at any point leaves either a complete snapshot or no snapshot. Calls are
/// serialised by a lock (one write at a time per store); they block the caller, so run them off
/// event loops and off the engine's workers.
public final class SnapshotStore: Sendable {
    /// The directory holding `snapshots/`.
    public let directory: String
    /// The `snapshots/` directory itself.
    public let snapshotsDirectory: String
    /// Limits in force.
    public let configuration: SnapshotStoreConfiguration
    private let lock = Mutex<Void>(())

    /// A store under `directory` keeping the newest `keep` snapshots when pruned.
    public convenience init(directory: String, keep: Int) {
        var configuration = SnapshotStoreConfiguration()
        configuration.keep = keep
        self.init(directory: directory, configuration: configuration)
    }

    /// A store under `directory` with explicit limits. Nothing is touched on disk until used.
    public init(directory: String, configuration: SnapshotStoreConfiguration) {
        precondition(configuration.keep >= 1, "keep at least one snapshot")
        precondition(configuration.entriesPerTransaction >= 1 && configuration.mapSizeBytesMax > 0)
        self.directory = directory
        snapshotsDirectory = directory + "/snapshots"
        self.configuration = configuration
    }

    /// The directory of snapshot `id`.
    public func path(of id: UInt64) -> String { snapshotsDirectory + "/" + SnapshotStore.directoryName(id) }

    static func directoryName(_ id: UInt64) -> String {
        let digits = String(id)
        return "snapshot-" + String(repeating: "0", count: 20 - digits.count) + digits
    }

    static func id(ofDirectoryName name: String) -> UInt64? {
        guard name.hasPrefix("snapshot-"), name.utf8.count == 29 else { return nil }
        let digits = name.dropFirst(9)
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }

    // MARK: - Writing

    /// Writes `image` as a new snapshot with the next id and returns its info. Cost: O(image), in
    /// LMDB transactions of `entriesPerTransaction` entries; the map grows on demand up to
    /// `mapSizeBytesMax`. On any failure (disk full, map full at the maximum, I/O error) the `.tmp`
    /// directory is removed and the error thrown; existing snapshots are untouched.
    public func write(_ image: LedgerImage, metadata: SnapshotMetadata) throws(SnapshotError) -> SnapshotInfo {
        try withLock { () throws(SnapshotError) -> SnapshotInfo in
            try FileSystem.makeDirectories(snapshotsDirectory)
            let id = (try listLocked().last ?? 0) + 1
            let finalPath = path(of: id)
            let temporaryPath = finalPath + ".tmp"
            try FileSystem.removeTree(temporaryPath)
            do throws(SnapshotError) {
                try FileSystem.makeDirectories(temporaryPath)
                let mapSize = configuration.mapSizeBytesInitial ?? SnapshotWriter.estimatedMapSizeBytes(image)
                let writer = try SnapshotWriter(path: temporaryPath, mapSizeBytes: mapSize, configuration: configuration)
                try writer.write(image, id: id, metadata: metadata)
                let dataPath = temporaryPath + "/data.mdb"
                guard let dataBytes = try FileSystem.fileSize(dataPath) else { throw FileSystem.error("stat", dataPath, 2) }
                let checksum = SnapshotChecksumFile(crc32c: try SnapshotChecksumFile.checksum(of: dataPath), bytes: dataBytes)
                try FileSystem.writeFile(temporaryPath + "/" + SnapshotFormat.checksumFileName, checksum.text)
                try FileSystem.sync(dataPath)
                try FileSystem.sync(temporaryPath)
                try FileSystem.move(temporaryPath, to: finalPath)
                try FileSystem.sync(snapshotsDirectory)
                return SnapshotInfo(
                    id: id, path: finalPath, cutWallClockMilliseconds: image.cutWallClockMilliseconds,
                    clockMilliseconds: image.clockMilliseconds, workerMarks: image.workerMarks,
                    cellCount: image.cellCount, engineVersion: metadata.engineVersion,
                    formatVersion: SnapshotFormat.version, shardCount: image.shardCount,
                    skuPlacement: image.skuPlacement, dataBytes: dataBytes)
            } catch {
                try? FileSystem.removeTree(temporaryPath)
                throw error
            }
        }
    }

    // MARK: - Reading

    /// Ids of the complete snapshots, oldest first (`.tmp` directories are not snapshots).
    public func list() throws(SnapshotError) -> [UInt64] {
        try withLock { () throws(SnapshotError) -> [UInt64] in try listLocked() }
    }

    private func listLocked() throws(SnapshotError) -> [UInt64] {
        try FileSystem.list(snapshotsDirectory).compactMap(SnapshotStore.id(ofDirectoryName:)).sorted()
    }

    /// The meta entries of snapshot `id` (without the full checksum pass of `load`).
    public func info(_ id: UInt64) throws(SnapshotError) -> SnapshotInfo {
        try existingReader(id).info()
    }

    /// Loads and verifies snapshot `id` (every check of docs/SNAPSHOT.md). Cost: one pass over
    /// data.mdb for its checksum, one over every database.
    public func load(_ id: UInt64) throws(SnapshotError) -> (LedgerImage, SnapshotInfo) {
        try existingReader(id).load()
    }

    /// The newest snapshot that opens and verifies. A snapshot that fails (missing or corrupt file,
    /// checksum mismatch, invalid content) is skipped for the one before it, and `log` gets one
    /// line saying which and why. nil when there is none. Throws only when the snapshots directory
    /// itself cannot be read.
    public func loadNewestValid(log: (String) -> Void) throws(SnapshotError) -> (LedgerImage, SnapshotInfo)? {
        for id in try list().reversed() {
            do {
                return try load(id)
            } catch {
                log("snapshot \(id) skipped: \(error)")
            }
        }
        return nil
    }

    private func existingReader(_ id: UInt64) throws(SnapshotError) -> SnapshotReader {
        let path = path(of: id)
        guard FileSystem.isDirectory(path) else { throw .notFound(id: id) }
        return SnapshotReader(id: id, path: path)
    }

    // MARK: - Pruning

    /// Removes all but the newest `keep` snapshots, and leftover `.tmp` directories of writes that
    /// did not finish (a crash). Answers the ids removed.
    @discardableResult
    public func prune() throws(SnapshotError) -> [UInt64] {
        try withLock { () throws(SnapshotError) -> [UInt64] in
            let names = try FileSystem.list(snapshotsDirectory)
            for name in names where name.hasPrefix("snapshot-") && name.hasSuffix(".tmp") {
                try FileSystem.removeTree(snapshotsDirectory + "/" + name)
            }
            let ids = names.compactMap(SnapshotStore.id(ofDirectoryName:)).sorted()
            let removed = Array(ids.dropLast(configuration.keep))
            for id in removed { try FileSystem.removeTree(path(of: id)) }
            if !removed.isEmpty { try FileSystem.sync(snapshotsDirectory) }
            return removed
        }
    }

    private func withLock<R>(_ body: () throws(SnapshotError) -> R) throws(SnapshotError) -> R {
        let result: Result<R, SnapshotError> = lock.withLock { _ in
            do throws(SnapshotError) { return .success(try body()) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
