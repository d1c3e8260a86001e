import ATPLedger
import ATPSnapshot

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
        let bytes: [UInt8]
        do {
            guard let read = try FileSystem.readFile(path) else { return nil }
            bytes = read
        } catch {
            throw .dataDirectory(path: path, reason: "\(error)")
        }
        let text = String(decoding: bytes.prefix(256), as: UTF8.self)
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
        do {
            try FileSystem.writeFile(path + ".tmp", Array(text.utf8))
            try FileSystem.move(path + ".tmp", to: path)
            try FileSystem.sync(directory)
        } catch {
            throw .dataDirectory(path: path, reason: "\(error)")
        }
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
