import ATPLedger
import NIOCore

/// A channel definition with names as strings (docs/PROTOCOL.md §7.8), the wire form of
/// `ChannelDefinition`: the channelSet request and each entry of the channelShow reply.
public struct WireChannelDefinition: Sendable, Equatable {
    /// The channel's name, 1..32 bytes.
    public var name: String
    /// Units held back from the channel.
    public var bufferUnits: Int64
    /// Percentage offered, 1..100.
    public var capPercent: UInt8
    /// Locations in priority order.
    public var locations: [String]

    /// A definition from its fields.
    public init(name: String, bufferUnits: Int64 = 0, capPercent: UInt8 = 100, locations: [String]) {
        self.name = name
        self.bufferUnits = bufferUnits
        self.capPercent = capPercent
        self.locations = locations
    }

    /// The readable form of a ledger definition, given the names of its ids.
    public init(_ definition: ChannelDefinition, name: String, locationName: (LocationID) -> String) {
        self.init(name: name, bufferUnits: definition.bufferUnits, capPercent: UInt8(clamping: definition.capPercent),
                  locations: definition.locations.map(locationName))
    }

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeName(name)
        buffer.writeLE(bufferUnits)
        buffer.writeLE(capPercent)
        buffer.writeLE(UInt32(locations.count))
        for location in locations { buffer.writeName(location) }
    }

    /// Decodes a definition. With `limits` (a request) names must be valid and the location count
    /// is bounded by `batchItemsMax`; without (a reply) names need only be UTF-8.
    static func decode(_ reader: inout PayloadReader, limits: ProtocolLimits?) throws(MessageDecodingError) -> Self {
        let name = limits == nil ? try reader.readReplyName("channel") : try reader.readName(.channel, "channel")
        try reader.require(9, "channel definition")
        let buffer = reader.readUnchecked(Int64.self)
        let cap = reader.readUnchecked(UInt8.self)
        let count = try reader.readCount("location count", minimumItemBytes: 1, limit: limits?.batchItemsMax)
        var locations: [String] = []
        locations.reserveCapacity(count)
        for index in 0..<count {
            locations.append(limits == nil ? try reader.readReplyName("location")
                                           : try reader.readName(.location, item: index, "location"))
        }
        return WireChannelDefinition(name: name, bufferUnits: buffer, capPercent: cap, locations: locations)
    }
}
