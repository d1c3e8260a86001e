/// A set of 112-bit fingerprints, each with a 16-bit value, in one open-addressing buffer: the
/// storage of one `ReservationDirectory` stripe (touched under its lock only).
///
/// - **Slots**: 16 bytes, `high` (64 fingerprint bits, the lowest forced to 1 so that 0 marks an
///   empty slot) and `low` (48 fingerprint bits above the 16-bit value). One cache line per probe
///   run; a `Dictionary` spent three misses (keys, values, occupancy bitmap) and a third SipHash.
/// - **Probing**: linear, from `high >> 1` (a SipHash value: uniform), at most half full; removal
///   shifts the run back (no tombstones), so probes stay short however many ids come and go.
///
/// Unsafe code, audited here: `slots` holds `capacity` (a power of two) initialised `Slot`s, a
/// trivial type; every index is masked by `capacity - 1`. A class, so the buffer has one owner and
/// is freed with it.
final class FingerprintTable {
    struct Slot: Equatable {
        var high: UInt64
        var low: UInt64
        static let empty = Slot(high: 0, low: 0)
    }

    /// Bits of `low` that hold the value.
    static let valueMask: UInt64 = 0xFFFF

    private var slots: UnsafeMutablePointer<Slot>
    private var capacity: Int
    /// Fingerprints in the table.
    private(set) var count = 0

    init(capacity initial: Int = 64) {
        precondition(initial >= 2 && initial.nonzeroBitCount == 1, "capacity \(initial): a power of two")
        capacity = initial
        slots = .allocate(capacity: initial)
        slots.initialize(repeating: .empty, count: initial)
    }

    deinit { slots.deallocate() }

    /// The fingerprint `(high, low)` as stored: `high`'s lowest bit set, `low`'s value bits cleared.
    @inline(__always) static func normalized(high: UInt64, low: UInt64) -> (high: UInt64, low: UInt64) {
        (high | 1, low & ~valueMask)
    }

    /// The value of a fingerprint (normalised), if present.
    func value(high: UInt64, low: UInt64) -> UInt16? {
        find(high: high, low: low).map { UInt16(truncatingIfNeeded: slots[$0].low & Self.valueMask) }
    }

    /// Adds a fingerprint (normalised) with `value` unless present; returns the value it already had.
    func insert(high: UInt64, low: UInt64, value: UInt16) -> UInt16? {
        if let position = find(high: high, low: low) {
            return UInt16(truncatingIfNeeded: slots[position].low & Self.valueMask)
        }
        if (count + 1) * 2 > capacity { grow() }
        var position = home(high)
        while slots[position].high != 0 { position = (position + 1) & (capacity - 1) }
        slots[position] = Slot(high: high, low: low | UInt64(value))
        count += 1
        return nil
    }

    /// Removes a fingerprint (normalised) when its value is `value`; returns whether it did.
    @discardableResult
    func remove(high: UInt64, low: UInt64, value: UInt16) -> Bool {
        guard let position = find(high: high, low: low),
              slots[position].low & Self.valueMask == UInt64(value) else { return false }
        // Backward shift: each later entry of the run moves into the hole when the hole lies on its
        // probe path (between its home and where it sits), so no lookup ever stops early.
        let mask = capacity - 1
        var hole = position
        var probe = (hole + 1) & mask
        while slots[probe].high != 0 {
            let ideal = home(slots[probe].high)
            if (probe - ideal) & mask >= (probe - hole) & mask {
                slots[hole] = slots[probe]
                hole = probe
            }
            probe = (probe + 1) & mask
        }
        slots[hole] = .empty
        count -= 1
        return true
    }

    /// Full check (tests): every fingerprint is found from its home, and the count is right.
    func checkInvariants() {
        var seen = 0
        for position in 0..<capacity where slots[position].high != 0 {
            seen += 1
            let slot = slots[position]
            precondition(find(high: slot.high, low: slot.low & ~Self.valueMask) == position, "slot \(position) is unreachable")
        }
        precondition(seen == count && count * 2 <= capacity, "\(seen) slots used, count \(count), capacity \(capacity)")
    }

    @inline(__always) private func home(_ high: UInt64) -> Int { Int(truncatingIfNeeded: high >> 1) & (capacity - 1) }

    private func find(high: UInt64, low: UInt64) -> Int? {
        assert(high & 1 == 1 && low & Self.valueMask == 0, "a fingerprint not normalised")
        var position = home(high)
        while true {
            let slot = slots[position]
            if slot.high == 0 { return nil }
            if slot.high == high && slot.low & ~Self.valueMask == low { return position }
            position = (position + 1) & (capacity - 1)
        }
    }

    private func grow() {
        let old = slots
        let oldCapacity = capacity
        capacity = oldCapacity * 2
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: .empty, count: capacity)
        for index in 0..<oldCapacity where old[index].high != 0 {
            var position = home(old[index].high)
            while slots[position].high != 0 { position = (position + 1) & (capacity - 1) }
            slots[position] = old[index]
        }
        old.deallocate()
    }
}
