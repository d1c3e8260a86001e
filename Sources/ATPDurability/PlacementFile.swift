#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPLedger

/// `<data>/placement`: how the data directory's SKUs are placed on shards (docs/DURABILITY.md,
/// "The data directory"). Journal records and snapshots name SKUs by id and keep each SKU's state on
/// its shard, so a directory must be reopened with the placement it was written with. Two text lines:
///
///     sku-placement name-hash
///     shard-count 64
///
/// Written once, before the first journal record of a fresh directory (atomically: a temporary
/// file, fsync, rename, fsync of the directory). A directory written before this file existed has
/// none: its SKUs are placed by id, and the file is written saying so when it is next opened.
struct PlacementFile: Equatable {
    var placement: SKUPlacement

    static let fileName = "placement"

    /// The file of `directory`, nil when there is none. Throws `.dataDirectory` when it cannot be
    /// read or does not say a known scheme and a valid shard count.
    static func read(directory: String) throws(DurabilityError) -> PlacementFile? {
        let path = directory + "/" + fileName
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw .dataDirectory(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        var bytes = [UInt8](repeating: 0, count: 256)
        let count = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
        guard count >= 0 else { throw .dataDirectory(path: path, reason: String(cString: strerror(errno))) }
        let text = String(decoding: bytes[0..<count], as: UTF8.self)
        var scheme: SKUPlacementScheme?
        var shardCount: Int?
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count == 2 else { continue }
            switch words[0] {
            case "sku-placement": scheme = SKUPlacementScheme(named: String(words[1]))
            case "shard-count":
                shardCount = Int(words[1]).flatMap { $0 >= 1 && $0 <= 4096 && $0.nonzeroBitCount == 1 ? $0 : nil }
            default: continue
            }
        }
        guard let scheme, let shardCount else {
            throw .dataDirectory(path: path, reason: "expected the lines `sku-placement name-hash|sku-id` and "
                                 + "`shard-count <a power of two from 1 to 4096>`, found \(text.debugDescription)")
        }
        return PlacementFile(placement: SKUPlacement(scheme: scheme, shardCount: shardCount))
    }

    /// The file's text.
    var text: String { "sku-placement \(placement.scheme)\nshard-count \(placement.shardCount)\n" }

    /// Writes the file into `directory` durably (temporary file, fsync, rename, fsync of the directory).
    func write(directory: String) throws(DurabilityError) {
        let path = directory + "/" + PlacementFile.fileName
        let temporary = path + ".tmp"
        func fail(_ operation: String, _ target: String) -> DurabilityError {
            .dataDirectory(path: target, reason: "\(operation): \(String(cString: strerror(errno)))")
        }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw fail("open", temporary) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress!, $0.count) }
        guard written == bytes.count, fsync(descriptor) == 0 else {
            let failure = fail(written == bytes.count ? "fsync" : "write", temporary)
            close(descriptor)
            throw failure
        }
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw fail("rename", path) }
        let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
        guard directoryDescriptor >= 0 else { throw fail("open", directory) }
        defer { close(directoryDescriptor) }
        guard fsync(directoryDescriptor) == 0 else { throw fail("fsync", directory) }
    }

    /// The placement to open `directory` with: its file's; else the snapshot's (`snapshot`); else,
    /// when the journal holds records (`hasRecords`), `.skuID` (written before name placement);
    /// else, a fresh directory, `configured`. Writes the file when it was missing. Throws
    /// `.placementMismatch` when the file and the snapshot disagree, `.shardCountMismatch` when
    /// the directory's shard count is not the configuration's.
    static func settle(directory: String, configured: SKUPlacement, snapshot: SKUPlacement?,
                       hasRecords: Bool) throws(DurabilityError) -> SKUPlacement {
        let existing = try read(directory: directory)
        let placement: SKUPlacement
        if let existing {
            if let snapshot, snapshot != existing.placement {
                throw .placementMismatch(file: existing.placement, snapshot: snapshot)
            }
            placement = existing.placement
        } else if let snapshot {
            placement = snapshot
        } else if hasRecords {
            placement = SKUPlacement(scheme: .skuID, shardCount: configured.shardCount)
        } else {
            placement = configured
        }
        guard placement.shardCount == configured.shardCount else {
            throw .shardCountMismatch(dataDirectory: placement.shardCount, configuration: configured.shardCount)
        }
        if existing == nil { try PlacementFile(placement: placement).write(directory: directory) }
        return placement
    }
}
