/// Where a `name` sits inside a decoded payload: the offset of its length byte, relative to the
/// payload's first byte. 4 bytes, so hot-path items (`IngestEvent`, `QueryItem`) stay small and
/// decoding allocates nothing per name. Resolve it with the message that produced it
/// (`IngestRequest.withUnsafeNames`, `QueryRequest.name(_:)`, ...).
public struct NameRef: Hashable, Sendable {
    /// Offset of the name's length byte in the payload, or `UInt32.max` for `absent`.
    public var offset: UInt32

    /// A reference to the name whose length byte is at `offset`.
    @inlinable public init(offset: UInt32) { self.offset = offset }

    /// No name (an optional field that is not present).
    public static let absent = NameRef(offset: .max)

    /// Whether the field is present.
    @inlinable public var isPresent: Bool { offset != .max }

    /// The name's bytes inside `payload`. Precondition: `ref` came from decoding `payload`.
    @inlinable static func bytes(of ref: NameRef, in payload: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard ref.isPresent else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let start = Int(ref.offset)
        precondition(start < payload.count, "NameRef outside its payload")
        let length = Int(payload[start])
        precondition(start + 1 + length <= payload.count, "NameRef outside its payload")
        return UnsafeRawBufferPointer(rebasing: payload[start + 1..<start + 1 + length])
    }
}

/// The payload bytes of a decoded batch, lent for the duration of a closure, for resolving
/// `NameRef`s without copying. Do not let the value or the pointers it hands out escape the closure.
public struct PayloadNames {
    @usableFromInline let payload: UnsafeRawBufferPointer

    @inlinable init(payload: UnsafeRawBufferPointer) { self.payload = payload }

    /// The bytes of the name `ref` points at (empty for `NameRef.absent`). Cost: O(1), no copy.
    @inlinable public subscript(ref: NameRef) -> UnsafeRawBufferPointer { NameRef.bytes(of: ref, in: payload) }

    /// The name as a String (allocates for names over 15 bytes; invalid UTF-8 is repaired with U+FFFD).
    public func string(_ ref: NameRef) -> String { String(decoding: self[ref], as: UTF8.self) }
}
