/// A position in one core's journal stream.
struct DurablePosition: Sendable, Equatable {
    var core: Int
    var lsn: UInt64
}

/// What a `CoreLedger` asks of whatever drives it: the worker threads in production, the
/// deterministic simulator in tests. The ledger itself has no threads, clock or I/O: time arrives
/// with each input, messages to other cores and waits for durability leave through here.
protocol CoreEnvironment: AnyObject {
    /// Delivers `message` to core `core` later, after the input being processed. Messages from one
    /// core to another arrive in the order they were sent. Never refused.
    func send(_ message: CoreMessage, to core: Int)
    /// Runs `action(nil)` once every position is durable, or `action(failure)` once one cannot
    /// become durable. With no journal it runs at once. May run on another thread: `action` must
    /// not touch the ledger.
    func whenDurable(_ positions: [DurablePosition], _ action: @escaping @Sendable (DurabilityFailure?) -> Void)
    /// `whenDurable`, for positions that must survive a power loss (`WorkerInputLog.whenStable`).
    func whenStable(_ positions: [DurablePosition], _ action: @escaping @Sendable (DurabilityFailure?) -> Void)
    /// Sends `message` once `positions` are stable (`WorkerInputLog.whenStable`); never, when they
    /// cannot become so (the record it follows from may then be lost, and recovery decides).
    func send(_ message: CoreMessage, to core: Int, whenStable positions: [DurablePosition])
}

/// Messages between cores about multi-core reservations (docs/ARCHITECTURE.md, "Reservations").
/// The home core decides; part cores hold units on their cells.
enum CoreMessage {
    /// home → part: hold these lines (indices into the request) on your shards, tentatively.
    case prepare(request: ReserveRequest, lineIndices: [Int], homeShard: Int)
    /// part → home: what the part holds, per line index, and the origin of its holds. With a
    /// failure the part could not journal its prepare and holds nothing.
    case prepared(id: ReservationID, homeShard: Int, from: Int, origin: HoldOrigin,
                  grants: [(index: Int, grant: LineGrant)], failure: DurabilityFailure?)
    /// home → part, once the home's record of the change is stable: keep or abort the tentative
    /// holds, commit or release them. `shards` are the part's shards with lines of the reservation;
    /// with `acknowledge` the part answers `acknowledged` once its record of the change is durable.
    case change(id: ReservationID, homeShard: Int, origin: HoldOrigin, change: HoldChange, shards: [Int],
                acknowledge: Bool)
    /// part → home, once the part's record of a commit (or of a release of committed units) is
    /// stable: the home may forget its record after the retention window.
    case acknowledged(id: ReservationID, homeShard: Int, from: Int)
    /// any core → the core of `homeShard`: a reserve whose id is claimed for another home (a retry
    /// naming another first line), sent on to that home (`CoreLedger.perform`); `hops` sends so far.
    case redirect(operation: ReservationOperation, id: ReservationID, homeShard: Int, hops: Int,
                  completion: ReservationCompletion)
}

/// What the home tells a part to do with its holds of a reservation. Raw values are on disk.
enum HoldChange: UInt8, Sendable {
    /// The reservation is held: tentative holds become held.
    case keep = 1
    /// The reservation was refused (or never decided): tentative holds are given back.
    case abort = 2
    /// Held units become committed units.
    case commit = 3
    /// The units are given back (released or expired reservation).
    case release = 4
}
