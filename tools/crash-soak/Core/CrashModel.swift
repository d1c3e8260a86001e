import ATPLedger
import ATPProtocol

/// A cell by names.
public struct CellKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The SKU's name.
    public var sku: String
    /// The location's name.
    public var location: String

    /// A cell from its names.
    public init(sku: String, location: String) {
        self.sku = sku
        self.location = location
    }

    public var description: String { "\(sku)@\(location)" }

    public static func < (left: CellKey, right: CellKey) -> Bool {
        (left.sku, left.location) < (right.sku, right.location)
    }
}

/// The kinds of operation the load sends, for the per-cycle counts.
public enum OperationKind: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// An ingest batch of new receives.
    case ingest
    /// A resend of an acknowledged batch: every event must come back a duplicate.
    case ingestResend = "ingest-resend"
    /// A reserve of a new id.
    case reserve
    /// A reserve of an id already acknowledged: must replay, never hold a second time.
    case reserveRetry = "reserve-retry"
    /// A commit of a held reservation.
    case commit
    /// A release of a held or committed reservation.
    case release

    public var description: String { rawValue }

    public static func < (left: OperationKind, right: OperationKind) -> Bool {
        allCases.firstIndex(of: left)! < allCases.firstIndex(of: right)!
    }
}

/// An operation whose reply never arrived (the server was killed): it may or may not have happened,
/// but if it did, it happened whole.
public enum PendingOperation: Sendable, Equatable, CustomStringConvertible {
    case reserve, commit, release

    public var description: String {
        switch self {
        case .reserve: "reserve"
        case .commit: "commit"
        case .release: "release"
        }
    }
}

/// What the client knows about one reservation id.
public struct ModelReservation: Sendable {
    /// The request (also used to probe the id after a restart: a reserve of a known id replays).
    public var request: WireReserveRequest
    /// The acknowledged state; nil while the reserve itself is unacknowledged.
    public var state: ReservationState?
    /// The grants of the acknowledged reserve reply.
    public var lines: [WireLineGrant] = []
    /// When the reservation expires or expired, on the server's clock (the same wall clock as this
    /// process: the tool runs atpd on its own machine): the acknowledged reply's `expiresAt` for a
    /// reservation seen held; for an unacknowledged reserve, from its send time + ttl to the kill
    /// + ttl. Nil when it was never seen held and no reserve is in flight (refused).
    public var expiresAtMilliseconds: ClosedRange<Int64>?
    /// An operation sent whose reply never came.
    public var pending: PendingOperation?
    /// When the pending operation was sent (wall clock, milliseconds since 1970).
    public var pendingSentAtMilliseconds: Int64 = 0

    /// An entry for a reserve about to be sent at `sentAtMilliseconds`.
    public init(request: WireReserveRequest, sentAtMilliseconds: Int64) {
        self.request = request
        self.pending = .reserve
        self.pendingSentAtMilliseconds = sentAtMilliseconds
        self.expiresAtMilliseconds = (sentAtMilliseconds + request.ttlMilliseconds)...(sentAtMilliseconds + request.ttlMilliseconds)
    }

    /// An acknowledged entry (also used to plant wrong models in the checker's own test).
    public init(request: WireReserveRequest, state: ReservationState, lines: [WireLineGrant],
                expiresAtMilliseconds: Int64?) {
        self.request = request
        self.state = state
        self.lines = lines
        self.expiresAtMilliseconds = expiresAtMilliseconds.map { $0...$0 }
    }

    /// Takes an acknowledged reply as the truth about this id.
    mutating func acknowledge(_ reply: WireReservationReply) {
        state = reply.state
        if !reply.lines.isEmpty { lines = reply.lines }
        if reply.state == .held { expiresAtMilliseconds = reply.expiresAtMilliseconds...reply.expiresAtMilliseconds }
        pending = nil
    }

    /// Units per cell of `grants` (by default the acknowledged ones) for this request's lines.
    func units(of grants: [WireLineGrant]? = nil) -> [CellKey: Int64] {
        var units: [CellKey: Int64] = [:]
        for (index, line) in (grants ?? lines).enumerated() where index < request.lines.count {
            for allocation in line.allocations {
                units[CellKey(sku: request.lines[index].sku, location: allocation.location), default: 0] += allocation.quantity
            }
        }
        return units
    }

    /// A short account of what the model knows, for violation messages.
    var summary: String {
        var text = state.map { "acknowledged \($0)" } ?? "never acknowledged"
        if let expiry = expiresAtMilliseconds, state == .held || state == nil || state == .expired {
            text += expiry.lowerBound == expiry.upperBound ? " (expires at \(expiry.lowerBound))"
                                                           : " (expires in \(expiry.lowerBound)...\(expiry.upperBound))"
        }
        if !lines.isEmpty { text += " with \(lines.compactDescription)" }
        if let pending { text += ", \(pending) in flight since \(pendingSentAtMilliseconds)" }
        return text
    }
}

/// Units of a cell's `reserved` and `committed` that no reservation accounts for (negative: units
/// missing).
public struct BucketDrift: Sendable, Equatable {
    public var reserved: Int64 = 0
    public var committed: Int64 = 0

    /// No drift.
    public init() {}
}

/// An ingest batch whose reply never came: each of its events may or may not be applied; a resend
/// (same source and sequences) must apply exactly the missing ones.
public struct PendingBatch: Sendable {
    /// The source.
    public var source: String
    /// The events as sent.
    public var events: [WireEvent]

    /// A batch from its fields.
    public init(source: String, events: [WireEvent]) {
        self.source = source
        self.events = events
    }
}

/// The reference model: every acknowledged operation, and the ones whose outcome is unknown.
public struct CrashModel: Sendable {
    /// onHand per cell from acknowledged receives.
    public var onHand: [CellKey: Int64] = [:]
    /// Unacknowledged batches, by source (a source has at most one batch in flight).
    public var pendingBatches: [String: PendingBatch] = [:]
    /// The last few acknowledged batches per source, for resends (their events must come back as
    /// duplicates, across restarts too).
    public var recentBatches: [String: [[WireEvent]]] = [:]
    /// Every reservation id used, acknowledged or not.
    public var reservations: [String: ModelReservation] = [:]
    /// Next sequence per source.
    public var nextSequence: [String: UInt64] = [:]
    /// The channel defined at the start (acknowledged), if the workload uses one.
    public var channel: WireChannelDefinition?
    /// Acknowledged operations (for the cycle's summary).
    public var acknowledgedOperations = 0
    /// Per cell, the part of `reserved` and `committed` that no reservation accounts for, as
    /// reported by an earlier violation (the server keeps it; later checks look for new ones).
    public var bucketDrift: [CellKey: BucketDrift] = [:]
    /// When the last SIGKILL was sent (wall clock, milliseconds since 1970): bounds the expiry of a
    /// reserve whose reply never came.
    public var killedAtMilliseconds: Int64 = 0

    /// An empty model.
    public init() {}

    /// Counts a batch as applied.
    mutating func apply(_ events: [WireEvent]) {
        for event in events { onHand[CellKey(sku: event.sku, location: event.location), default: 0] += event.quantity }
    }

    /// Keeps `events` among the source's recent acknowledged batches (the newest few).
    mutating func remember(_ events: [WireEvent], source: String, keep: Int = 8) {
        var batches = recentBatches[source, default: []]
        batches.append(events)
        if batches.count > keep { batches.removeFirst(batches.count - keep) }
        recentBatches[source] = batches
    }

    /// Reservations whose outcome is unknown (a reserve, commit or release in flight at the kill).
    var pendingReservations: [String: PendingOperation] {
        reservations.compactMapValues { $0.pending }
    }
}

extension [WireLineGrant] {
    /// "[2/2 S1:2, 1/3 S2:1]": granted/requested and the allocations of each line.
    var compactDescription: String {
        "[" + map { line in
            "\(line.granted)/\(line.requested)" + line.allocations.map { " \($0.location):\($0.quantity)" }.joined()
        }.joined(separator: ", ") + "]"
    }
}
