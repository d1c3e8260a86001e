/// The operation a frame carries (docs/PROTOCOL.md §4). A reply carries its request's opcode.
///
/// A struct rather than an enum so that a frame with an opcode this codec does not know can still be
/// represented, answered (`unknownOpcode`) and re-encoded.
public struct Opcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The wire value.
    public var rawValue: UInt8

    /// Wraps any wire value, known or not.
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Server-initiated error frames that belong to no request (request id 0).
    public static let notice = Opcode(rawValue: 0x00)
    /// The handshake: magic, versions, token; must be the first frame of a connection.
    public static let hello = Opcode(rawValue: 0x01)
    /// Liveness and clock check.
    public static let ping = Opcode(rawValue: 0x02)
    /// A batch of availability queries.
    public static let query = Opcode(rawValue: 0x10)
    /// Hold units for a reservation id.
    public static let reserve = Opcode(rawValue: 0x20)
    /// Turn held units into committed units.
    public static let commit = Opcode(rawValue: 0x21)
    /// Return held or committed units.
    public static let release = Opcode(rawValue: 0x22)
    /// A batch of stock events from one source.
    public static let ingest = Opcode(rawValue: 0x30)
    /// Read the rejection log back.
    public static let rejectionLogRead = Opcode(rawValue: 0x31)
    /// Define or replace a channel.
    public static let channelSet = Opcode(rawValue: 0x40)
    /// Show one channel or all.
    public static let channelShow = Opcode(rawValue: 0x41)
    /// Remove a channel.
    public static let channelRemove = Opcode(rawValue: 0x42)
    /// Counters and sizes as (name, value) pairs.
    public static let stats = Opcode(rawValue: 0x50)
    /// Take a snapshot of the ledger now (a server without a data directory answers `notImplemented`).
    public static let snapshotNow = Opcode(rawValue: 0x60)

    /// Every opcode version 1 defines or reserves, in wire order.
    public static let allKnown: [Opcode] = [
        .notice, .hello, .ping, .query, .reserve, .commit, .release, .ingest, .rejectionLogRead, .channelSet,
        .channelShow, .channelRemove, .stats, .snapshotNow,
    ]

    /// True for the opcodes listed in docs/PROTOCOL.md §4 (`snapshotNow` included).
    public var isKnown: Bool { Opcode.allKnown.contains(self) }

    /// The roles of which a connection needs at least one to send this opcode; empty means any
    /// authenticated connection (ping, stats) or none at all (hello). `admin` implies every role.
    public var requiredRoles: Roles {
        switch self {
        case .query, .channelShow: .query
        case .reserve, .commit, .release: .reserve
        case .ingest, .rejectionLogRead: .ingest
        case .channelSet, .channelRemove, .snapshotNow: .admin
        default: []
        }
    }

    /// The name used in docs/PROTOCOL.md, or the hex value of an unknown opcode.
    public var description: String {
        switch self {
        case .notice: "notice"
        case .hello: "hello"
        case .ping: "ping"
        case .query: "query"
        case .reserve: "reserve"
        case .commit: "commit"
        case .release: "release"
        case .ingest: "ingest"
        case .rejectionLogRead: "rejectionLogRead"
        case .channelSet: "channelSet"
        case .channelShow: "channelShow"
        case .channelRemove: "channelRemove"
        case .stats: "stats"
        case .snapshotNow: "snapshotNow"
        default: "opcode 0x" + String(rawValue, radix: 16)
        }
    }
}
