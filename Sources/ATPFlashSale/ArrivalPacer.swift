import ATPLedger
import NIOCore

/// Open loop: hands buyers to the connections of one event loop at a fixed rate, round robin.
/// Buyer `k` is meant to arrive at `start + k / arrivalsPerSecond`; the pacer wakes at the next
/// intended arrival and hands out every buyer whose time has come (several at once when the loop
/// was busy), each with its intended time, so the driver measures latency from it.
///
/// Confined to its event loop.
final class ArrivalPacer: @unchecked Sendable {
    private let eventLoop: EventLoop
    private let drivers: [BuyerDriver]
    private let nanosecondsPerArrival: Double
    private let control: SaleControl
    private var startNanoseconds: UInt64 = 0
    private var deadlineNanoseconds: UInt64 = .max
    private var arrivals: UInt64 = 0
    private var nextDriver = 0
    private var scheduled: Scheduled<Void>?
    private var isStopped = false

    /// A pacer for `drivers` (all on `eventLoop`) at `arrivalsPerSecond` buyers per second.
    init(eventLoop: EventLoop, drivers: [BuyerDriver], arrivalsPerSecond: Double, control: SaleControl) {
        precondition(arrivalsPerSecond > 0, "an open loop needs a positive rate")
        precondition(!drivers.isEmpty, "a pacer needs connections")
        self.eventLoop = eventLoop
        self.drivers = drivers
        nanosecondsPerArrival = 1e9 / arrivalsPerSecond
        self.control = control
    }

    /// Starts handing out buyers, the first one at `start`, the last one before `deadline`
    /// (monotonic nanoseconds).
    func start(atNanoseconds start: UInt64, deadlineNanoseconds deadline: UInt64) {
        eventLoop.preconditionInEventLoop()
        startNanoseconds = start
        deadlineNanoseconds = deadline
        tick()
    }

    /// Stops handing out buyers. At the time limit (`catchUp`) the buyers meant to arrive before the
    /// deadline that a late wake-up has not handed out yet are handed out first: they arrived, and
    /// their wait is part of what the open loop measures.
    func stop(catchUp: Bool) {
        eventLoop.preconditionInEventLoop()
        if catchUp && !control.isStopping { handOutDue(until: deadlineNanoseconds) }
        isStopped = true
        scheduled?.cancel()
        scheduled = nil
    }

    /// Hands out every buyer meant to arrive before `limit` and the deadline; returns when the next
    /// one is meant to arrive.
    @discardableResult
    private func handOutDue(until limit: UInt64) -> UInt64 {
        var next = intendedNanoseconds(of: arrivals)
        while next < limit && next < deadlineNanoseconds {
            drivers[nextDriver].arrive(intendedNanoseconds: next)
            nextDriver = nextDriver + 1 == drivers.count ? 0 : nextDriver + 1
            arrivals += 1
            next = intendedNanoseconds(of: arrivals)
        }
        return next
    }

    private func intendedNanoseconds(of arrival: UInt64) -> UInt64 {
        startNanoseconds + UInt64(Double(arrival) * nanosecondsPerArrival)
    }

    private func tick() {
        guard !isStopped, !control.isStopping else { return }
        let now = monotonicNanoseconds()
        let next = handOutDue(until: now + 1)
        guard next < deadlineNanoseconds else { return }
        // A delay rather than a deadline: NIO's deadlines need not be on ATPLedger's clock.
        scheduled = eventLoop.scheduleTask(in: .nanoseconds(Int64(next - now))) { [self] in tick() }
    }
}
