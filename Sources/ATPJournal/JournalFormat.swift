/// The on-disk layout of a record (all integers little-endian):
///
/// ```
/// offset 0  u32 payloadBytes
/// offset 4  u32 crc32c      over bytes 8 ..< 17 + payloadBytes (lsn, kind, payload)
/// offset 8  u64 lsn
/// offset 16 u8  kind
/// offset 17 payload
/// ```
enum RecordHeader {
    /// Bytes before the payload.
    static let bytes = 17
    static let payloadBytesOffset = 0
    static let checksumOffset = 4
    static let lsnOffset = 8
    static let kindOffset = 16

    /// The checksum a record with these fields carries. O(payload).
    static func checksum(lsn: UInt64, kind: UInt8, payload: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CRC32C()
        crc.update(littleEndian: lsn)
        crc.update(byte: kind)
        crc.update(payload)
        return crc.value
    }

    /// Writes the 17 header bytes at `destination` (which must hold them).
    static func encode(
        payloadBytes: Int, checksum: UInt32, lsn: UInt64, kind: UInt8, into destination: UnsafeMutableRawBufferPointer
    ) {
        precondition(destination.count >= bytes, "record header needs \(bytes) bytes")
        precondition(payloadBytes >= 0 && payloadBytes <= Int(UInt32.max), "payload length out of range")
        destination.storeBytes(of: UInt32(payloadBytes).littleEndian, toByteOffset: payloadBytesOffset, as: UInt32.self)
        destination.storeBytes(of: checksum.littleEndian, toByteOffset: checksumOffset, as: UInt32.self)
        destination.storeBytes(of: lsn.littleEndian, toByteOffset: lsnOffset, as: UInt64.self)
        destination.storeBytes(of: kind, toByteOffset: kindOffset, as: UInt8.self)
    }

    /// The fields of the 17 header bytes at the start of `source`.
    static func decode(_ source: UnsafeRawBufferPointer) -> (payloadBytes: Int, checksum: UInt32, lsn: UInt64, kind: UInt8) {
        precondition(source.count >= bytes, "record header needs \(bytes) bytes")
        let payloadBytes = UInt32(littleEndian: source.loadUnaligned(fromByteOffset: payloadBytesOffset, as: UInt32.self))
        let checksum = UInt32(littleEndian: source.loadUnaligned(fromByteOffset: checksumOffset, as: UInt32.self))
        let lsn = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: lsnOffset, as: UInt64.self))
        return (Int(payloadBytes), checksum, lsn, source[kindOffset])
    }
}

/// The 32-byte header at the start of every segment file (all integers little-endian):
///
/// ```
/// offset 0  8 bytes "ATPJRNL1"
/// offset 8  u32 formatVersion (1)
/// offset 12 u32 streamIndex
/// offset 16 u64 firstLSN     (the LSN of the segment's first record; also in the file name)
/// offset 24 u32 reserved (0)
/// offset 28 u32 crc32c       over bytes 0 ..< 28
/// ```
struct SegmentHeader: Equatable {
    static let bytes = 32
    static let magic: [UInt8] = Array("ATPJRNL1".utf8)
    static let formatVersion: UInt32 = 1

    var streamIndex: UInt32
    var firstLSN: UInt64

    /// The 32 header bytes.
    func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.bytes)
        bytes.withUnsafeMutableBytes { raw in
            raw.copyBytes(from: Self.magic)
            raw.storeBytes(of: Self.formatVersion.littleEndian, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: streamIndex.littleEndian, toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: firstLSN.littleEndian, toByteOffset: 16, as: UInt64.self)
            let checksum = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<28]))
            raw.storeBytes(of: checksum.littleEndian, toByteOffset: 28, as: UInt32.self)
        }
        return bytes
    }

    /// What a header read back turned out to be.
    enum Decoded: Equatable {
        case valid(SegmentHeader)
        /// The checksum matches but the version is one this build does not read.
        case unsupportedVersion(UInt32)
        case damaged(JournalDamage)
    }

    /// Verifies and decodes `source`, the first bytes of a segment file (possibly fewer than 32).
    static func decode(_ source: UnsafeRawBufferPointer) -> Decoded {
        guard source.count >= bytes else { return .damaged(.truncatedSegmentHeader(bytesPresent: source.count)) }
        let stored = UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 28, as: UInt32.self))
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: source[0..<28]))
        guard stored == computed else {
            return .damaged(.badSegmentHeader(reason: "header checksum mismatch"))
        }
        guard source[0..<8].elementsEqual(magic) else {
            return .damaged(.badSegmentHeader(reason: "magic is not ATPJRNL1"))
        }
        let version = UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard version == formatVersion else { return .unsupportedVersion(version) }
        let streamIndex = UInt32(littleEndian: source.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        let firstLSN = UInt64(littleEndian: source.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        return .valid(SegmentHeader(streamIndex: streamIndex, firstLSN: firstLSN))
    }
}

/// One segment file of a stream: `segment-<firstLSN as 20 digits>.journal`.
public struct JournalSegment: Sendable, Equatable, Comparable {
    /// The LSN of the segment's first record (the next LSN when it has none yet).
    public var firstLSN: UInt64
    /// The file's full path.
    public var path: String

    /// Orders by first LSN.
    public static func < (lhs: JournalSegment, rhs: JournalSegment) -> Bool { lhs.firstLSN < rhs.firstLSN }

    static let prefix = "segment-"
    static let suffix = ".journal"
    static let digits = 20

    /// The file name of the segment starting at `firstLSN`.
    static func fileName(firstLSN: UInt64) -> String {
        let number = String(firstLSN)
        return prefix + String(repeating: "0", count: digits - number.count) + number + suffix
    }

    /// The first LSN named by `fileName`, or nil when it is not a segment file name.
    static func firstLSN(fileName: String) -> UInt64? {
        let utf8 = Array(fileName.utf8)
        guard utf8.count == prefix.utf8.count + digits + suffix.utf8.count,
              fileName.hasPrefix(prefix), fileName.hasSuffix(suffix) else { return nil }
        let number = utf8[prefix.utf8.count ..< prefix.utf8.count + digits]
        guard number.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        // LSNs start at 1: a name with 0 (or past UInt64.max) is not one of ours.
        guard let lsn = UInt64(String(decoding: number, as: UTF8.self)), lsn >= 1 else { return nil }
        return lsn
    }
}

/// Where journal files live under a data directory.
public enum JournalLayout {
    /// `<dataDirectory>/journal/stream-<streamIndex>`: the directory of one stream.
    public static func streamDirectory(dataDirectory: String, streamIndex: Int) -> String {
        "\(dataDirectory)/journal/stream-\(streamIndex)"
    }

    /// The name of the lock file that keeps a second stream out of a directory.
    static let lockFileName = "LOCK"
}
