import ATPClient
import ATPProtocol
import ArgumentParser

/// `atp top`: a live view of the server over the `stats` opcode, one frame per interval: events,
/// queries and reservations per second (from counter deltas), the query p99 over the interval
/// (from the server's latency buckets), inbox depth, connections, requests in flight and, when the
/// server keeps snapshots, the snapshot age.
/// Ctrl-C exits; `--once` prints one frame (two readings an interval apart) and exits.
public struct TopCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Show live server activity, refreshed each interval (Ctrl-C exits).",
        discussion: "Rates are deltas of the server's statistics over the interval; see docs/CLI.md.")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Flag(name: .long, help: "Print one frame (after one interval) and exit, for scripts.")
    var once = false
    @Option(name: .customLong("interval-ms"), help: "Time between frames, in milliseconds (default 1000).")
    var intervalMilliseconds: Int = 1000

    /// Parsed by ArgumentParser.
    public init() {}

    /// The interval is 100 ms to 1 hour.
    public func validate() throws {
        if !(100...3_600_000).contains(intervalMilliseconds) {
            throw ValidationError("--interval-ms must be from 100 to 3600000, got \(intervalMilliseconds)")
        }
    }

    /// Reads the statistics every interval and prints a frame from each pair of readings.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let interval = intervalMilliseconds
        let printer = Printer(context, settings)
        let live = !once && !settings.json
        try await Session.with(settings) { session in
            var previous = try await TopSample.read(session)
            while true {
                try await Task.sleep(for: .milliseconds(interval))
                let current = try await TopSample.read(session)
                let frame = TopFrame(from: previous, to: current)
                if live { context.output.write("\u{1B}[H\u{1B}[2J", to: .standardOutput) }
                printer.emit(frame.json) { frame.lines(endpoint: settings.endpoint) }
                if once { return }
                previous = current
            }
        }
        return .ok
    }
}

/// One reading of the statistics, and when it was taken.
struct TopSample: Sendable {
    var values: [String: Int64]
    var at: ContinuousClock.Instant

    static func read(_ session: Session) async throws -> TopSample {
        let entries = try await session.call("stats") { try await $0.stats(prefix: "") }
        var values: [String: Int64] = [:]
        for entry in entries {
            switch entry.value {
            case .unsigned(let value): values[entry.name] = Int64(clamping: value)
            case .signed(let value): values[entry.name] = value
            }
        }
        return TopSample(values: values, at: .now)
    }

    subscript(_ name: String) -> Int64 { values[name] ?? 0 }
}

/// What one frame of `atp top` shows, computed from two readings.
struct TopFrame: Sendable, Equatable {
    var seconds: Double
    var eventsPerSecond: Int64
    var rejectedPerSecond: Int64
    var queryItemsPerSecond: Int64
    var queryRequestsPerSecond: Int64
    var reservationsPerSecond: Int64
    var commitsAndReleasesPerSecond: Int64
    var framesPerSecond: Int64
    /// The p99 query latency over the interval: the upper bound of its bucket, in µs (nil: no
    /// query in the interval; -1: above the largest bound).
    var queryP99Microseconds: Int64?
    var inboxDepthMax: Int64
    var connectionsOpen: Int64
    /// Requests in flight besides the `stats` request that read them.
    var requestsInFlight: Int64
    var reservationsHeld: Int64
    var cells: Int64
    var cellsShort: Int64
    /// Seconds since the last snapshot finished: the statistic `snapshot.ageSeconds`, which a server
    /// with a data directory reports; nil when the server keeps no snapshots.
    var snapshotAgeSeconds: Int64?

    init(from old: TopSample, to new: TopSample) {
        let elapsed = new.at - old.at
        let seconds = max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        self.seconds = seconds
        func rate(_ names: String...) -> Int64 {
            let delta = names.reduce(Int64(0)) { $0 + max(0, new[$1] - old[$1]) }
            return Int64((Double(delta) / seconds).rounded())
        }
        eventsPerSecond = rate("events.applied")
        rejectedPerSecond = rate("events.rejected")
        queryItemsPerSecond = rate("queries.answered")
        queryRequestsPerSecond = rate("server.queryLatency.count")
        reservationsPerSecond = rate("reservations.granted", "reservations.partial", "reservations.refused")
        commitsAndReleasesPerSecond = rate("reservations.committed", "reservations.released")
        framesPerSecond = rate("server.frames.received")
        queryP99Microseconds = Self.p99Microseconds(old, new)
        inboxDepthMax = new["inbox.depth.max"]
        connectionsOpen = new["server.connections.open"]
        requestsInFlight = max(0, new["server.requests.inFlight"] - 1)
        reservationsHeld = new["reservations.held"]
        cells = new["cells.count"]
        cellsShort = new["cells.short"]
        snapshotAgeSeconds = new.values["snapshot.ageSeconds"]
    }

    /// The 99th percentile from the growth of the cumulative `server.queryLatency.le.<µs>` buckets.
    static func p99Microseconds(_ old: TopSample, _ new: TopSample) -> Int64? {
        let total = new["server.queryLatency.count"] - old["server.queryLatency.count"]
        guard total > 0 else { return nil }
        let bounds = new.values.keys.compactMap { name -> Int64? in
            guard name.hasPrefix("server.queryLatency.le.") else { return nil }
            return Int64(name.dropFirst("server.queryLatency.le.".count))
        }.sorted()
        let wanted = Double(total) * 0.99
        for bound in bounds {
            let name = "server.queryLatency.le.\(bound)"
            if Double(new[name] - old[name]) >= wanted { return bound }
        }
        return -1
    }

    var json: JSONValue {
        .object([
            ("intervalMilliseconds", JSONValue.number(Int64((seconds * 1000).rounded()))),
            ("eventsPerSecond", JSONValue.number(eventsPerSecond)),
            ("rejectedPerSecond", JSONValue.number(rejectedPerSecond)),
            ("queryItemsPerSecond", JSONValue.number(queryItemsPerSecond)),
            ("queryRequestsPerSecond", JSONValue.number(queryRequestsPerSecond)),
            ("queryP99Microseconds", queryP99Microseconds.map { JSONValue.number($0) } ?? .null),
            ("reservationsPerSecond", JSONValue.number(reservationsPerSecond)),
            ("commitsAndReleasesPerSecond", JSONValue.number(commitsAndReleasesPerSecond)),
            ("framesPerSecond", JSONValue.number(framesPerSecond)),
            ("inboxDepthMax", JSONValue.number(inboxDepthMax)),
            ("connectionsOpen", JSONValue.number(connectionsOpen)),
            ("requestsInFlight", JSONValue.number(requestsInFlight)),
            ("reservationsHeld", JSONValue.number(reservationsHeld)),
            ("cells", JSONValue.number(cells)),
            ("cellsShort", JSONValue.number(cellsShort)),
            ("snapshotAgeSeconds", snapshotAgeSeconds.map { JSONValue.number($0) } ?? .null),
        ])
    }

    func lines(endpoint: String) -> [String] {
        let p99: String
        if let micros = queryP99Microseconds {
            p99 = micros < 0 ? "> 100 ms" : "<= \(micros) µs"
        } else {
            p99 = "-"
        }
        var table = TextTable([("WHAT", .left), ("NOW", .right)])
        table.add(["events/s", "\(eventsPerSecond)"])
        table.add(["rejected events/s", "\(rejectedPerSecond)"])
        table.add(["query requests/s", "\(queryRequestsPerSecond)"])
        table.add(["query items/s", "\(queryItemsPerSecond)"])
        table.add(["query p99", p99])
        table.add(["reservations/s", "\(reservationsPerSecond)"])
        table.add(["commits+releases/s", "\(commitsAndReleasesPerSecond)"])
        table.add(["frames/s", "\(framesPerSecond)"])
        table.add(["inbox depth (max)", "\(inboxDepthMax)"])
        table.add(["connections", "\(connectionsOpen)"])
        table.add(["in flight", "\(requestsInFlight)"])
        table.add(["reservations held", "\(reservationsHeld)"])
        table.add(["cells (short)", "\(cells) (\(cellsShort))"])
        table.add(["snapshot age", snapshotAgeSeconds.map { "\($0) s" } ?? "- (no snapshots)"])
        let header = "atp top \(endpoint): every \(Int((seconds * 1000).rounded())) ms (Ctrl-C exits)"
        return [header] + table.renderedLines()
    }
}
