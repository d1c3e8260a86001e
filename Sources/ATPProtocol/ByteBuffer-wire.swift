import NIOCore

/// Writers for the protocol's field types (docs/PROTOCOL.md §1). Names longer than 255 bytes cannot
/// be represented: that is a programming error (validate names before encoding them).
extension ByteBuffer {
    /// Writes a little-endian integer.
    @inlinable mutating func writeLE<T: FixedWidthInteger>(_ value: T) {
        writeInteger(value, endianness: .little)
    }

    /// Writes a `name`: u8 length, then the UTF-8 bytes. Precondition: at most 255 bytes.
    @inlinable mutating func writeName(_ name: String) {
        let count = name.utf8.count
        precondition(count <= 255, "a name is at most 255 bytes on the wire")
        writeInteger(UInt8(count))
        writeString(name)
    }

    /// Writes a `name` from raw bytes. Precondition: at most 255 bytes.
    @inlinable mutating func writeName(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count <= 255, "a name is at most 255 bytes on the wire")
        writeInteger(UInt8(bytes.count))
        writeBytes(bytes)
    }

    /// Writes a `text`: u16 length, then UTF-8, cut at a character boundary past 65,535 bytes.
    mutating func writeText(_ text: String) {
        var utf8 = Substring(text).utf8
        if utf8.count > Int(UInt16.max) {
            var end = utf8.index(utf8.startIndex, offsetBy: Int(UInt16.max))
            while end > utf8.startIndex && UTF8.isContinuation(utf8[end]) { end = utf8.index(before: end) }
            utf8 = utf8[utf8.startIndex..<end]
        }
        writeInteger(UInt16(utf8.count), endianness: .little)
        writeBytes(utf8)
    }

    /// Writes a `blob`: u16 length, then the bytes. Precondition: at most 65,535 bytes.
    mutating func writeBlob(_ bytes: [UInt8]) {
        precondition(bytes.count <= Int(UInt16.max), "a blob is at most 65,535 bytes")
        writeInteger(UInt16(bytes.count), endianness: .little)
        writeBytes(bytes)
    }
}
