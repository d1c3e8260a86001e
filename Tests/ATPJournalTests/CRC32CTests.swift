@testable import ATPJournal
import Testing

/// CRC32C against the standard check value, a bit-at-a-time reference and itself in pieces.
@Suite struct CRC32CTests {
    /// The textbook bitwise CRC32C, to check the slicing-by-8 tables against.
    static func bitwise(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0 ..< 8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return crc ^ 0xFFFF_FFFF
    }

    @Test func standardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        // RFC 3720 (iSCSI) B.4 vectors: 32 bytes of zeros, of 0xFF, ascending.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0 ..< 32).map { UInt8($0) }) == 0x46DD_794E)
    }

    @Test func matchesTheBitwiseReferenceAtEveryLengthAndSplit() {
        var generator = SystemRandomNumberGenerator()
        for length in 0 ..< 80 {
            let bytes = (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            let expected = Self.bitwise(bytes)
            #expect(CRC32C.checksum(bytes) == expected, "length \(length)")
            for split in 0 ... length {
                var crc = CRC32C()
                bytes[..<split].withUnsafeBytes { crc.update($0) }
                bytes[split...].withUnsafeBytes { crc.update($0) }
                #expect(crc.value == expected, "length \(length) split \(split)")
            }
        }
    }

    @Test func unalignedStartGivesTheSameChecksum() {
        let bytes = (0 ..< 1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        for start in 0 ..< 8 {
            let slice = Array(bytes[start...])
            let viaSlice = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) }
            #expect(viaSlice == Self.bitwise(slice))
        }
    }

    @Test func hardwareAndSoftwarePathsAgreeAtEveryLengthAlignmentAndSplit() {
        // Deterministic bytes that are not a simple pattern (Knuth's multiplicative hash of the index).
        let bytes = (0 ..< 600).map { UInt8(truncatingIfNeeded: (UInt32($0) &* 2_654_435_761) >> 13) }
        bytes.withUnsafeBytes { all in
            for start in 0 ..< 9 {
                for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200, 591 - start] {
                    let piece = UnsafeRawBufferPointer(rebasing: all[start ..< start + length])
                    var software = CRC32C()
                    software.updateInSoftware(piece)
                    #expect(software.value == Self.bitwise(Array(piece)), "start \(start) length \(length)")
                    #expect(CRC32C.checksum(piece) == software.value, "start \(start) length \(length)")
                    // Pieces may mix the two paths.
                    let half = length / 2
                    var mixed = CRC32C()
                    mixed.updateInSoftware(UnsafeRawBufferPointer(rebasing: piece[..<half]))
                    mixed.update(UnsafeRawBufferPointer(rebasing: piece[half...]))
                    #expect(mixed.value == software.value, "start \(start) length \(length) mixed")
                }
            }
        }
    }
}
