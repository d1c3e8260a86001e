/// Constants of the handshake: the magic bytes and the protocol versions this codec speaks.
/// See docs/PROTOCOL.md §3 and §7.1.
public enum ProtocolVersion {
    /// The version this codec implements.
    /// Version 2 adds the shard map to the `hello` reply (§7.1); nothing else differs.
    public static let current: UInt16 = 2
    /// Every version this codec can speak, lowest first.
    public static let supported: ClosedRange<UInt16> = 1...2
    /// The four bytes every `hello` request starts with: ASCII "ATP1".
    public static let magic: (UInt8, UInt8, UInt8, UInt8) = (0x41, 0x54, 0x50, 0x31)

    /// The highest version in `supported` that is also in `clientMin...clientMax`, or nil when there
    /// is none (answer `unsupportedVersion`).
    public static func negotiate(clientMin: UInt16, clientMax: UInt16) -> UInt16? {
        guard clientMin <= clientMax else { return nil }
        let high = min(clientMax, supported.upperBound)
        let low = max(clientMin, supported.lowerBound)
        return low <= high ? high : nil
    }
}
