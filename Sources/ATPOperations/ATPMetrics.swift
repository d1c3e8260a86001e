import ATPLedger
import ATPProtocol
import ATPServer
import Prometheus
import Synchronization

/// atpd's metrics in the Prometheus text format (0.0.4), gathered at scrape time.
///
/// Nothing here runs per request or per event. Engine-wide numbers come from `Engine.statistics()`
/// (plain per-shard counters, summed on request), the server's from its lock-free counters and its
/// per-loop `RequestMetrics`; a scrape turns them into Prometheus counters (advanced by the growth
/// since the last scrape) and gauges in `registry`, then appends the query latency histogram.
///
/// Extending it (journal, snapshots, ...) takes a few lines, either way:
/// - pull: `addCollector { metrics in metrics.setGauge(.snapshotAgeSeconds, to: age) }` runs at every
///   scrape (`setCounter` for a cumulative count kept elsewhere);
/// - push: code that measures as it goes uses swift-metrics (`Timer(label: "atp_journal_fsync_duration_seconds")`)
///   once atpd has bootstrapped `MetricsSystem` with `metricsFactory()`, which records into the
///   same registry (with the buckets `MetricName.durationBuckets` lists for such names).
public final class ATPMetrics: Sendable {
    /// Where every series lives; `scrape()` renders it.
    public let registry: PrometheusCollectorRegistry
    private let server: ATPServer
    private let readiness: ReadinessChecks
    private let lagProbe: ApplyLagProbe
    /// Last cumulative value seen per counter series, so a scrape adds only the growth.
    private let counterValues = Mutex<[String: UInt64]>([:])
    private let collectors = Mutex<[@Sendable (ATPMetrics) -> Void]>([])
    /// One scrape at a time: the counter deltas must not be applied twice.
    private let scrapeLock = Mutex<Void>(())

    /// Metrics of `server`; `readiness` feeds `atp_ready`.
    public init(server: ATPServer, readiness: ReadinessChecks,
                registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.server = server
        self.readiness = readiness
        self.registry = registry
        lagProbe = ApplyLagProbe(engine: server.engine)
    }

    /// Runs `body` at every scrape, before the text is rendered (a pull-style extension point:
    /// set gauges and counters from state kept elsewhere). Any thread.
    public func addCollector(_ body: @escaping @Sendable (ATPMetrics) -> Void) {
        collectors.withLock { $0.append(body) }
    }

    /// A swift-metrics factory that records into `registry`, with the duration buckets of
    /// `MetricName.durationBuckets`. Bootstrap it once per process:
    /// `MetricsSystem.bootstrap(metrics.metricsFactory())`.
    public func metricsFactory() -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = MetricName.durationBuckets
        return factory
    }

    // MARK: - Setting values (collectors)

    /// Sets a gauge.
    public func setGauge(_ metric: MetricName, labels: [(String, String)] = [], to value: Double) {
        registry.makeGauge(name: metric.name, labels: labels, help: metric.help).set(value)
    }

    /// Advances a counter to `cumulative`, a count that only grows (kept elsewhere): the series
    /// grows by the difference since the last call. A smaller value changes nothing (a counter
    /// never goes down).
    public func setCounter(_ metric: MetricName, labels: [(String, String)] = [], to cumulative: UInt64) {
        let key = metric.name + labels.map { "\u{1}\($0.0)=\($0.1)" }.joined()
        let delta = counterValues.withLock { values -> UInt64 in
            let previous = values[key] ?? 0
            guard cumulative > previous else { return 0 }
            values[key] = cumulative
            return cumulative - previous
        }
        let counter = registry.makeCounter(name: metric.name, labels: labels, help: metric.help)
        if delta > 0 { counter.increment(by: Int64(clamping: delta)) }
    }

    // MARK: - Scraping

    /// Gathers every value and renders the text exposition format. Blocks briefly (it asks every
    /// shard worker for its counters): call it off the event loops.
    public func scrape() -> [UInt8] {
        scrapeLock.withLock { _ in
            let started = ContinuousClock.now
            collectEngine()
            collectServer()
            collectMemory()
            setGauge(.ready, to: readiness.check().isReady ? 1 : 0)
            for collector in collectors.withLock({ $0 }) { collector(self) }
            let elapsed = ContinuousClock.now - started
            setGauge(.scrapeDurationSeconds, to: Double(elapsed.components.seconds)
                        + Double(elapsed.components.attoseconds) / 1e18)
            var text = registry.emitToBuffer()
            QueryLatencyText.append(server.requestMetrics.snapshot(), to: &text)
            return text
        }
    }

    private func collectEngine() {
        let engine = server.engine
        let statistics = engine.statistics()
        let counters = statistics.counters
        for kind in StockEventKind.allCases where Int(kind.rawValue) < counters.eventsAppliedByKind.count {
            setCounter(.eventsApplied, labels: [("kind", "\(kind)")],
                       to: counters.eventsAppliedByKind[Int(kind.rawValue)])
        }
        for reason in RejectionReason.allCases where Int(reason.rawValue) < counters.rejectionsByReason.count {
            setCounter(.eventsRejected, labels: [("reason", "\(reason)")],
                       to: counters.rejectionsByReason[Int(reason.rawValue)])
        }
        setCounter(.eventsDuplicates, to: counters.duplicatesDropped)
        for bucket in Bucket.allCases where bucket.isFlooredAtZero
            && Int(bucket.rawValue) < counters.exceptionUnitsByBucket.count {
            setCounter(.exceptionUnits, labels: [("bucket", "\(bucket)")],
                       to: counters.exceptionUnitsByBucket[Int(bucket.rawValue)])
        }
        let outcomes: [(String, UInt64)] = [
            ("granted", counters.reservationsGranted), ("partial", counters.reservationsPartial),
            ("refused", counters.reservationsRefused), ("committed", counters.reservationsCommitted),
            ("released", counters.reservationsReleased), ("expired", counters.reservationsExpired),
        ]
        for (outcome, count) in outcomes { setCounter(.reservations, labels: [("outcome", outcome)], to: count) }
        setCounter(.queryItems, to: counters.queriesAnswered)
        setGauge(.reservationsHeld, to: Double(statistics.heldReservations))
        setGauge(.holds, to: Double(statistics.holds))
        setGauge(.cells, to: Double(statistics.cellCount))
        setGauge(.cellsShort, to: Double(max(0, counters.shortCells)))
        setGauge(.cellBytes, to: Double(statistics.cellBytes))
        setGauge(.nameBytes, to: Double(statistics.nameBytes))
        setGauge(.skus, to: Double(statistics.skuCount))
        setGauge(.locations, to: Double(statistics.locationCount))
        setGauge(.channels, to: Double(statistics.channelCount))
        for (worker, depth) in statistics.inboxDepths.enumerated() {
            setGauge(.inboxDepth, labels: [("worker", "\(worker)")], to: Double(depth))
        }
        for (worker, lag) in lagProbe.measure().enumerated() {
            setGauge(.applyLagSeconds, labels: [("worker", "\(worker)")], to: lag)
        }
        let now = engine.clock.nowMilliseconds()
        for (source, stamp) in statistics.lastAppliedMillisecondsBySource {
            setGauge(.sourceLastEventAgeSeconds, labels: [("source", engine.catalog.name(of: source))],
                     to: Double(max(0, now - stamp)) / 1000)
        }
    }

    private func collectServer() {
        var values: [String: Int64] = [:]
        for entry in server.serverStatistics() {
            switch entry.value {
            case .unsigned(let value): values[entry.name] = Int64(clamping: value)
            case .signed(let value): values[entry.name] = value
            }
        }
        func value(_ name: String) -> Int64 { values[name] ?? 0 }
        setGauge(.startTimeSeconds, to: Double(value("server.startMilliseconds")) / 1000)
        setGauge(.connectionsOpen, to: Double(value("server.connections.open")))
        setCounter(.connectionsAccepted, to: UInt64(max(0, value("server.connections.accepted"))))
        setCounter(.connectionsRefused, to: UInt64(max(0, value("server.connections.refused"))))
        setCounter(.framesReceived, to: UInt64(max(0, value("server.frames.received"))))
        setCounter(.readPauses, to: UInt64(max(0, value("server.reads.paused"))))
        setCounter(.inboxFullRetries, to: UInt64(max(0, value("server.inbox.fullRetries"))))
        setGauge(.requestsInFlight, to: Double(value("server.requests.inFlight")))
        setGauge(.inboundBufferedBytes, to: Double(value("server.bytes.inboundBuffered")))
        let requests = server.requestMetrics.snapshot()
        for opcode in 0..<256 {
            for outcome in 0..<RequestMetrics.outcomeSlots {
                let count = requests.framesSent(opcode: UInt8(opcode), outcome: UInt16(outcome))
                guard count > 0 else { continue }
                setCounter(.framesSent, labels: [("opcode", Opcode(rawValue: UInt8(opcode)).description),
                                                 ("outcome", Self.outcomeLabel(outcome))], to: count)
            }
        }
    }

    /// The process's memory (`ProcessMemory`): the allocator as an info gauge, the resident set,
    /// allocated bytes, and under jemalloc its own figures and ratios. Families whose figure is
    /// unknown in this process (jemalloc's under glibc) are not registered.
    private func collectMemory() {
        let memory = ProcessMemory.read()
        let version = memory.allocator == .jemalloc ? (ProcessMemory.jemallocVersion ?? "unknown") : "system"
        setGauge(.memoryAllocator, labels: [("allocator", "\(memory.allocator)"), ("version", version)], to: 1)
        setGauge(.memoryResidentBytes, to: Double(memory.residentBytes))
        setGauge(.memoryResidentPeakBytes, to: Double(memory.residentPeakBytes))
        if let allocated = memory.allocatedBytes { setGauge(.memoryAllocatedBytes, to: Double(allocated)) }
        if let figures = memory.jemalloc {
            setGauge(.memoryAllocatorActiveBytes, to: Double(figures.activeBytes))
            setGauge(.memoryAllocatorResidentBytes, to: Double(figures.residentBytes))
            setGauge(.memoryAllocatorRetainedBytes, to: Double(figures.retainedBytes))
            setGauge(.memoryAllocatorMappedBytes, to: Double(figures.mappedBytes))
            setGauge(.memoryAllocatorMetadataBytes, to: Double(figures.metadataBytes))
        }
        if let ratio = memory.allocatorFragmentationRatio { setGauge(.memoryAllocatorFragmentationRatio, to: ratio) }
        if let ratio = memory.allocatorResidentRatio { setGauge(.memoryAllocatorResidentRatio, to: ratio) }
        if let ratio = memory.fragmentationRatio { setGauge(.memoryFragmentationRatio, to: ratio) }
    }

    /// "ok" for replies, the error's name otherwise.
    static func outcomeLabel(_ outcome: Int) -> String {
        if outcome == 0 { return "ok" }
        if outcome == RequestMetrics.outcomeSlots - 1 { return "other" }
        return ErrorCode(rawValue: UInt16(outcome)).description
    }
}
