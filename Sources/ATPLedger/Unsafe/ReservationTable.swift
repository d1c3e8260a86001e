/// A value a `ReservationTable` keeps: it carries its own reservation id (the table stores no
/// separate key).
protocol ReservationKeyed {
    var id: ReservationID { get }
}

/// The per-process key of reservation-table hashes: ids come from clients, and a client that knew
/// the hash could choose ids that all probe the same run.
private let reservationTableSeed = UInt64.random(in: .min ... .max)

/// Reservation id → value (a home shard's records, a shard's holds), one shard's, touched by its
/// core's thread only. Replaces a Swift `Dictionary` on the reservation path, where a flash sale
/// pays several lookups per reservation on a table of everything remembered for the retention
/// window (hundreds of thousands of records):
///
/// - **Slab**: values sit in slots of one manually managed buffer and never move while they are in
///   the table (a removal frees its slot for the next insertion; growing moves the buffer, which
///   only insertion does), so a slot names a value until it is removed. Reads borrow the value in
///   place and `subscript(slot:)`'s modify changes it in place: no copy of a record and its arrays'
///   reference counts per access, which a `Dictionary` or an array of optionals costs.
/// - **Index**: a power-of-two array of 64-bit entries, at most half full, linear probing. An entry
///   holds the low 32 bits of the id's hash (its home position, and a tag that rejects almost every
///   other id without touching the slab) and the slot + 1 (0 = empty). Removal shifts the run back
///   (no tombstones), so probes stay short however many ids come and go.
/// - **Hash**: the id's used words folded with multiply-xorshift steps and a final avalanche, from
///   a random per-process seed (`reservationTableSeed`): one pass over at most 8 words.
///
/// Unsafe code, audited here: `storage` holds `capacity` slots, of which exactly those marked in
/// `occupied` are initialised. Every access by slot checks the mark (a precondition: a stale
/// slot must stop the process, not read freed memory); insertion initialises, removal and deinit
/// deinitialise. A class, so the buffer has one owner (a shard) and is freed with it.
///
/// Iteration order is the slab's: arbitrary, as a `Dictionary`'s is (callers that need an order sort).
final class ReservationTable<Value: ReservationKeyed> {
    private var index: ContiguousArray<UInt64>
    fileprivate var storage: UnsafeMutablePointer<Value>
    private var capacity: Int
    /// Slots ever used: `0..<highWater` (the others are uninitialised and not occupied).
    fileprivate var highWater = 0
    fileprivate var occupied: ContiguousArray<Bool> = []
    private var freeSlots: [Int32] = []
    private let seed = reservationTableSeed
    /// Values in the table.
    private(set) var count = 0

    init() {
        index = ContiguousArray(repeating: 0, count: 16)
        capacity = 16
        storage = .allocate(capacity: capacity)
    }

    deinit {
        for slot in 0..<highWater where occupied[slot] { (storage + slot).deinitialize(count: 1) }
        storage.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    // MARK: - Lookup

    /// The slot of `id`'s value, or nil when the table has none.
    @inline(__always) func slot(of id: ReservationID) -> Int? {
        find(id, hash: hash32(id))?.slot
    }

    /// The value in `slot` (a slot `slot(of:)` or `insert` returned, not removed since), in place.
    @inline(__always) subscript(slot slot: Int) -> Value {
        _read {
            precondition(slot < highWater && occupied[slot], "slot \(slot) holds no value")
            yield storage[slot]
        }
        _modify {
            precondition(slot < highWater && occupied[slot], "slot \(slot) holds no value")
            yield &storage[slot]
        }
    }

    /// The value of `id`; setting nil removes it.
    subscript(id: ReservationID) -> Value? {
        get { slot(of: id).map { storage[$0] } }
        set {
            if let newValue {
                precondition(newValue.id == id, "a value stored under another id")
                updateValue(newValue)
            } else {
                removeValue(forKey: id)
            }
        }
    }

    /// Changes the value of `id` in place; returns what `body` returned, or nil when there is no value.
    @inline(__always) func modify<R>(_ id: ReservationID, _ body: (inout Value) -> R) -> R? {
        guard let slot = slot(of: id) else { return nil }
        let result = body(&self[slot: slot])
        assert(storage[slot].id == id, "a value's id changed in place")
        return result
    }

    // MARK: - Changes

    /// Stores `value` under its id, replacing any value there; returns the value replaced.
    @discardableResult
    func updateValue(_ value: Value) -> Value? {
        let hash = hash32(value.id)
        if let found = find(value.id, hash: hash) {
            let old = storage[found.slot]
            storage[found.slot] = value
            return old
        }
        place(value, hash: hash)
        return nil
    }

    /// Stores `value`, whose id the table must not have yet; returns its slot.
    @discardableResult
    func insert(_ value: Value) -> Int {
        let hash = hash32(value.id)
        precondition(find(value.id, hash: hash) == nil, "\(value.id) is in the table already")
        return place(value, hash: hash)
    }

    /// Removes the value of `id`; returns it, or nil when there was none.
    @discardableResult
    func removeValue(forKey id: ReservationID) -> Value? {
        guard let found = find(id, hash: hash32(id)) else { return nil }
        return remove(slot: found.slot, position: found.position)
    }

    /// Removes the value in `slot` (one `slot(of:)` returned, not removed since); returns it.
    @discardableResult
    func remove(slot: Int) -> Value {
        let id = self[slot: slot].id
        guard let found = find(id, hash: hash32(id)), found.slot == slot else {
            preconditionFailure("slot \(slot) is not \(id)'s")
        }
        return remove(slot: slot, position: found.position)
    }

    // MARK: - Internals

    private func hash32(_ id: ReservationID) -> UInt32 {
        var hash = seed ^ UInt64(id.byteCount)
        let wordCount = (Int(id.byteCount) + 7) >> 3
        withUnsafeBytes(of: id.words) { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for word in 0..<wordCount {
                hash = (hash ^ words[word]) &* 0x9E37_79B9_7F4A_7C15
                hash ^= hash >> 32
            }
        }
        return UInt32(truncatingIfNeeded: mix64(hash ^ seed))
    }

    private var mask: Int { index.count - 1 }

    private func find(_ id: ReservationID, hash: UInt32) -> (slot: Int, position: Int)? {
        var position = Int(hash) & mask
        while true {
            let entry = index[position]
            if entry == 0 { return nil }
            if UInt32(truncatingIfNeeded: entry >> 32) == hash {
                let slot = Int(truncatingIfNeeded: entry & 0xFFFF_FFFF) - 1
                if storage[slot].id == id { return (slot, position) }
            }
            position = (position + 1) & mask
        }
    }

    @discardableResult
    private func place(_ value: Value, hash: UInt32) -> Int {
        if (count + 1) * 2 > index.count { growIndex() }
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = Int(free)
        } else {
            precondition(highWater < Int(UInt32.max - 1), "a reservation table is full")
            if highWater == capacity { growValues() }
            slot = highWater
            highWater += 1
            occupied.append(false)
        }
        assert(!occupied[slot])
        (storage + slot).initialize(to: value)
        occupied[slot] = true
        insertEntry(UInt64(hash) << 32 | UInt64(slot + 1))
        count += 1
        return slot
    }

    private func insertEntry(_ entry: UInt64) {
        var position = Int(truncatingIfNeeded: entry >> 32) & mask
        while index[position] != 0 { position = (position + 1) & mask }
        index[position] = entry
    }

    private func remove(slot: Int, position: Int) -> Value {
        // Backward shift: each later entry of the run moves into the hole when the hole lies on
        // its probe path (between its home and where it sits), so no lookup ever stops early.
        var hole = position
        var probe = (hole + 1) & mask
        while true {
            let entry = index[probe]
            if entry == 0 { break }
            let home = Int(truncatingIfNeeded: entry >> 32) & mask
            if (probe - home) & mask >= (probe - hole) & mask {
                index[hole] = entry
                hole = probe
            }
            probe = (probe + 1) & mask
        }
        index[hole] = 0
        precondition(occupied[slot])
        occupied[slot] = false
        let value = (storage + slot).move()
        freeSlots.append(Int32(slot))
        count -= 1
        assert(count >= 0)
        return value
    }

    private func growIndex() {
        let old = index
        index = ContiguousArray(repeating: 0, count: old.count * 2)
        for entry in old where entry != 0 { insertEntry(entry) }
    }

    /// Doubles the slab; every slot in use is below `highWater == capacity`, so every one is moved.
    private func growValues() {
        let grown = UnsafeMutablePointer<Value>.allocate(capacity: capacity * 2)
        for slot in 0..<highWater where occupied[slot] { (grown + slot).moveInitialize(from: storage + slot, count: 1) }
        storage.deallocate()
        storage = grown
        capacity *= 2
    }
}

extension ReservationTable: Sequence {
    /// The table's (id, value) pairs, in slab order. The table must not change while iterated.
    struct Iterator: IteratorProtocol {
        fileprivate let table: ReservationTable
        fileprivate var slot = 0

        mutating func next() -> (key: ReservationID, value: Value)? {
            while slot < table.highWater {
                defer { slot += 1 }
                if table.occupied[slot] {
                    let value = table.storage[slot]
                    return (value.id, value)
                }
            }
            return nil
        }
    }

    func makeIterator() -> Iterator { Iterator(table: self) }

    var underestimatedCount: Int { count }

    /// The values, in slab order.
    var values: LazyMapSequence<ReservationTable<Value>, Value> { lazy.map(\.value) }
}
