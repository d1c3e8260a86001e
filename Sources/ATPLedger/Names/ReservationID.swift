/// A reservation id as the client spells it (an order id, say): 1..64 bytes of UTF-8, kept inline
/// so that reservation records and correlation tables need no heap allocation per id.
public struct ReservationID: Hashable, Sendable, CustomStringConvertible, Comparable {
    @usableFromInline typealias Words = (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
    @usableFromInline var words: Words = (0, 0, 0, 0, 0, 0, 0, 0)
    /// Length in bytes, 1...64.
    public private(set) var byteCount: UInt8 = 0

    /// Maximum length in bytes.
    public static let bytesMax = 64

    /// Copies and validates `bytes`; throws when empty, longer than 64 bytes or not UTF-8.
    public init(bytes: UnsafeRawBufferPointer) throws(InvalidNameError) {
        if bytes.isEmpty { throw InvalidNameError(kind: .reservation, problem: .empty) }
        if bytes.count > Self.bytesMax {
            throw InvalidNameError(kind: .reservation, problem: .tooLong(bytes: bytes.count, bytesMax: Self.bytesMax))
                
        }
        if !isValidUTF8(bytes) { throw InvalidNameError(kind: .reservation, problem: .notUTF8) }
        byteCount = UInt8(bytes.count)
        withUnsafeMutableBytes(of: &words) { storage in
            storage.copyMemory(from: bytes)
        }
    }

    /// Validates and copies a Swift string.
    public init(_ string: String) throws(InvalidNameError) {
        var copy = string
        let result: Result<ReservationID, InvalidNameError> = copy.withUTF8 { utf8 in
            do throws(InvalidNameError) {
                return .success(try ReservationID(bytes: UnsafeRawBufferPointer(utf8)))
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    /// Calls `body` with the id's bytes.
    public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withUnsafeBytes(of: words) { storage in
            try body(UnsafeRawBufferPointer(rebasing: storage[0..<Int(byteCount)]))
        }
    }

    /// The id as a string.
    public var description: String {
        withBytes { String(decoding: $0, as: UTF8.self) }
    }

    /// A 64-bit hash of the id, stable across runs (routes the id to its home shard).
    public var stableHash: UInt64 { withBytes { hashBytes($0) } }

    public static func == (a: ReservationID, b: ReservationID) -> Bool {
        a.byteCount == b.byteCount && a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2
            && a.words.3 == b.words.3 && a.words.4 == b.words.4 && a.words.5 == b.words.5
            && a.words.6 == b.words.6 && a.words.7 == b.words.7
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(byteCount)
        hasher.combine(words.0)
        hasher.combine(words.1)
        if byteCount > 16 {
            hasher.combine(words.2)
            hasher.combine(words.3)
            hasher.combine(words.4)
            hasher.combine(words.5)
            hasher.combine(words.6)
            hasher.combine(words.7)
        }
    }

    public static func < (a: ReservationID, b: ReservationID) -> Bool {
        a.withBytes { x in b.withBytes { y in x.lexicographicallyPrecedes(y) } }
    }
}

/// A fast, stable 64-bit hash of a byte string (8 bytes at a time, then a final avalanche). With
/// `seed` 0 it is the public hash of docs/PROTOCOL.md §7.1 (SKU placement, reservation homes);
/// tables that clients fill by choosing names pass a secret per-process seed instead, so that no
/// client can pick names that collide (hash flooding).
@inlinable public func hashBytes(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
    var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ seed ^ UInt64(bytes.count)
    var index = 0
    let count = bytes.count
    while index + 8 <= count {
        let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        hash = (hash ^ word) &* 0xBF58_476D_1CE4_E5B9
        hash ^= hash >> 29
        index += 8
    }
    if index < count {
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < count {
            tail |= UInt64(bytes[index]) << shift
            shift += 8
            index += 1
        }
        hash = (hash ^ tail) &* 0x94D0_49BB_1331_11EB
    }
    return mix64(hash ^ seed)
}

/// The murmur3 finaliser: every input bit affects every output bit.
@inlinable public func mix64(_ value: UInt64) -> UInt64 {
    var x = value
    x ^= x >> 33
    x = x &* 0xFF51_AFD7_ED55_8CCD
    x ^= x >> 33
    x = x &* 0xC4CE_B9FE_1A85_EC53
    x ^= x >> 33
    return x
}
