import ATPLedger
import NIOCore

/// A bounds-checked little-endian cursor over one frame's payload bytes.
///
/// Invariants: `0 <= index <= bytes.count`; `bytes` is valid for as long as the reader is used,
/// which is why a reader only lives inside `ByteBuffer.decodePayload(_:)`'s closure. Every read
/// checks the bounds first and throws `.truncated` rather than reading past the end; the
/// `…Unchecked` reads are for callers that checked a whole fixed-size group with `require`.
@usableFromInline
struct PayloadReader {
    @usableFromInline let bytes: UnsafeRawBufferPointer
    @usableFromInline var index: Int = 0

    @inlinable init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Bytes not read yet.
    @inlinable var remaining: Int { bytes.count &- index }

    /// Throws unless `count` more bytes are there.
    @inlinable @inline(__always)
    func require(_ count: Int, _ field: StaticString) throws(MessageDecodingError) {
        if count > bytes.count &- index { throw .truncated(field: "\(field)") }
    }

    /// Reads an integer whose bounds the caller checked with `require`.
    @inlinable @inline(__always)
    mutating func readUnchecked<T: FixedWidthInteger>(_: T.Type) -> T {
        assert(index + MemoryLayout<T>.size <= bytes.count)
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: T.self))
        index &+= MemoryLayout<T>.size
        return value
    }

    /// Reads a little-endian integer.
    @inlinable @inline(__always)
    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ field: StaticString) throws(MessageDecodingError) -> T {
        try require(MemoryLayout<T>.size, field)
        return readUnchecked(type)
    }

    /// Skips a `name` (u8 length + bytes) and returns where its length byte is.
    @inlinable @inline(__always)
    mutating func readNameRef(_ field: StaticString) throws(MessageDecodingError) -> NameRef {
        try require(1, field)
        let length = Int(bytes[index])
        try require(1 &+ length, field)
        let ref = NameRef(offset: UInt32(truncatingIfNeeded: index))
        index &+= 1 &+ length
        return ref
    }

    /// Reads a `name` and returns its bytes (valid as long as the reader).
    @inlinable mutating func readNameBytes(_ field: StaticString) throws(MessageDecodingError) -> UnsafeRawBufferPointer {
        let ref = try readNameRef(field)
        return NameRef.bytes(of: ref, in: bytes)
    }

    /// Reads a `name` that must be valid for `kind` (1...kind.bytesMax bytes of UTF-8), or throws
    /// `.invalidName` naming `item`.
    mutating func readName(_ kind: NameKind, item: Int? = nil, _ field: StaticString) throws(MessageDecodingError)
        -> String
    {
        let name = try readNameBytes(field)
        do throws(InvalidNameError) { try validateName(name, kind: kind) } catch { throw .invalidName(error, item: item) }
        return String(decoding: name, as: UTF8.self)
    }

    /// Reads a `name` that may be empty but is otherwise valid for `kind` (client name, prefixes,
    /// "all channels"); an invalid one throws `.invalidField` naming `subject` ("client name").
    mutating func readOptionalName(_ kind: NameKind, _ field: StaticString, subject: String) throws(MessageDecodingError)
        -> String
    {
        let name = try readNameBytes(field)
        if name.isEmpty { return "" }
        do throws(InvalidNameError) { try validateName(name, kind: kind) } catch {
            throw .invalidField(field: subject, error.problem)
        }
        return String(decoding: name, as: UTF8.self)
    }

    /// Reads a `name` in a server reply: 0..255 bytes that must be UTF-8 (else `.invalidText`).
    mutating func readReplyName(_ field: StaticString) throws(MessageDecodingError) -> String {
        let name = try readNameBytes(field)
        guard isValidUTF8(name) else { throw .invalidText(field: "\(field)") }
        return String(decoding: name, as: UTF8.self)
    }

    /// Reads a `text` (u16 length + UTF-8).
    mutating func readText(_ field: StaticString) throws(MessageDecodingError) -> String {
        let length = Int(try read(UInt16.self, field))
        try require(length, field)
        let text = UnsafeRawBufferPointer(rebasing: bytes[index..<index + length])
        index += length
        guard isValidUTF8(text) else { throw .invalidText(field: "\(field)") }
        return String(decoding: text, as: UTF8.self)
    }

    /// Reads a `blob` (u16 length + bytes).
    mutating func readBlob(_ field: StaticString) throws(MessageDecodingError) -> [UInt8] {
        let length = Int(try read(UInt16.self, field))
        try require(length, field)
        defer { index += length }
        return Array(bytes[index..<index + length])
    }

    /// Reads a `u32` count and checks it: first that `count × minimumItemBytes` fits in what is
    /// left (else `.countExceedsFrame`, which closes: the frame is inconsistent), then that it is at
    /// most `limit` (else `.batchTooLarge`, which does not). Callers may reserve `count` slots after.
    mutating func readCount(_ field: StaticString, minimumItemBytes: Int, limit: Int?) throws(MessageDecodingError)
        -> Int
    {
        let count = Int(try read(UInt32.self, field))
        if count > remaining / max(1, minimumItemBytes) {
            throw .countExceedsFrame(field: "\(field)", count: count, bytesLeft: remaining)
        }
        if let limit, count > limit { throw .batchTooLarge(field: "\(field)", count: count, batchItemsMax: limit) }
        return count
    }

    /// Throws `.trailingBytes` unless every byte was read.
    @inlinable func expectEnd() throws(MessageDecodingError) {
        if index != bytes.count { throw .trailingBytes(count: bytes.count - index) }
    }
}

extension ByteBuffer {
    /// Runs `body` over the readable bytes with a fresh reader, then checks that it read them all.
    @inlinable func decodePayload<T>(_ body: (inout PayloadReader) throws(MessageDecodingError) -> T)
        throws(MessageDecodingError) -> T
    {
        let result: Result<T, MessageDecodingError> = withUnsafeReadableBytes { bytes in
            var reader = PayloadReader(bytes)
            do throws(MessageDecodingError) {
                let value = try body(&reader)
                try reader.expectEnd()
                return .success(value)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
