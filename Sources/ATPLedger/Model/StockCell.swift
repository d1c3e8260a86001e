/// The stock state of one (location, SKU) cell: exactly one 64-byte cache line.
///
/// Buckets are 32-bit: every bucket stays within `Int32` (±2,147,483,647 units); an event that would
/// leave that range is rejected with `RejectionReason.bucketOverflow` and changes nothing.
/// Derived values (sellable, projected) are computed in 64-bit arithmetic.
public struct StockCell: Sendable, Equatable {
    public var onHand: Int32 = 0
    public var damaged: Int32 = 0
    public var quarantine: Int32 = 0
    public var committed: Int32 = 0
    public var reserved: Int32 = 0
    public var inbound: Int32 = 0
    public var returnPending: Int32 = 0
    public var safetyStock: Int32 = 0
    /// The SKU this cell belongs to (the index verifies keys here, on the line it touches anyway).
    public var sku: SKUID
    /// The location this cell belongs to.
    public var location: LocationID
    /// Slot of the next cell of the same SKU in ascending location order, or `StockCell.noSlot`.
    @usableFromInline var nextSlotOfSKU: UInt32 = StockCell.noSlot
    /// Number of mutations applied to this cell (wraps); lets readers and snapshots spot change.
    public var version: UInt32 = 0
    /// Wall-clock time of the last stock event applied to this cell, in milliseconds since 1970.
    public var lastEventMilliseconds: Int64 = 0
    /// Reserved for future use; keeps the cell at exactly 64 bytes.
    @usableFromInline var spare: Int64 = 0

    /// The marker for "no slot" in slot links.
    public static let noSlot: UInt32 = .max

    /// A zeroed cell for `sku` at `location`.
    public init(sku: SKUID, location: LocationID) {
        self.sku = sku
        self.location = location
    }

    /// Units that can be promised now: max(0, onHand − damaged − quarantine − committed − reserved − safetyStock).
    @inlinable public var sellable: Int64 {
        let free = Int64(onHand) - Int64(damaged) - Int64(quarantine) - Int64(committed) - Int64(reserved)
            - Int64(safetyStock)
        return free > 0 ? free : 0
    }

    /// sellable + inbound: what can be promised once inbound stock lands.
    @inlinable public var projected: Int64 { sellable + Int64(inbound) }

    /// True when the good units on hand do not cover what is claimed: onHand − damaged − quarantine <
    /// committed + reserved. A short cell reads 0 sellable.
    @inlinable public var isShort: Bool {
        Int64(onHand) - Int64(damaged) - Int64(quarantine) < Int64(committed) + Int64(reserved)
    }

    /// Reads one bucket.
    @inlinable public subscript(bucket: Bucket) -> Int32 {
        get {
            switch bucket {
            case .onHand: onHand
            case .damaged: damaged
            case .quarantine: quarantine
            case .committed: committed
            case .reserved: reserved
            case .inbound: inbound
            case .returnPending: returnPending
            case .safetyStock: safetyStock
            }
        }
        set {
            switch bucket {
            case .onHand: onHand = newValue
            case .damaged: damaged = newValue
            case .quarantine: quarantine = newValue
            case .committed: committed = newValue
            case .reserved: reserved = newValue
            case .inbound: inbound = newValue
            case .returnPending: returnPending = newValue
            case .safetyStock: safetyStock = newValue
            }
        }
    }

    /// True when every bucket is zero (a cell that carries no information).
    public var isEmpty: Bool {
        onHand == 0 && damaged == 0 && quarantine == 0 && committed == 0 && reserved == 0 && inbound == 0
            && returnPending == 0 && safetyStock == 0
    }

    /// Cell invariants that hold after every mutation.
    @inlinable func checkInvariants() {
        assert(damaged >= 0 && quarantine >= 0 && inbound >= 0 && returnPending >= 0 && safetyStock >= 0)
        assert(committed >= 0 && reserved >= 0, "reservation buckets never go negative")
    }

    public static func == (a: StockCell, b: StockCell) -> Bool {
        a.onHand == b.onHand && a.damaged == b.damaged && a.quarantine == b.quarantine && a.committed == b.committed
            && a.reserved == b.reserved && a.inbound == b.inbound && a.returnPending == b.returnPending
            && a.safetyStock == b.safetyStock && a.sku == b.sku && a.location == b.location
    }
}
