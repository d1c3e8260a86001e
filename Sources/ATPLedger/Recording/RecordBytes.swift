/// A growable byte buffer a worker reuses for every record it writes: no allocation once it has
/// grown to the largest record. Little-endian integers. Worker thread only.
///
/// Invariant: `base` holds `capacity` bytes, of which the first `count` are written.
final class RecordWriter {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var count = 0
    /// The largest name id of each kind (sku, location, channel, source) written since `reset()`,
    /// or -1: the names a record needs defined before it.
    var maxNameIDs: (Int64, Int64, Int64, Int64) = (-1, -1, -1, -1)

    init(capacity: Int = 4096) {
        precondition(capacity > 0)
        self.capacity = capacity
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    func reset() {
        count = 0
        maxNameIDs = (-1, -1, -1, -1)
    }

    /// Makes room for `bytes` more bytes.
    @inline(__always) func reserve(_ bytes: Int) {
        if count + bytes > capacity { grow(to: count + bytes) }
    }

    private func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always) func put<T: FixedWidthInteger>(_ value: T) {
        reserve(MemoryLayout<T>.size)
        base.storeBytes(of: value.littleEndian, toByteOffset: count, as: T.self)
        count += MemoryLayout<T>.size
    }

    func put(bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        if let source = bytes.baseAddress { (base + count).copyMemory(from: source, byteCount: bytes.count) }
        count += bytes.count
    }

    /// An event's in-memory bytes (one memcpy; `StockEvent` is a 64-byte trivial struct).
    @inline(__always) func putRaw(_ event: StockEvent) {
        withUnsafeBytes(of: event) { put(bytes: $0) }
    }

    func put(_ id: ReservationID) {
        id.withBytes { bytes in
            put(UInt8(bytes.count))
            put(bytes: bytes)
        }
    }

    /// A name id, remembered so that the recorder defines the name before the record.
    @inline(__always) func put(name id: UInt32, kind: NameKind) {
        noteName(id, kind: kind)
        put(id)
    }

    @inline(__always) func noteName(_ id: UInt32, kind: NameKind) {
        let value = Int64(id)
        switch kind {
        case .sku: if value > maxNameIDs.0 { maxNameIDs.0 = value }
        case .location: if value > maxNameIDs.1 { maxNameIDs.1 = value }
        case .channel: if value > maxNameIDs.2 { maxNameIDs.2 = value }
        case .source: if value > maxNameIDs.3 { maxNameIDs.3 = value }
        case .reservation: break
        }
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}

/// Reads a record's payload front to back; every read checks the length first.
struct RecordReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws(RecordDecodingError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw RecordDecodingError("record ends inside a \(T.self)") }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }

    mutating func readBytes(_ count: Int) throws(RecordDecodingError) -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else { throw RecordDecodingError("record ends inside \(count) bytes") }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    mutating func readID() throws(RecordDecodingError) -> ReservationID {
        let length = Int(try read(UInt8.self))
        let raw = try readBytes(length)
        do throws(InvalidNameError) {
            return try ReservationID(bytes: raw)
        } catch {
            throw RecordDecodingError("reservation id: \(error)")
        }
    }

    /// A count that each item of which takes at least `itemBytes` bytes: refused when the rest of
    /// the record cannot hold that many (so a damaged count never allocates much).
    mutating func readCount(itemBytes: Int) throws(RecordDecodingError) -> Int {
        let count = Int(try read(UInt32.self))
        guard count * max(itemBytes, 1) <= remaining else {
            throw RecordDecodingError("count \(count) does not fit the \(remaining) bytes left")
        }
        return count
    }

    func expectEnd() throws(RecordDecodingError) {
        guard remaining == 0 else { throw RecordDecodingError("\(remaining) unexpected bytes at the end") }
    }
}

/// A record that does not decode.
struct RecordDecodingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
