import ATPClient
import ATPLedger
import ATPProtocol
import NIOCore

/// One connection's buyers. Each buyer reserves 1...maxUnits units of one hot SKU, all or nothing;
/// at most `depth` reservations are in flight on the connection.
///
/// Closed loop: the connection starts `depth` buyers and sends the next one as each reply arrives;
/// latency runs from the send. Open loop: an `ArrivalPacer` hands it buyers at their intended
/// arrival times; a buyer that finds `depth` reservations in flight waits in a backlog, and its
/// latency runs from its intended arrival, so the wait is measured (no coordinated omission).
///
/// Confined to the connection's event loop: every method runs there.
final class BuyerDriver: @unchecked Sendable {
    /// How long a stopping connection waits for its last replies before counting them as lost.
    static let drainTimeout = TimeAmount.seconds(10)

    let connection: ATPConnection
    private let index: Int
    private let catalog: FlashSaleCatalog
    private let control: SaleControl
    private let depth: Int
    private let maxUnits: Int64
    private let holdTTLMilliseconds: Int64
    private let isOpenLoop: Bool
    private var random: SplitMix64
    private(set) var tally: BuyerTally
    private var outstanding = 0
    /// Intended arrival times (monotonic nanoseconds) of open-loop buyers waiting for a slot.
    private var backlog: [UInt64] = []
    private var backlogHead = 0
    private var buyerNumber: UInt64 = 0
    private var startNanoseconds: UInt64 = 0
    private var deadlineNanoseconds: UInt64 = .max
    private var isStopping = false
    private var isLost = false
    private let drained: EventLoopPromise<Void>

    /// Completes once the connection has stopped and every reply it waited for arrived (or was
    /// counted as lost).
    var drainedFuture: EventLoopFuture<Void> { drained.futureResult }

    init(connection: ATPConnection, index: Int, catalog: FlashSaleCatalog, control: SaleControl,
         configuration: FlashSaleConfiguration) {
        self.connection = connection
        self.index = index
        self.catalog = catalog
        self.control = control
        depth = configuration.depth
        maxUnits = configuration.maxUnitsPerBuyer
        holdTTLMilliseconds = configuration.holdTTLMilliseconds
        isOpenLoop = configuration.isOpenLoop
        random = SplitMix64(seed: configuration.seed &+ UInt64(index))
        tally = BuyerTally(skuCount: catalog.skus.count)
        drained = connection.eventLoop.makePromise()
    }

    /// Starts the sale on this connection at `start`: a closed loop sends `depth` buyers now and
    /// sends no new one at or after `deadline` (monotonic nanoseconds).
    func start(atNanoseconds start: UInt64, deadlineNanoseconds deadline: UInt64) {
        connection.eventLoop.preconditionInEventLoop()
        startNanoseconds = start
        deadlineNanoseconds = deadline
        guard !isOpenLoop else { return }
        let now = monotonicNanoseconds()
        for _ in 0..<depth { send(intendedNanoseconds: now) }
    }

    /// An open-loop buyer arrives; it is sent at once if a slot is free, else it waits in the backlog.
    func arrive(intendedNanoseconds: UInt64) {
        guard !isStopping, !isLost, !control.isStopping else { return }
        if outstanding < depth {
            send(intendedNanoseconds: intendedNanoseconds)
        } else {
            backlog.append(intendedNanoseconds)
        }
    }

    /// Stops taking new buyers. At the time limit (`dropBacklog` false) the open-loop buyers that
    /// arrived before it and wait in the backlog are still served; once the sale is sold out
    /// (`dropBacklog` true) they are not sent. `drainedFuture` completes once every reply arrived,
    /// or after `drainTimeout`, which counts the missing ones as errors.
    func stop(dropBacklog: Bool) {
        connection.eventLoop.preconditionInEventLoop()
        isStopping = true
        if dropBacklog { clearBacklog() }
        finishIfDrained()
        guard !hasFinished else { return }
        connection.eventLoop.scheduleTask(in: Self.drainTimeout) { [self] in
            let missing = outstanding + backlog.count - backlogHead
            for _ in 0..<missing { tally.recordError("no reply within \(Self.drainTimeout.nanoseconds / 1_000_000_000) s of the stop") }
            tally.attempts += backlog.count - backlogHead
            clearBacklog()
            outstanding = 0
            finishIfDrained()
        }
    }

    private func send(intendedNanoseconds: UInt64) {
        guard connection.isActive else {
            markLost("the connection closed")
            tally.attempts += 1
            tally.recordError("not sent: the connection closed")
            return
        }
        let skuIndex = Int.random(in: 0..<catalog.skus.count, using: &random)
        let units = Int64.random(in: 1...maxUnits, using: &random)
        buyerNumber += 1
        guard let id = catalog.reservationID(connection: index, number: buyerNumber) else {
            tally.recordError("reservation id \(catalog.runTag)-\(index)-\(buyerNumber) is not a valid name")
            return
        }
        let line = WireReservationLine(sku: catalog.skus[skuIndex], target: .location(catalog.location), quantity: units)
        let request = Request.reserve(WireReserveRequest(id: id, ttlMilliseconds: holdTTLMilliseconds, mode: .allOrNothing,
                                                         lines: [line]))
        tally.attempts += 1
        outstanding += 1
        connection.send(request) { [self] result in
            answered(result, skuIndex: skuIndex, units: units, intendedNanoseconds: intendedNanoseconds)
        }
    }

    private func answered(_ result: Result<Reply, ATPClientError>, skuIndex: Int, units: Int64, intendedNanoseconds: UInt64) {
        guard outstanding > 0 else { return }  // counted as lost by the drain timeout already
        outstanding -= 1
        let now = monotonicNanoseconds()
        switch result {
        case .success(.reservation(let reply)):
            record(reply, skuIndex: skuIndex, units: units, latencyNanoseconds: now &- intendedNanoseconds, now: now)
        case .success(let other):
            tally.recordError("unexpected reply to reserve: \(other)")
        case .failure(let error):
            tally.recordError("\(error)")
            if error.serverCode?.closesConnection ?? true { markLost("\(error)") }
        }
        sendNext(now: now)
    }

    private func record(_ reply: WireReservationReply, skuIndex: Int, units: Int64, latencyNanoseconds: UInt64, now: UInt64) {
        let second = now > startNanoseconds ? Int((now - startNanoseconds) / 1_000_000_000) : 0
        let grantedUnits = reply.lines.reduce(Int64(0)) { $0 + $1.granted }
        tally.grantedUnitsBySKU[skuIndex] += grantedUnits
        switch reply.state {
        case .held where reply.result == .ok && !reply.replayed:
            tally.recordAnswer(granted: true, second: second, latencyNanoseconds: latencyNanoseconds, nowNanoseconds: now)
            if grantedUnits != units { tally.recordError("all-or-nothing reservation of \(units) units held \(grantedUnits)") }
        case .refused where reply.result == .ok && !reply.replayed:
            tally.recordAnswer(granted: false, second: second, latencyNanoseconds: latencyNanoseconds, nowNanoseconds: now)
            if grantedUnits != 0 { tally.recordError("refused reservation reports \(grantedUnits) units granted") }
            if units == 1 { control.markSoldOut(sku: skuIndex) }
        default:
            tally.recordError("reserve answered \(reply.result), state \(reply.state)\(reply.replayed ? ", replayed" : "")")
        }
    }

    /// After a reply: the next closed-loop buyer, or the oldest open-loop buyer waiting for a slot.
    private func sendNext(now: UInt64) {
        if isLost || control.isStopping {
            if isLost {
                let waiting = backlog.count - backlogHead
                tally.attempts += waiting
                for _ in 0..<waiting { tally.recordError("not sent: the connection closed") }
            }
            clearBacklog()
        } else if !isOpenLoop {
            if !isStopping && now < deadlineNanoseconds { send(intendedNanoseconds: now) }
        } else if backlogHead < backlog.count {
            let intended = backlog[backlogHead]
            backlogHead += 1
            if backlogHead == backlog.count || backlogHead >= 4096 {
                backlog.removeFirst(backlogHead)
                backlogHead = 0
            }
            send(intendedNanoseconds: intended)
        }
        finishIfDrained()
    }

    private func clearBacklog() {
        backlog.removeAll()
        backlogHead = 0
    }

    private func markLost(_ why: String) {
        if !isLost && tally.errorSamples.count < 5 { tally.errorSamples.append("connection \(index) lost: \(why)") }
        isLost = true
    }

    private var hasFinished = false

    private func finishIfDrained() {
        guard isStopping, outstanding == 0, backlogHead == backlog.count, !hasFinished else { return }
        hasFinished = true
        drained.succeed()
    }
}
