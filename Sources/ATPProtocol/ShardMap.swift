import ATPLedger
import NIOCore

/// Where each SKU's requests are best sent: the server's shards, the owner (core) of each shard,
/// and how to reach each owner directly (docs/PROTOCOL.md §7.1, "The shard map"). Sent in the
/// `hello` reply from protocol version 2. A shard-aware client hashes a SKU's name to its shard
/// (`placement` says how), looks up the shard's owner and sends the request on a connection to that
/// owner's port: the request then runs where it is read, with no hand-off between cores. Any
/// connection still accepts any request (it forwards), so the map is an optimisation, never a
/// condition of correctness. Owners are numbered independently of where they run, so an owner can
/// later be a core of another node (`Owner.host`).
public struct ShardMap: Sendable, Equatable {
    /// How a client computes a SKU's shard.
    public enum Placement: UInt8, Sendable, Equatable {
        /// Only the server can (SKUs placed by id, a data directory from before name placement):
        /// send anywhere.
        case serverOnly = 0
        /// shard = `hashBytes(UTF-8 name) mod shardCount` (docs/PROTOCOL.md §7.1).
        case nameHash = 1
    }

    /// Where to reach one owner.
    public struct Owner: Sendable, Equatable {
        /// Host name or address; empty: the host this connection reached.
        public var host: String
        /// A port whose connections that owner serves; 0: none (send on any connection).
        public var port: UInt16

        /// An owner reached at `host` (empty: this connection's) on `port` (0: no port of its own).
        public init(host: String = "", port: UInt16) {
            self.host = host
            self.port = port
        }
    }

    /// How a SKU's shard is computed.
    public var placement: Placement
    /// Shards; a power of two from 1 to 4,096.
    public var shardCount: Int
    /// The owners (cores), by owner number.
    public var owners: [Owner]
    /// The owner of each shard, by shard index (`shardCount` entries, each below `owners.count`).
    public var shardOwners: [UInt16]
    /// The owner that serves this connection, or nil when none does (the requests of a server
    /// without thread-per-core are handed to worker threads, whatever the connection).
    public var connectionOwner: Int?

    /// A map from its fields; see the properties for what each must be.
    public init(placement: Placement, shardCount: Int, owners: [Owner], shardOwners: [UInt16], connectionOwner: Int?) {
        self.placement = placement
        self.shardCount = shardCount
        self.owners = owners
        self.shardOwners = shardOwners
        self.connectionOwner = connectionOwner
    }

    /// The shard of the SKU named `name` (UTF-8 bytes), or nil under `.serverOnly`.
    public func shardIndex(ofSKUNamed name: UnsafeRawBufferPointer) -> Int? {
        guard placement == .nameHash else { return nil }
        return SKUPlacement(scheme: .nameHash, shardCount: shardCount).shardIndex(ofSKUNamed: name)
    }

    /// The owner of the SKU named `name`, or nil under `.serverOnly`.
    public func owner(ofSKUNamed name: String) -> Int? {
        var copy = name
        return copy.withUTF8 { shardIndex(ofSKUNamed: UnsafeRawBufferPointer($0)) }.map { Int(shardOwners[$0]) }
    }

    /// A map that says only "send anywhere": one owner, no port, every shard its.
    public static let anywhere = ShardMap(placement: .serverOnly, shardCount: 1, owners: [Owner(port: 0)],
                                          shardOwners: [0], connectionOwner: nil)

    /// Value of `connectionOwner` on the wire when no owner serves the connection.
    static let noOwner: UInt16 = 0xFFFF

    func encode(into buffer: inout ByteBuffer) {
        precondition(shardOwners.count == shardCount && !owners.isEmpty && owners.count < Int(ShardMap.noOwner))
        buffer.writeLE(placement.rawValue)
        buffer.writeLE(UInt16(shardCount))
        buffer.writeLE(UInt16(owners.count))
        for owner in owners {
            buffer.writeName(owner.host)
            buffer.writeLE(owner.port)
        }
        for owner in shardOwners { buffer.writeLE(owner) }
        buffer.writeLE(connectionOwner.map { UInt16($0) } ?? ShardMap.noOwner)
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> ShardMap {
        let code = try reader.read(UInt8.self, "placement")
        guard let placement = Placement(rawValue: code) else { throw .unknownLayoutCode(field: "placement", value: code) }
        let shardCount = Int(try reader.read(UInt16.self, "shardCount"))
        guard shardCount >= 1, shardCount <= 4096, shardCount.nonzeroBitCount == 1 else {
            throw .invalidValue(field: "shardCount", value: Int64(shardCount))
        }
        let ownerCount = Int(try reader.read(UInt16.self, "ownerCount"))
        guard ownerCount >= 1, ownerCount < Int(noOwner) else { throw .invalidValue(field: "ownerCount", value: Int64(ownerCount)) }
        var owners: [Owner] = []
        for _ in 0..<ownerCount {
            let host = try reader.readReplyName("host")
            owners.append(Owner(host: host, port: try reader.read(UInt16.self, "port")))
        }
        try reader.require(2 * shardCount + 2, "shard owners")
        var shardOwners: [UInt16] = []
        shardOwners.reserveCapacity(shardCount)
        for _ in 0..<shardCount {
            let owner = reader.readUnchecked(UInt16.self)
            guard Int(owner) < ownerCount else { throw .invalidValue(field: "shard owner", value: Int64(owner)) }
            shardOwners.append(owner)
        }
        let connection = reader.readUnchecked(UInt16.self)
        guard connection == noOwner || Int(connection) < ownerCount else {
            throw .invalidValue(field: "connectionOwner", value: Int64(connection))
        }
        return ShardMap(placement: placement, shardCount: shardCount, owners: owners, shardOwners: shardOwners,
                        connectionOwner: connection == noOwner ? nil : Int(connection))
    }
}
