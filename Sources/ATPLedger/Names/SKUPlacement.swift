/// How a SKU's shard is chosen. A SKU's cells, holds and events all live on one shard; the scheme
/// decides which (docs/ARCHITECTURE.md, "Where a SKU lives").
public enum SKUPlacementScheme: UInt8, Sendable, Equatable, CaseIterable, CustomStringConvertible {
    /// Shard = SKU id mod shardCount. Ids are handed out in the order names are first seen, so only
    /// the server knows a SKU's shard. Data directories written before name placement use it.
    case skuID = 0
    /// Shard = `hashBytes(name)` mod shardCount: anyone who knows the name and the shard count can
    /// compute the shard (a shard-aware client), and it does not depend on the order of arrival.
    case nameHash = 1

    /// The scheme's name in files, logs and configuration.
    public var description: String {
        switch self {
        case .skuID: "sku-id"
        case .nameHash: "name-hash"
        }
    }

    /// The scheme named `text` (`description`), or nil.
    public init?(named text: String) {
        guard let scheme = Self.allCases.first(where: { $0.description == text }) else { return nil }
        self = scheme
    }
}

/// The placement of an engine's SKUs: the scheme and the shard count.
public struct SKUPlacement: Sendable, Equatable, CustomStringConvertible {
    /// How a SKU's shard is chosen.
    public var scheme: SKUPlacementScheme
    /// Shards; a power of two from 1 to 4096.
    public var shardCount: Int

    /// A placement of `shardCount` shards (a power of two) under `scheme`.
    public init(scheme: SKUPlacementScheme, shardCount: Int) {
        precondition(shardCount >= 1 && shardCount <= 4096 && shardCount.nonzeroBitCount == 1, "shard count \(shardCount)")
        self.scheme = scheme
        self.shardCount = shardCount
    }

    /// log2 of the shard count.
    var shardBits: Int { shardCount.trailingZeroBitCount }

    /// The shard of the SKU named `name` (its UTF-8 bytes) under `.nameHash`: `hashBytes(name) mod
    /// shardCount`, computable without the server; nil under `.skuID`, where it depends on the id.
    public func shardIndex(ofSKUNamed name: UnsafeRawBufferPointer) -> Int? {
        scheme == .nameHash ? SKUPlacementMap.shard(nameHash: hashBytes(name), shardBits: shardBits) : nil
    }

    /// `shardIndex(ofSKUNamed:)` for a string.
    public func shardIndex(ofSKUNamed name: String) -> Int? {
        var copy = name
        return copy.withUTF8 { shardIndex(ofSKUNamed: UnsafeRawBufferPointer($0)) }
    }

    public var description: String { "\(scheme) over \(shardCount) shards" }
}

/// Where each SKU lives: a placement number per SKU id, `local << shardBits | shard`, where `shard`
/// is the SKU's shard and `local` numbers the SKUs of that shard densely from 0 in id order (the
/// shard's cell store keeps one chain head per local number). Under `.skuID` the placement number is
/// the id itself. Deterministic: the placements of ids 0..<n depend only on the names of those ids,
/// the scheme and the shard count, so an image or a journal replay that interns the same names in
/// id order gets the same placements.
///
/// This value type serves single-threaded builders (`LedgerImageBuilder`, images); `NameTable`
/// keeps the same numbers for the engine, readable from any thread.
struct SKUPlacementMap: Sendable {
    let scheme: SKUPlacementScheme
    let shardBits: Int
    /// Placement numbers by id (`.nameHash` only).
    private(set) var placements: [UInt32] = []
    /// SKUs per shard so far (`.nameHash` only).
    private var localCounts: [UInt32]

    init(scheme: SKUPlacementScheme, shardCount: Int) {
        precondition(shardCount >= 1 && shardCount.nonzeroBitCount == 1, "shard count \(shardCount)")
        self.scheme = scheme
        shardBits = shardCount.trailingZeroBitCount
        localCounts = scheme == .nameHash ? Array(repeating: 0, count: shardCount) : []
    }

    /// A map of `placements` already assigned (by id), as a catalog holds them.
    init(scheme: SKUPlacementScheme, shardCount: Int, placements: [UInt32]) {
        self.init(scheme: scheme, shardCount: shardCount)
        guard scheme == .nameHash else { return }
        self.placements = placements
        for placement in placements { localCounts[Int(placement) & (shardCount - 1)] += 1 }
    }

    /// Assigns the next id's placement from its name's hash (`hashBytes`); returns nil when its shard
    /// has no local number left (more than 2^(32 - shardBits) SKUs on one shard).
    mutating func append(id: UInt32, nameHash: UInt64) -> UInt32? {
        guard scheme == .nameHash else { return id }
        precondition(Int(id) == placements.count, "placement of id \(id) out of order")
        guard let placement = SKUPlacementMap.assign(nameHash: nameHash, shardBits: shardBits,
                                                     localCounts: &localCounts) else { return nil }
        placements.append(placement)
        return placement
    }

    /// The placement number of `id`; an id never appended (`SKUID.unknown`) answers itself, a
    /// local number no shard has, as `NameTable` does.
    @inline(__always) func placement(of id: UInt32) -> UInt32 {
        scheme == .nameHash && Int(id) < placements.count ? placements[Int(id)] : id
    }

    /// The shard of a name hash under `.nameHash` with `shardBits`.
    @inline(__always) static func shard(nameHash: UInt64, shardBits: Int) -> Int {
        Int(truncatingIfNeeded: nameHash) & ((1 << shardBits) - 1)
    }

    /// The next placement number of the shard `nameHash` selects, counting it in `localCounts`;
    /// nil when that shard's local numbers are used up.
    static func assign(nameHash: UInt64, shardBits: Int, localCounts: inout [UInt32]) -> UInt32? {
        let shard = shard(nameHash: nameHash, shardBits: shardBits)
        let local = localCounts[shard]
        guard UInt64(local) < UInt64(1) << (32 - shardBits) - 1 else { return nil }
        localCounts[shard] = local + 1
        let placement = local << UInt32(shardBits) | UInt32(shard)
        assert(Int(placement) & ((1 << shardBits) - 1) == shard)
        return placement
    }
}
