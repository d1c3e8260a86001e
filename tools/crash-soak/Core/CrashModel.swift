import ATPLedger
import ATPProtocol

/// A cell by names.
public struct CellKey: Hashable, Sendable, CustomStringConvertible {
    /// The SKU's name.
    public var sku: String
    /// The location's name.
    public var location: String
    public var description: String { "\(sku)@\(location)" }
}

/// An operation whose reply never arrived (the server was killed): it may or may not have happened.
public enum PendingOperation: Sendable, Equatable {
    case reserve, commit, release
}

/// What the client knows about one reservation id.
public struct ModelReservation: Sendable {
    /// The request (also used to probe the id after a restart: a reserve of a known id replays).
    public var request: WireReserveRequest
    /// The acknowledged state; nil while the reserve itself is unacknowledged.
    public var state: ReservationState?
    /// The grants of the acknowledged reserve reply.
    public var lines: [WireLineGrant] = []
    /// An operation sent whose reply never came.
    public var pending: PendingOperation?
}

/// An ingest batch whose reply never came: each of its events may or may not be applied; a resend
/// (same source and sequences) must apply exactly the missing ones.
public struct PendingBatch: Sendable {
    /// The source.
    public var source: String
    /// The events as sent.
    public var events: [WireEvent]
}

/// The reference model: every acknowledged operation, and the ones whose outcome is unknown.
public struct CrashModel: Sendable {
    /// onHand per cell from acknowledged receives.
    public var onHand: [CellKey: Int64] = [:]
    /// Unacknowledged batches, by source (a source has at most one batch in flight).
    public var pendingBatches: [String: PendingBatch] = [:]
    /// Every reservation id used, acknowledged or not.
    public var reservations: [String: ModelReservation] = [:]
    /// Next sequence per source.
    public var nextSequence: [String: UInt64] = [:]
    /// Acknowledged operations (for the cycle's summary).
    public var acknowledgedOperations = 0

    /// An empty model.
    public init() {}

    /// Counts a batch as applied.
    mutating func apply(_ events: [WireEvent]) {
        for event in events { onHand[CellKey(sku: event.sku, location: event.location), default: 0] += event.quantity }
    }
}
