import ATPLedger
import ATPClient
import ATPProtocol
import Histogram
import NIOCore

/// What the background traffic saw: availability queries and stock events sent beside the sale.
public struct BackgroundTally: Sendable {
    /// Single-cell queries answered.
    public var queriesAnswered = 0
    /// Receipts applied by the server.
    public var eventsApplied = 0
    /// Queries or ingest frames answered with an error or lost, and events not applied.
    public var errors = 0
    /// Query latency in microseconds, from each query's intended time.
    public var queryLatencyMicroseconds = Histogram<UInt64>(highestTrackableValue: BuyerTally.latencyMicrosecondsMax,
                                                             numberOfSignificantValueDigits: .three)
    /// Ingest latency in microseconds, from the intended time of the frame's first event.
    public var ingestLatencyMicroseconds = Histogram<UInt64>(highestTrackableValue: BuyerTally.latencyMicrosecondsMax,
                                                              numberOfSignificantValueDigits: .three)
    /// The first few error messages.
    public var errorSamples: [String] = []

    mutating func recordError(_ message: String) {
        errors += 1
        if errorSamples.count < 5 { errorSamples.append(message) }
    }
}

/// Background load on a connection of its own, in an open loop: single-cell availability queries of
/// the hot SKUs at the sale location (shoppers refreshing the page), and receipts of 1 unit of a hot
/// SKU at the background location (so they land on the hot SKUs' shards without changing the stock
/// on sale). Events due at the same wake-up travel in one ingest frame.
///
/// Confined to its connection's event loop.
final class BackgroundDriver: @unchecked Sendable {
    /// Events per ingest frame at most.
    static let eventsPerFrameMax = 1000

    let connection: ATPConnection
    private let catalog: FlashSaleCatalog
    private let control: SaleControl
    private let nanosecondsPerQuery: Double
    private let nanosecondsPerEvent: Double
    private let source: String
    private var random: SplitMix64
    private(set) var tally = BackgroundTally()
    private var startNanoseconds: UInt64 = 0
    private var deadlineNanoseconds: UInt64 = .max
    private var queries: UInt64 = 0
    private var events: UInt64 = 0
    private var outstanding = 0
    private var isStopping = false
    private var hasFinished = false
    private var scheduled: Scheduled<Void>?
    private let drained: EventLoopPromise<Void>

    /// Completes once stopped and every reply arrived (or was counted as lost).
    var drainedFuture: EventLoopFuture<Void> { drained.futureResult }

    init(connection: ATPConnection, catalog: FlashSaleCatalog, control: SaleControl, configuration: FlashSaleConfiguration) {
        precondition(configuration.backgroundQueriesPerSecond > 0 || configuration.backgroundEventsPerSecond > 0,
                     "background traffic needs a rate")
        self.connection = connection
        self.catalog = catalog
        self.control = control
        nanosecondsPerQuery = configuration.backgroundQueriesPerSecond > 0 ? 1e9 / configuration.backgroundQueriesPerSecond : .infinity
        nanosecondsPerEvent = configuration.backgroundEventsPerSecond > 0 ? 1e9 / configuration.backgroundEventsPerSecond : .infinity
        source = catalog.source + "-bg"
        random = SplitMix64(seed: configuration.seed &+ 0xB6)
        drained = connection.eventLoop.makePromise()
    }

    /// Starts the background traffic at `start`; nothing is meant to go out at or after `deadline`
    /// (monotonic nanoseconds).
    func start(atNanoseconds start: UInt64, deadlineNanoseconds deadline: UInt64) {
        connection.eventLoop.preconditionInEventLoop()
        startNanoseconds = start
        deadlineNanoseconds = deadline
        tick()
    }

    /// Stops sending; at the time limit (`catchUp`) what was meant to go out before the deadline is
    /// sent first. `drainedFuture` completes once the replies in flight arrived, or after
    /// `BuyerDriver.drainTimeout`.
    func stop(catchUp: Bool) {
        connection.eventLoop.preconditionInEventLoop()
        if catchUp && !control.isStopping && connection.isActive { sendDue(until: deadlineNanoseconds) }
        isStopping = true
        scheduled?.cancel()
        scheduled = nil
        finishIfDrained()
        guard outstanding > 0 else { return }
        connection.eventLoop.scheduleTask(in: BuyerDriver.drainTimeout) { [self] in
            for _ in 0..<outstanding { tally.recordError("no reply within the drain timeout") }
            outstanding = 0
            finishIfDrained()
        }
    }

    /// When request `number` of a stream with one request every `nanoseconds` is meant to go out;
    /// `.max` (never) for a stream without a rate or past the deadline.
    private func intended(_ number: UInt64, every nanoseconds: Double) -> UInt64 {
        guard nanoseconds.isFinite else { return .max }
        let time = startNanoseconds + UInt64(Double(number) * nanoseconds)
        return time < deadlineNanoseconds ? time : .max
    }

    private func tick() {
        guard !isStopping, !control.isStopping, connection.isActive else { return }
        let now = monotonicNanoseconds()
        sendDue(until: now + 1)
        let next = min(intended(queries, every: nanosecondsPerQuery), intended(events, every: nanosecondsPerEvent))
        guard next != .max else { return }
        // A delay rather than a deadline: NIO's deadlines need not be on ATPLedger's clock.
        scheduled = eventLoop.scheduleTask(in: .nanoseconds(Int64(max(next, now + 1000) - now))) { [self] in tick() }
    }

    /// Sends the queries and events meant to go out before `limit` (events in frames of at most
    /// `eventsPerFrameMax`).
    private func sendDue(until limit: UInt64) {
        while intended(queries, every: nanosecondsPerQuery) < limit {
            sendQuery(intendedNanoseconds: intended(queries, every: nanosecondsPerQuery))
            queries += 1
        }
        while intended(events, every: nanosecondsPerEvent) < limit {
            var batch: [WireEvent] = []
            let firstIntended = intended(events, every: nanosecondsPerEvent)
            while intended(events, every: nanosecondsPerEvent) < limit && batch.count < Self.eventsPerFrameMax {
                events += 1
                let sku = catalog.skus[Int.random(in: 0..<catalog.skus.count, using: &random)]
                batch.append(WireEvent(kind: .receive, sku: sku, location: catalog.backgroundLocation, quantity: 1, sequence: events))
            }
            sendIngest(batch, intendedNanoseconds: firstIntended)
        }
    }

    private var eventLoop: EventLoop { connection.eventLoop }

    private func sendQuery(intendedNanoseconds: UInt64) {
        let sku = catalog.skus[Int.random(in: 0..<catalog.skus.count, using: &random)]
        outstanding += 1
        connection.send(.query(QueryRequest(queries: [.cell(sku: sku, location: catalog.location)]))) { [self] result in
            guard outstanding > 0 else { return }
            outstanding -= 1
            switch result {
            case .success(.query(let reply)) where reply.answers.count == 1:
                tally.queriesAnswered += 1
                _ = tally.queryLatencyMicroseconds.record(latencyMicroseconds(since: intendedNanoseconds))
            case .success(let other): tally.recordError("unexpected reply to a query: \(other)")
            case .failure(let error): tally.recordError("query: \(error)")
            }
            finishIfDrained()
        }
    }

    private func sendIngest(_ batch: [WireEvent], intendedNanoseconds: UInt64) {
        outstanding += 1
        connection.send(.ingest(IngestRequest(source: source, events: batch))) { [self] result in
            guard outstanding > 0 else { return }
            outstanding -= 1
            switch result {
            case .success(.ingest(let reply)):
                tally.eventsApplied += Int(reply.appliedCount)
                _ = tally.ingestLatencyMicroseconds.record(latencyMicroseconds(since: intendedNanoseconds))
                let missing = batch.count - Int(reply.appliedCount)
                if missing > 0 { tally.recordError("\(missing) of \(batch.count) background events not applied") }
            case .success(let other): tally.recordError("unexpected reply to ingest: \(other)")
            case .failure(let error): tally.recordError("ingest: \(error)")
            }
            finishIfDrained()
        }
    }

    private func latencyMicroseconds(since intendedNanoseconds: UInt64) -> UInt64 {
        min((monotonicNanoseconds() &- intendedNanoseconds) / 1000, BuyerTally.latencyMicrosecondsMax)
    }

    private func finishIfDrained() {
        guard isStopping, outstanding == 0, !hasFinished else { return }
        hasFinished = true
        drained.succeed()
    }
}
