import DequeModule

/// Where a hold came from. A part core's hold of a multi-core reservation is named by the part's
/// journal generation and the LSN of its prepare record; the home's record keeps the same pair for
/// every part, and recovery matches holds to records by it (docs/DURABILITY.md, "Reservations
/// across cores"). Holds the home core makes itself, and holds restored from a version-1 data
/// directory, have the `local` origin.
struct HoldOrigin: Hashable, Sendable {
    /// The part core's journal generation when it prepared (1 for a fresh data directory, +1 per start).
    var generation: UInt64
    /// The LSN of the part's prepare record in its own journal stream (0 without a journal).
    var prepareLSN: UInt64

    static let local = HoldOrigin(generation: 0, prepareLSN: 0)
}

/// How far a hold has got. A part core holds units `tentative`ly from its prepare until the home's
/// decision reaches it; `held` and `committed` mirror the record's state.
enum HoldStatus: UInt8, Sendable {
    case tentative = 0
    case held = 1
    case committed = 2
}

/// Units a reservation holds on one shard's cells.
struct Hold: ReservationKeyed {
    let id: ReservationID
    var status: HoldStatus
    var origin: HoldOrigin
    var lines: [HoldLine] = []

    var isCommitted: Bool { status == .committed }
}

/// Units held on one cell.
struct HoldLine {
    var slot: UInt32
    var units: Int32
}

/// A part core of a multi-core reservation: the core and the origin of the holds it made.
struct PartReference: Equatable, Sendable {
    var core: Int
    var origin: HoldOrigin
}

/// The home shard's record of one reservation: the single authority for its state. A record
/// exists only once the reservation is decided (a multi-core reserve waiting for its parts is a
/// `PendingReserve` of the home core), so every record is in a settled state.
struct ReservationRecord: ReservationKeyed {
    let request: ReserveRequest
    var state: ReservationState
    var lineGrants: [LineGrant]
    var expiresAtMilliseconds: Int64
    /// When the record reached its current state, unless held (for the retention window).
    var settledAtMilliseconds: Int64 = 0
    /// Other cores holding units of this reservation (empty when every line is on the home core).
    var parts: [PartReference] = []
    /// Acknowledgements still awaited from parts that committed, or released committed units: the
    /// record is not forgotten before they arrive (each one says the part's change is durable).
    var acknowledgementsAwaited = 0
    /// The LSN, in the home core's stream, of the newest record about this reservation (0 once
    /// restored: durable). In memory only: a reply about the record waits for it and for the
    /// parts' prepare records.
    var lastRecordLSN: UInt64 = 0

    init(request: ReserveRequest, state: ReservationState, lineGrants: [LineGrant], expiresAtMilliseconds: Int64) {
        self.request = request
        self.state = state
        self.lineGrants = lineGrants
        self.expiresAtMilliseconds = expiresAtMilliseconds
    }

    var id: ReservationID { request.id }

    /// Whether the record may be forgotten once its retention passed: settled, and no part
    /// acknowledgement awaited.
    var isForgettable: Bool { state != .held && acknowledgementsAwaited == 0 }

    /// The deadline while held, else nil (what the home shard's expiry queue follows).
    var heldUntilMilliseconds: Int64? { state == .held ? expiresAtMilliseconds : nil }

    func reply(replayed: Bool, error: ReservationError? = nil) -> ReservationReply {
        ReservationReply(id: request.id, state: state, lines: lineGrants,
                         expiresAtMilliseconds: state == .held ? expiresAtMilliseconds : 0, replayed: replayed,
                         error: error)
    }
}

/// A multi-core reserve whose parts have not all answered yet (home core, in memory only: it is
/// journaled once decided). Operations on its id wait here until then.
final class PendingReserve {
    let request: ReserveRequest
    let homeShard: Int
    let nowMilliseconds: Int64
    var completion: ReservationCompletion?
    var deferred: [(operation: ReservationOperation, completion: ReservationCompletion)] = []
    var outstanding: Int
    var answers: [PrepareAnswer] = []

    init(request: ReserveRequest, homeShard: Int, nowMilliseconds: Int64, outstanding: Int,
         completion: ReservationCompletion?) {
        self.request = request
        self.homeShard = homeShard
        self.nowMilliseconds = nowMilliseconds
        self.outstanding = outstanding
        self.completion = completion
    }
}

/// One part core's answer to a prepare.
struct PrepareAnswer {
    var core: Int
    var origin: HoldOrigin
    var grants: [(index: Int, grant: LineGrant)]
    var failure: DurabilityFailure?

    var grantedUnits: Int64 { grants.reduce(0) { $0 + $1.grant.granted } }
}

/// The three operations on a reservation id.
enum ReservationOperation {
    case reserve(ReserveRequest)
    case commit
    case release
}

/// Called once with the answer (on a core's thread, or a journal flusher's once durable).
public typealias ReservationCompletion = @Sendable (ReservationReply) -> Void

/// A record that may be forgotten once the retention window has passed since `sinceMilliseconds`
/// (its settle time).
struct FinishedOutcome: Comparable {
    var id: ReservationID
    var sinceMilliseconds: Int64

    static func < (a: FinishedOutcome, b: FinishedOutcome) -> Bool {
        a.sinceMilliseconds != b.sinceMilliseconds ? a.sinceMilliseconds < b.sinceMilliseconds : a.id < b.id
    }
}

/// A shard's settled records in the order they may be forgotten: by settle millisecond, then by
/// id, so that which records the per-shard maximum forgets depends on the records alone (a restored
/// shard, which notes its records in that order, forgets the same ones).
///
/// Records settled in one millisecond arrive in any id order (an expiry pass, the commits of one
/// millisecond). They are appended as they come and that millisecond's entries are sorted by id
/// only when forgetting by count needs the first of them; forgetting by age takes a whole
/// millisecond at once, in any order. (Keeping every entry sorted on insert moved half a
/// millisecond's entries per settle: a fifth of a flash sale's server time.)
struct FinishedOutcomeQueue {
    private var entries = Deque<FinishedOutcome>()
    /// The settle millisecond of the front entries while they are known sorted by id.
    private var sortedFrontMilliseconds: Int64?

    /// Entries queued.
    var count: Int { entries.count }
    /// The settle millisecond of the oldest entries.
    var oldestMilliseconds: Int64? { entries.first?.sinceMilliseconds }

    /// Queues `id`, settled at `since`. O(1) unless `since` is older than the newest entry (a
    /// record whose part acknowledgements arrived after later settles), which goes after every
    /// entry of its millisecond or older.
    mutating func append(_ id: ReservationID, sinceMilliseconds since: Int64) {
        let entry = FinishedOutcome(id: id, sinceMilliseconds: since)
        if since == sortedFrontMilliseconds { sortedFrontMilliseconds = nil }
        guard let last = entries.last, since < last.sinceMilliseconds else { return entries.append(entry) }
        entries.insert(entry, at: end(ofMillisecond: since))
    }

    /// Removes and returns an entry of the oldest millisecond: with `inIDOrder` the one with the
    /// smallest id, otherwise any (the caller takes the whole millisecond).
    mutating func removeOldest(inIDOrder: Bool) -> FinishedOutcome? {
        guard let oldest = entries.first?.sinceMilliseconds else { return nil }
        if inIDOrder && sortedFrontMilliseconds != oldest {
            // Sorted in a copy of the millisecond's entries and written back in place: sorting a
            // slice of the deque would copy the whole deque (the slice shares its storage).
            var group = (0..<end(ofMillisecond: oldest)).map { entries[$0] }
            group.sort { $0.id < $1.id }
            for (index, entry) in group.enumerated() { entries[index] = entry }
            sortedFrontMilliseconds = oldest
        }
        let first = entries.removeFirst()
        assert(entries.first.map { $0.sinceMilliseconds >= first.sinceMilliseconds } ?? true, "queue out of order")
        return first
    }

    /// The index after the last entry settled at `since` or earlier (entries are ordered by millisecond).
    private func end(ofMillisecond since: Int64) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].sinceMilliseconds <= since { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// Arrays the reservation path reuses from one pass to the next instead of allocating them: an
/// expiry pass over 64 shards would otherwise allocate a handful per shard per millisecond.
struct ReservationScratch {
    var dueNodes: [Int] = []
    var dueSlots: [Int] = []
    var due = ExpiryQueue.DueScratch()
    var transitionEntries: [TransitionEntry] = []
}
