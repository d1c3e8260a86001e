/// Counters one shard keeps; summed across shards by `Engine.statistics()`.
public struct ShardCounters: Sendable, Equatable {
    /// Events applied, by `StockEventKind.rawValue` (index 0 unused).
    public var eventsAppliedByKind = [UInt64](repeating: 0, count: 12)
    /// Duplicate events dropped.
    public var duplicatesDropped: UInt64 = 0
    /// Rejected events, by `RejectionReason.rawValue`.
    public var rejectionsByReason = [UInt64](repeating: 0, count: 32)
    /// Units of decrements that went past 0 on a floored bucket and were not applied, by bucket.
    public var exceptionUnitsByBucket = [UInt64](repeating: 0, count: 8)
    /// Cells whose good units do not cover what is claimed (see `StockCell.isShort`).
    public var shortCells: Int = 0
    /// Reservations by outcome.
    public var reservationsGranted: UInt64 = 0
    public var reservationsPartial: UInt64 = 0
    public var reservationsRefused: UInt64 = 0
    public var reservationsCommitted: UInt64 = 0
    public var reservationsReleased: UInt64 = 0
    public var reservationsExpired: UInt64 = 0
    /// Queries answered (each item of a batch counts one).
    public var queriesAnswered: UInt64 = 0

    public init() {}

    /// Total events applied.
    public var eventsApplied: UInt64 { eventsAppliedByKind.reduce(0, +) }
    /// Total events rejected.
    public var eventsRejected: UInt64 { rejectionsByReason.reduce(0, +) }

    /// Adds another shard's counters.
    public mutating func add(_ other: ShardCounters) {
        for i in eventsAppliedByKind.indices { eventsAppliedByKind[i] += other.eventsAppliedByKind[i] }
        for i in rejectionsByReason.indices { rejectionsByReason[i] += other.rejectionsByReason[i] }
        for i in exceptionUnitsByBucket.indices { exceptionUnitsByBucket[i] += other.exceptionUnitsByBucket[i] }
        duplicatesDropped += other.duplicatesDropped
        shortCells += other.shortCells
        reservationsGranted += other.reservationsGranted
        reservationsPartial += other.reservationsPartial
        reservationsRefused += other.reservationsRefused
        reservationsCommitted += other.reservationsCommitted
        reservationsReleased += other.reservationsReleased
        reservationsExpired += other.reservationsExpired
        queriesAnswered += other.queriesAnswered
    }
}
