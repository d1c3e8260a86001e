/// Why an image cannot be built or restored. Each case names what is wrong; an image from a damaged
/// or foreign snapshot should be skipped for an older one.
public enum LedgerImageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The image's shard count differs from the configuration's (SKUs would map to other shards).
    case shardCountMismatch(image: Int, configuration: Int)
    /// The image's SKU placement differs from the configuration's (SKUs would map to other shards).
    case skuPlacementMismatch(image: SKUPlacementScheme, configuration: SKUPlacementScheme)
    /// The image's dedup window size differs from the configuration's.
    case dedupWindowMismatch(image: Int, configuration: Int)
    /// The configuration itself is invalid.
    case configuration(ConfigurationError)
    /// A shard count that is not a power of two from 1 to 4,096, or a window size out of range.
    case invalidGeometry(String)
    /// Names must arrive in id order 0, 1, 2 … per kind.
    case nameOutOfOrder(kind: NameKind, id: UInt32, expected: Int)
    /// A name is invalid, or appears twice (ids would differ after restore).
    case invalidName(kind: NameKind, id: Int, String)
    /// Cells must arrive in strictly ascending (SKU id, location id) order.
    case cellOutOfOrder(sku: UInt32, location: UInt32)
    /// A cell's buckets break the stock model (a floored bucket below 0).
    case invalidCell(sku: UInt32, location: UInt32, String)
    /// An id refers to a name the image does not hold.
    case unknownName(kind: NameKind, id: UInt32, usedBy: String)
    /// A channel definition is invalid.
    case invalidChannel(ChannelID, ChannelDefinitionError)
    /// A reservation record is invalid (duplicate id, a state or grants that do not fit).
    case invalidReservation(ReservationID, String)
    /// A hold is invalid (wrong shard, missing cell, units out of range, duplicate).
    case invalidHold(ReservationID, shard: Int, String)
    /// A dedup window is invalid (wrong shard, size, duplicate).
    case invalidDedupWindow(shard: Int, source: UInt32, String)

    public var description: String {
        switch self {
        case .shardCountMismatch(let image, let configuration):
            "the image has \(image) shards but the configuration \(configuration): restore with shardCount = \(image)"
        case .skuPlacementMismatch(let image, let configuration):
            "the image places SKUs by \(image) but the configuration by \(configuration): restore with skuPlacement = \(image)"
        case .dedupWindowMismatch(let image, let configuration):
            "the image's dedup windows span \(image) sequences but the configuration \(configuration): "
                + "restore with dedupWindowSequences = \(image)"
        case .configuration(let error): "\(error)"
        case .invalidGeometry(let what): "invalid image geometry: \(what)"
        case .nameOutOfOrder(let kind, let id, let expected): "\(kind) name id \(id) arrived where id \(expected) was expected"
        case .invalidName(let kind, let id, let why): "\(kind) name id \(id) is invalid: \(why)"
        case .cellOutOfOrder(let sku, let location):
            "cell (sku#\(sku), location#\(location)) is not after the previous cell in key order"
        case .invalidCell(let sku, let location, let why): "cell (sku#\(sku), location#\(location)): \(why)"
        case .unknownName(let kind, let id, let usedBy): "\(usedBy) names \(kind) id \(id), which the image does not hold"
        case .invalidChannel(let id, let error): "channel \(id): \(error)"
        case .invalidReservation(let id, let why): "reservation \(id): \(why)"
        case .invalidHold(let id, let shard, let why): "hold of \(id) on shard \(shard): \(why)"
        case .invalidDedupWindow(let shard, let source, let why): "dedup window (shard \(shard), source#\(source)): \(why)"
        }
    }
}
