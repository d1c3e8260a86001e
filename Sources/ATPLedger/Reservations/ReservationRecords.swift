/// Units a reservation holds on this shard's cells.
struct Hold {
    var isCommitted = false
    var lines: [HoldLine] = []
}

/// Units held on one cell.
struct HoldLine {
    var slot: UInt32
    var units: Int32
}

/// The home shard's record of one reservation: the single authority for its state.
final class ReservationRecord {
    enum Phase: Equatable {
        case reserving, committing, releasing
        case settled(ReservationState)
    }

    let request: ReserveRequest
    var phase: Phase = .reserving
    var lineGrants: [LineGrant]
    var expiresAtMilliseconds: Int64 = 0
    /// Shards holding units of this reservation.
    var partShards: [Int] = []
    /// Replies or acknowledgements still awaited from part shards.
    var outstanding = 0
    /// The state to settle in once outstanding acknowledgements arrive.
    var settleAs: ReservationState = .held
    /// Whether the operation in progress answers its caller with a replay flag.
    var currentReplyIsReplay = false
    /// The caller of the operation in progress.
    var currentCompletion: ReservationCompletion?
    /// Operations that arrived while another was in progress, run in order afterwards.
    var deferred: [(operation: ReservationOperation, completion: ReservationCompletion)] = []
    /// When the record reached its current settled state (for the retention window).
    var settledAtMilliseconds: Int64 = 0

    init(request: ReserveRequest) {
        self.request = request
        lineGrants = request.lines.map { LineGrant(requested: $0.quantity) }
    }

    var state: ReservationState? {
        if case .settled(let state) = phase { return state }
        return nil
    }

    func reply(replayed: Bool, error: ReservationError? = nil) -> ReservationReply {
        let state = self.state ?? .held
        return ReservationReply(
            id: request.id, state: state, lines: lineGrants,
            expiresAtMilliseconds: state == .held ? expiresAtMilliseconds : 0, replayed: replayed, error: error)
    }
}

/// The three operations on a reservation id.
enum ReservationOperation {
    case reserve(ReserveRequest)
    case commit
    case release
}

/// Called once with the answer, on a worker thread.
public typealias ReservationCompletion = @Sendable (ReservationReply) -> Void

/// An entry of a home shard's expiry heap.
struct ExpiryEntry: Comparable {
    var deadlineMilliseconds: Int64
    var id: ReservationID
    static func < (a: ExpiryEntry, b: ExpiryEntry) -> Bool { a.deadlineMilliseconds < b.deadlineMilliseconds }
    static func == (a: ExpiryEntry, b: ExpiryEntry) -> Bool {
        a.deadlineMilliseconds == b.deadlineMilliseconds && a.id == b.id
    }
}

/// A settled reservation remembered for late retries, oldest first.
struct FinishedOutcome {
    var id: ReservationID
    var settledAtMilliseconds: Int64
}

/// Messages between shards about reservations. Part shards hold units; the home shard decides.
enum ShardMessage {
    /// home → part: hold these lines (indices into the request) all-or-nothing or partially.
    case hold(request: ReserveRequest, lineIndices: [Int], home: Int)
    /// part → home: what the part granted, per line index.
    case held(id: ReservationID, from: Int, grants: [(index: Int, grant: LineGrant)])
    /// home → part: turn held units into committed units.
    case commit(id: ReservationID, home: Int)
    /// home → part: return the units; acknowledge when `home` is set.
    case release(id: ReservationID, home: Int?)
    /// part → home: the commit or release is done.
    case acknowledged(id: ReservationID)
}
