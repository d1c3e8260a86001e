/// Appends fixed-width integers to a byte array: little-endian values, big-endian keys.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func i64(_ value: Int64) { u64(UInt64(bitPattern: value)) }
    /// Big-endian, for keys whose byte order must be numeric order.
    mutating func u32BigEndian(_ value: UInt32) { withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) } }
    mutating func raw(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }
    mutating func raw(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }
}

/// Reads what `ByteWriter` wrote, refusing to read past the end: a short or malformed value throws
/// `ByteReader.Truncated` instead of trapping.
struct ByteReader {
    struct Truncated: Error {}

    private let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset == bytes.count }

    private mutating func take(_ count: Int) throws(Truncated) -> Int {
        guard count >= 0, remaining >= count else { throw Truncated() }
        defer { offset += count }
        return offset
    }

    mutating func u8() throws(Truncated) -> UInt8 { bytes[try take(1)] }
    mutating func u32() throws(Truncated) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(4), as: UInt32.self))
    }
    mutating func i32() throws(Truncated) -> Int32 { Int32(bitPattern: try u32()) }
    mutating func u64() throws(Truncated) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: try take(8), as: UInt64.self))
    }
    mutating func i64() throws(Truncated) -> Int64 { Int64(bitPattern: try u64()) }
    mutating func u32BigEndian() throws(Truncated) -> UInt32 {
        UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: try take(4), as: UInt32.self))
    }
    mutating func raw(_ count: Int) throws(Truncated) -> UnsafeRawBufferPointer {
        let start = try take(count)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<start + count])
    }
    /// A count of items of at least `itemBytes` each, checked against the bytes left.
    mutating func count(itemBytes: Int) throws(Truncated) -> Int {
        let count = Int(try u32())
        guard count * itemBytes <= remaining else { throw Truncated() }
        return count
    }
}
