/// A sales channel: an ordered set of locations, a buffer of units held back from it, and an
/// optional cap (the percentage of stock offered). DESIGN §5.
///
/// channel ATP(sku) = floor(max(0, Σ sellable over its locations − bufferUnits) × capPercent / 100)
public struct ChannelDefinition: Sendable, Equatable {
    /// The channel's id (from `Catalog.channel(_:)`).
    public var id: ChannelID
    /// Locations in priority order: reservation lines take units from the first one first.
    public var locations: [LocationID]
    /// Units held back from the channel, >= 0.
    public var bufferUnits: Int64
    /// Percentage of the remaining stock offered, 1...100 (100 = no cap).
    public var capPercent: Int

    /// Locations a channel may list at most.
    public static let locationsMax = 4096

    public init(id: ChannelID, locations: [LocationID], bufferUnits: Int64 = 0, capPercent: Int = 100) {
        self.id = id
        self.locations = locations
        self.bufferUnits = bufferUnits
        self.capPercent = capPercent
    }

    /// Throws when the definition is not valid.
    public func validate(quantityMax: Int64) throws(ChannelDefinitionError) {
        if locations.isEmpty { throw .noLocations }
        if locations.count > Self.locationsMax { throw .tooManyLocations }
        if Set(locations).count != locations.count { throw .duplicateLocation }
        if locations.contains(.unknown) { throw .unknownLocation }
        if bufferUnits < 0 || bufferUnits > quantityMax { throw .bufferOutOfRange }
        if capPercent < 1 || capPercent > 100 { throw .capOutOfRange }
    }

    /// The channel ATP from the sum of sellable units over its locations.
    @inlinable public func atp(sellableSum: Int64) -> Int64 {
        let remaining = max(0, sellableSum - bufferUnits)
        return remaining * Int64(capPercent) / 100
    }
}

/// Why a channel definition was refused.
public enum ChannelDefinitionError: UInt8, Error, Sendable, Equatable, CustomStringConvertible {
    case noLocations = 1
    case tooManyLocations = 2
    case duplicateLocation = 3
    case bufferOutOfRange = 4
    case capOutOfRange = 5
    case unknownLocation = 6
    case unknownChannel = 7
    /// The change could not be made durable (the journal failed); it is applied in memory only.
    case notDurable = 8

    public var description: String {
        switch self {
        case .noLocations: "a channel needs at least one location"
        case .tooManyLocations: "a channel lists at most \(ChannelDefinition.locationsMax) locations"
        case .duplicateLocation: "a location appears twice in the channel"
        case .bufferOutOfRange: "buffer must be from 0 to quantityMax"
        case .capOutOfRange: "cap must be a percentage from 1 to 100"
        case .unknownLocation: "a location name is not valid"
        case .unknownChannel: "no channel by that name"
        case .notDurable: "the change could not be made durable (the journal failed); restart once the disk is fixed"
        }
    }
}

/// The channel definitions a worker's shards read, indexed by channel id. Owned by one worker
/// thread; replaced definitions arrive as worker tasks, so every shard of a worker sees one version.
final class ChannelTable {
    private var definitions: [ChannelDefinition?] = []

    subscript(id: ChannelID) -> ChannelDefinition? {
        Int(id.rawValue) < definitions.count ? definitions[Int(id.rawValue)] : nil
    }

    func set(_ definition: ChannelDefinition) {
        let index = Int(definition.id.rawValue)
        if index >= definitions.count {
            definitions.append(contentsOf: repeatElement(nil, count: index + 1 - definitions.count))
        }
        definitions[index] = definition
    }

    /// Every definition, by id.
    var all: [ChannelDefinition] { definitions.compactMap { $0 } }

    func remove(_ id: ChannelID) {
        if Int(id.rawValue) < definitions.count { definitions[Int(id.rawValue)] = nil }
    }

    /// Replaces every definition with `all` (recovery, and replaying its record).
    func replaceAll(with all: [ChannelDefinition]) {
        definitions = []
        for definition in all { set(definition) }
    }
}
