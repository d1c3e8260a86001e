/// The roles a token grants (docs/PROTOCOL.md §3), sent as a bit set in the `hello` reply.
public struct Roles: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// The wire bits; bits 4..7 are reserved.
    public var rawValue: UInt8
    /// Wraps wire bits.
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Availability queries and channel read-back.
    public static let query = Roles(rawValue: 0x01)
    /// reserve, commit, release.
    public static let reserve = Roles(rawValue: 0x02)
    /// Event ingest and rejection-log read-back.
    public static let ingest = Roles(rawValue: 0x04)
    /// Everything, channel changes and snapshots included.
    public static let admin = Roles(rawValue: 0x08)
    /// Every role.
    public static let all: Roles = [.query, .reserve, .ingest, .admin]

    /// Whether a connection holding these roles may send `opcode`. Cost: a few bit tests.
    @inlinable public func permits(_ opcode: Opcode) -> Bool {
        let required = opcode.requiredRoles
        return required.isEmpty || contains(.admin) || !isDisjoint(with: required)
    }

    /// The role names joined by " | ", or "none".
    public var description: String {
        let names = [(Roles.query, "query"), (.reserve, "reserve"), (.ingest, "ingest"), (.admin, "admin")]
            .filter { contains($0.0) }.map(\.1)
        return names.isEmpty ? "none" : names.joined(separator: " | ")
    }
}
