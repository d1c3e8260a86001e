import CATPSupport

/// CRC32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF),
/// the checksum of every journal record and segment header.
///
/// The CPU's crc32 instruction where there is one (x86-64 SSE4.2: 8 bytes per instruction, several
/// GB/s; a 600 MB snapshot file is checked in about a tenth of a second), else software
/// slicing-by-8: eight bytes per step through eight 256-entry tables (8 KiB, built once). Both give
/// the same register after every byte, so pieces may mix. The standard check value, `checksum("123456789") == 0xE3069283`, is verified by the tests.
///
/// Use `update` any number of times, then read `value`; the state is a plain value, so a partial
/// checksum can be copied and continued.
public struct CRC32C: Sendable, Equatable {
    /// The running register, before the final xor.
    private var register: UInt32 = 0xFFFF_FFFF

    /// A checksum of no bytes yet.
    public init() {}

    /// The checksum of everything passed to `update` so far. O(1).
    public var value: UInt32 { register ^ 0xFFFF_FFFF }

    /// The checksum of `bytes` alone. O(n).
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// The checksum of `bytes` alone. O(n).
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// Whether `update` uses the CPU's crc32 instruction (decided once per process).
    public static let usesHardware = atp_crc32c_hardware_available() != 0

    /// Continues the checksum over `bytes`. O(n), no allocation.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        if Self.usesHardware {
            register = atp_crc32c_update_hardware(register, base, bytes.count)
        } else {
            updateInSoftware(bytes)
        }
    }

    /// The slicing-by-8 path (also what the tests compare the hardware path with).
    mutating func updateInSoftware(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        var crc = register
        var offset = 0
        let count = bytes.count
        CRC32CTables.tables.withUnsafeBufferPointer { table in
            while count - offset >= 8 {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                    ^ UInt64(crc)
                crc = table[7 &* 256 &+ Int(truncatingIfNeeded: word & 0xFF)]
                    ^ table[6 &* 256 &+ Int(truncatingIfNeeded: (word &>> 8) & 0xFF)]
                    ^ table[5 &* 256 &+ Int(truncatingIfNeeded: (word &>> 16) & 0xFF)]
                    ^ table[4 &* 256 &+ Int(truncatingIfNeeded: (word &>> 24) & 0xFF)]
                    ^ table[3 &* 256 &+ Int(truncatingIfNeeded: (word &>> 32) & 0xFF)]
                    ^ table[2 &* 256 &+ Int(truncatingIfNeeded: (word &>> 40) & 0xFF)]
                    ^ table[1 &* 256 &+ Int(truncatingIfNeeded: (word &>> 48) & 0xFF)]
                    ^ table[Int(truncatingIfNeeded: word &>> 56)]
                offset &+= 8
            }
            while offset < count {
                let byte = base.load(fromByteOffset: offset, as: UInt8.self)
                crc = table[Int(truncatingIfNeeded: (crc ^ UInt32(byte)) & 0xFF)] ^ (crc &>> 8)
                offset &+= 1
            }
        }
        register = crc
    }

    /// Continues the checksum over the 8 little-endian bytes of `value`. No allocation.
    public mutating func update(littleEndian value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { update($0) }
    }

    /// Continues the checksum over the 4 little-endian bytes of `value`. No allocation.
    public mutating func update(littleEndian value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { update($0) }
    }

    /// Continues the checksum over `bytes`.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Continues the checksum over one byte. No allocation.
    public mutating func update(byte: UInt8) {
        withUnsafeBytes(of: byte) { update($0) }
    }
}

/// The slicing-by-8 tables: table `k` (entries `k*256 ..< (k+1)*256`) is the CRC of a byte
/// followed by `k` zero bytes.
enum CRC32CTables {
    static let polynomial: UInt32 = 0x82F6_3B78

    static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1
            }
            tables[byte] = crc
        }
        for slice in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(slice - 1) * 256 + byte]
                tables[slice * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()
}
