/// Byte strings interned to dense ids `0..<count`, looked up from raw bytes without allocating:
/// the name → id tables of a reconciliation (SKUs, locations, keys of rows not in the snapshot).
///
/// Layout: every string's bytes back to back in `bytes`, its end offset in `ends` (by id), and an
/// open-addressing table `slots` (linear probing, a power of two, at most half full) holding
/// `id + 1` (0 = empty). Memory: the strings' bytes + 4 bytes per string + 8–16 bytes per string of
/// slots. Cost: O(length) per lookup or insert (one hash, usually one comparison).
struct ByteStringTable {
    private var bytes: [UInt8] = []
    private var ends: [UInt32] = []
    private var slots: [UInt32]
    private var mask: Int

    /// An empty table sized for about `capacity` strings before it grows.
    init(capacity: Int = 16) {
        var slotCount = 16
        while slotCount < capacity * 2 { slotCount <<= 1 }
        slots = [UInt32](repeating: 0, count: slotCount)
        mask = slotCount - 1
        ends.reserveCapacity(capacity)
    }

    /// Strings held (ids are `0..<count`).
    var count: Int { ends.count }

    /// Bytes of memory held, approximately (for the memory model in reports).
    var memoryBytes: Int { bytes.capacity + ends.capacity * 4 + slots.count * 4 }

    /// The id of `key`, or nil.
    func id(of key: UnsafeRawBufferPointer) -> UInt32? {
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        return slots.withUnsafeBufferPointer { slots in
            while true {
                let entry = slots[slot]
                if entry == 0 { return nil }
                if equals(Int(entry - 1), key) { return entry - 1 }
                slot = (slot + 1) & mask
            }
        }
    }

    /// Interns `key`: its existing id, or a new one (`inserted` true).
    @discardableResult
    mutating func insert(_ key: UnsafeRawBufferPointer) -> (id: UInt32, inserted: Bool) {
        if let existing = id(of: key) { return (existing, false) }
        if (ends.count + 1) * 2 > slots.count { grow() }
        let id = UInt32(ends.count)
        bytes.append(contentsOf: key)
        ends.append(UInt32(bytes.count))
        place(id)
        return (id, true)
    }

    /// `insert` for a byte array.
    @discardableResult
    mutating func insert(_ key: [UInt8]) -> (id: UInt32, inserted: Bool) {
        key.withUnsafeBytes { insert($0) }
    }

    /// The id of a byte array, or nil.
    func id(of key: [UInt8]) -> UInt32? { key.withUnsafeBytes { id(of: $0) } }

    /// Calls `body` with the bytes of string `id`.
    func withBytes<R>(_ id: UInt32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(Int(id) < ends.count, "string id \(id) out of range")
        let start = id == 0 ? 0 : Int(ends[Int(id) - 1])
        let end = Int(ends[Int(id)])
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
    }

    /// String `id` decoded as UTF-8.
    func string(_ id: UInt32) -> String { withBytes(id) { String(decoding: $0, as: UTF8.self) } }

    private func equals(_ id: Int, _ key: UnsafeRawBufferPointer) -> Bool {
        let start = id == 0 ? 0 : Int(ends[id - 1])
        let length = Int(ends[id]) - start
        guard length == key.count else { return false }
        if length == 0 { return true }
        return bytes.withUnsafeBytes { stored in
            memcmpBytes(stored.baseAddress! + start, key.baseAddress!, length)
        }
    }

    private mutating func place(_ id: UInt32) {
        let hash = withBytes(id) { Self.hash($0) }
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = id + 1
    }

    private mutating func grow() {
        slots = [UInt32](repeating: 0, count: slots.count * 2)
        mask = slots.count - 1
        for id in 0..<UInt32(ends.count) { place(id) }
    }

    /// A 64-bit hash of `key`: eight bytes at a time, multiply-xorshift mixing (SplitMix64's finaliser).
    static func hash(_ key: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(key.count)
        var offset = 0
        let count = key.count
        while count - offset >= 8 {
            let word = key.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            hash = (hash ^ word) &* 0xBF58_476D_1CE4_E5B9
            hash ^= hash >> 29
            offset += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while offset < count {
            tail |= UInt64(key[offset]) << shift
            shift += 8
            offset += 1
        }
        hash = (hash ^ tail) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }
}

/// Whether `count` bytes at `a` and `b` are equal.
@inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var index = 0
    while count - index >= 8 {
        if a.loadUnaligned(fromByteOffset: index, as: UInt64.self) != b.loadUnaligned(fromByteOffset: index, as: UInt64.self) {
            return false
        }
        index += 8
    }
    while index < count {
        if a.load(fromByteOffset: index, as: UInt8.self) != b.load(fromByteOffset: index, as: UInt8.self) { return false }
        index += 1
    }
    return true
}
