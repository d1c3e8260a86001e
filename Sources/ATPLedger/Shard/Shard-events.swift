/// Stock events: validation, dedup and the effect of each kind on its cell (docs/SEMANTICS.md).
extension Shard {
    /// Validates, dedups and applies one event; returns its outcome code. `correlations` are the
    /// batch's reservation ids (a ship's `correlation` indexes them, plus one). With `checked` the
    /// batch's producer already ran the stateless checks with this shard's limit
    /// (`EventBatch.checkedForQuantityMax`): they are not run again.
    @inline(__always)
    func apply(_ event: StockEvent, hash: Int, correlations: UnsafeBufferPointer<ReservationID>,
               nowMilliseconds: Int64, checked: Bool = false) -> EventOutcomeCode {
        if !checked, let reason = validate(event, correlationCount: correlations.count) {
            return reject(event, reason, nowMilliseconds: nowMilliseconds)
        }
        assert(!checked || validate(event, correlationCount: correlations.count) == nil,
               "a checked batch holds a refused event")
        let window = dedupWindow(for: event.source)
        switch window.check(event.sequence) {
        case .duplicate:
            duplicatesDropped &+= 1
            return .duplicate
        case .tooOld:
            return reject(event, .sequenceTooOld, nowMilliseconds: nowMilliseconds)
        case .new:
            break
        }
        let correlation = event.correlation == 0 ? nil : correlations[Int(event.correlation) - 1]
        let rejection: RejectionReason?
        if event.kind == .transferOut {
            // Creates its cells only once the transfer fits: a rejected event leaves no new cell.
            rejection = applyTransfer(event, hash: hash)
        } else {
            // A fresh cell cannot overflow (|q| <= quantityMax <= Int32.max), so it may be created first.
            let slot = cells.slotCreating(sku: event.sku, location: event.location, hash: hash)
            rejection = applyEffect(event, slot: slot, correlation: correlation)
        }
        if let reason = rejection {
            return reject(event, reason, nowMilliseconds: nowMilliseconds)
        }
        window.mark(event.sequence)
        window.stampApplied(atMilliseconds: nowMilliseconds)
        appliedByKind[Int(event.kind.rawValue)] &+= 1
        return .applied
    }

    /// Checks everything that does not depend on state (`StockEvent.statelessRejection`). nil when
    /// the event is well formed.
    @inline(__always) func validate(_ event: StockEvent, correlationCount: Int) -> RejectionReason? {
        event.statelessRejection(quantityMax: configuration.quantityMax, correlationCount: correlationCount)
    }

    @inline(__always) private func dedupWindow(for source: SourceID) -> DedupBits {
        if source == lastSource, let bits = lastSourceBits { return bits }
        let window: DedupWindow
        if let existing = dedupWindowBySource[source] {
            window = dedupWindows[existing]
        } else {
            window = DedupWindow(size: configuration.dedupWindowSequences)
            dedupWindowBySource[source] = dedupWindows.count
            dedupWindows.append(window)
        }
        lastSource = source
        lastSourceBits = window.bits
        return window.bits
    }

    private func reject(_ event: StockEvent, _ reason: RejectionReason, nowMilliseconds: Int64) -> EventOutcomeCode {
        counters.rejectionsByReason[Int(reason.rawValue)] &+= 1
        pendingRejections.append(RejectedEvent(atMilliseconds: nowMilliseconds, reason: reason, event: event))
        return EventOutcomeCode(rejected: reason)
    }

    /// Applies the effect of a valid, new event to its cell (and the destination of a transfer).
    /// Returns `.bucketOverflow` and changes nothing when a bucket would leave the 32-bit range.
    private func applyEffect(_ event: StockEvent, slot: UInt32, correlation: ReservationID?) -> RejectionReason? {
        var next = CellUpdate(cells.cell(slot).pointee)
        var exceptions = ExceptionUnits()
        let q = event.quantity
        var shippedAgainstHold: Int64 = 0
        switch event.kind {
        case .receive:
            next.onHand += q
            if event.flags.contains(.intoQuarantine) { next.quarantine += q }
            if event.flags.contains(.closesInbound) { next.decrementFloored(.inbound, by: q, &exceptions) }
        case .ship:
            next.onHand -= q
            if let correlation {
                shippedAgainstHold = min(q, committedHeld(by: correlation, slot: slot))
                next.committed -= shippedAgainstHold
            }
        case .adjust:
            let bucket = event.bucket!
            if q < 0 && bucket.isFlooredAtZero {
                next.decrementFloored(bucket, by: -q, &exceptions)
            } else {
                next[bucket] += q
            }
        case .count:
            next.onHand = q
            if event.flags.contains(.countsDamaged) { next.damaged = Int64(event.countDamaged) }
            if event.flags.contains(.countsQuarantine) { next.quarantine = Int64(event.countQuarantine) }
        case .returnAuthorized:
            next.returnPending += q
        case .returnReceived:
            next.decrementFloored(.returnPending, by: q, &exceptions)
            next.onHand += q
            next.quarantine += q
        case .disposition:
            next.decrementFloored(.quarantine, by: q, &exceptions)
            switch event.outcome! {
            case .restock: break
            case .damaged: next.damaged += q
            case .scrap, .vendor: next.onHand -= q
            }
        case .damage:
            next.damaged += q
        case .writeOff:
            next.onHand -= q
            let bucket = event.bucket!
            if bucket != .onHand { next.decrementFloored(bucket, by: q, &exceptions) }
        case .setSafetyStock:
            next.safetyStock = q
        case .transferOut:
            preconditionFailure("handled above")
        }
        guard next.fitsInt32 else { return .bucketOverflow }
        if shippedAgainstHold > 0 { consumeCommittedHold(correlation!, slot: slot, units: shippedAgainstHold) }
        store(next, slot: slot, eventMilliseconds: event.eventMilliseconds)
        exceptions.add(to: &counters)
        return nil
    }

    /// transferOut: onHand(from) −= q, inbound(to) += q. Either cell is created only when both fit.
    private func applyTransfer(_ event: StockEvent, hash: Int) -> RejectionReason? {
        let toHash = CellStore.hash(event.sku, event.toLocation)
        let source = cells.slot(sku: event.sku, location: event.location, hash: hash)
        let destination = cells.slot(sku: event.sku, location: event.toLocation, hash: toHash)
        var from = CellUpdate(source.map { cells.cell($0).pointee } ?? StockCell(sku: event.sku, location: event.location))
        var to = CellUpdate(destination.map { cells.cell($0).pointee }
            ?? StockCell(sku: event.sku, location: event.toLocation))
        from.onHand -= event.quantity
        to.inbound += event.quantity
        guard from.fitsInt32 && to.fitsInt32 else { return .bucketOverflow }
        let fromSlot = source ?? cells.slotCreating(sku: event.sku, location: event.location, hash: hash)
        let toSlot = destination ?? cells.slotCreating(sku: event.sku, location: event.toLocation, hash: toHash)
        store(from, slot: fromSlot, eventMilliseconds: event.eventMilliseconds)
        store(to, slot: toSlot, eventMilliseconds: event.eventMilliseconds)
        return nil
    }

    /// Writes new bucket values to a cell, keeping the short-cell counter right.
    @inline(__always)
    func store(_ update: CellUpdate, slot: UInt32, eventMilliseconds: Int64) {
        let cell = cells.cell(slot)
        let wasShort = cell.pointee.isShort
        update.write(to: cell)
        cell.pointee.version &+= 1
        if eventMilliseconds > cell.pointee.lastEventMilliseconds { cell.pointee.lastEventMilliseconds = eventMilliseconds }
        let isShort = cell.pointee.isShort
        if wasShort != isShort { counters.shortCells += isShort ? 1 : -1 }
        cell.pointee.checkInvariants()
    }
}

/// A compact per-event outcome, written by workers into a shared result buffer.
struct EventOutcomeCode: Equatable {
    var rawValue: UInt16
    static let applied = EventOutcomeCode(rawValue: 0)
    static let duplicate = EventOutcomeCode(rawValue: 1)
    static let pending = EventOutcomeCode(rawValue: 0xFFFF)
    init(rawValue: UInt16) { self.rawValue = rawValue }
    init(rejected reason: RejectionReason) { rawValue = 0x100 | reason.rawValue }
    /// Whether the event was rejected (not applied, not a duplicate).
    var isRejection: Bool { self != .applied && self != .duplicate && self != .pending }

    var outcome: EventOutcome {
        switch rawValue {
        case 0: return .applied
        case 1: return .duplicate
        default: return .rejected(RejectionReason(rawValue: rawValue & 0xFF) ?? .malformed)
        }
    }
}

/// A cell's buckets widened to 64 bits while an event computes its effect.
struct CellUpdate {
    var onHand, damaged, quarantine, committed, reserved, inbound, returnPending, safetyStock: Int64

    @inline(__always) init(_ cell: StockCell) {
        onHand = Int64(cell.onHand)
        damaged = Int64(cell.damaged)
        quarantine = Int64(cell.quarantine)
        committed = Int64(cell.committed)
        reserved = Int64(cell.reserved)
        inbound = Int64(cell.inbound)
        returnPending = Int64(cell.returnPending)
        safetyStock = Int64(cell.safetyStock)
    }

    subscript(bucket: Bucket) -> Int64 {
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

    /// bucket −= units, stopping at 0; the part past 0 is added to `exceptions`.
    @inline(__always) mutating func decrementFloored(_ bucket: Bucket, by units: Int64, _ exceptions: inout ExceptionUnits) {
        let current = self[bucket]
        let taken = min(units, max(current, 0))
        self[bucket] = current - taken
        exceptions.record(bucket, units - taken)
    }

    @inline(__always) var fitsInt32: Bool {
        func fits(_ v: Int64) -> Bool { v >= Int64(Int32.min) && v <= Int64(Int32.max) }
        return fits(onHand) && fits(damaged) && fits(quarantine) && fits(committed) && fits(reserved) && fits(inbound)
            && fits(returnPending) && fits(safetyStock)
    }

    @inline(__always) func write(to cell: UnsafeMutablePointer<StockCell>) {
        cell.pointee.onHand = Int32(onHand)
        cell.pointee.damaged = Int32(damaged)
        cell.pointee.quarantine = Int32(quarantine)
        cell.pointee.committed = Int32(committed)
        cell.pointee.reserved = Int32(reserved)
        cell.pointee.inbound = Int32(inbound)
        cell.pointee.returnPending = Int32(returnPending)
        cell.pointee.safetyStock = Int32(safetyStock)
    }
}

/// Units of floored decrements that went past 0 while one event was computed.
struct ExceptionUnits {
    var bucket: Bucket = .onHand
    var units: Int64 = 0

    @inline(__always) mutating func record(_ bucket: Bucket, _ units: Int64) {
        guard units > 0 else { return }
        assert(self.units == 0, "one floored bucket per event")
        self.bucket = bucket
        self.units = units
    }

    @inline(__always) func add(to counters: inout ShardCounters) {
        if units > 0 { counters.exceptionUnitsByBucket[Int(bucket.rawValue)] &+= UInt64(units) }
    }
}
