import ATPClient
import ATPLedger
import ATPProtocol
import Foundation
import Synchronization

/// One kill -9 crash cycle against atpd, and the checks after the restart (docs/DURABILITY.md,
/// "Crash test"). Shared by Tests/ATPDurabilityTests/CrashTests.swift and the `crash-soak` tool.
///
/// A cycle: start (or reuse) atpd on the data directory; `clients` connections send the
/// `workload` (ingest batches and resends; reserves of 1–3 lines across shards, all-or-nothing and
/// partial, location and channel lines, some with short ttls; retries; commits and releases) one
/// request at a time each, the model recording every acknowledged reply; SIGKILL after a seeded
/// random delay; restart on the same directory (a refusal to start is a violation); then check
/// the recovered ledger against the model and settle the unknowns (`check`).
public struct CrashSoak: Sendable {
    /// The atpd executable.
    public var atpdPath: String
    /// The data directory (kept across cycles).
    public var dataDirectory: String
    /// Extra atpd arguments (besides `--data-dir` and `--port 0`).
    public var atpdArguments = ["--shards", "8", "--workers", "2", "--io-threads", "1"]
    /// Concurrent client connections during the load.
    public var clients = 4
    /// SKUs and locations of the catalogue the load uses.
    public var skuCount = 24
    public var locations = ["S1", "S2", "S3"]
    /// Units each cell is stocked with on the first cycle.
    public var initialUnitsPerCell: Int64 = 40
    /// The kill comes after a random delay in this range, in milliseconds.
    public var killDelayMilliseconds: ClosedRange<Int> = 150...1200
    /// What the clients send.
    public var workload = CrashWorkload()
    /// An expiry within this many milliseconds of a question (or a read) may have happened or not;
    /// further away it must be on the right side.
    public var expiryMarginMilliseconds: Int64 = 250
    /// Questions in flight at a time during the checks.
    public var probeConcurrency = 256

    /// A soak over `dataDirectory` with atpd at `atpdPath`.
    public init(atpdPath: String, dataDirectory: String) {
        self.atpdPath = atpdPath
        self.dataDirectory = dataDirectory
    }

    /// What one cycle did and found.
    public struct CycleReport: Sendable, CustomStringConvertible {
        /// The cycle's seed.
        public var seed: UInt64
        /// The workload mode the cycle ran.
        public var mode: CrashWorkload.Mode = .mixed
        /// Milliseconds of load before the kill, and when the kill was sent (wall clock).
        public var killDelayMilliseconds = 0
        public var killedAtMilliseconds: Int64 = 0
        /// Snapshots atpd logged as written during the cycle's load (before the kill).
        public var snapshotsBeforeKill = 0
        /// Operations acknowledged in this cycle, by kind.
        public var acknowledgedByKind: [OperationKind: Int] = [:]
        /// Operations whose reply never came (in flight at the kill), by kind.
        public var unknownByKind: [OperationKind: Int] = [:]
        /// Unknown reservation operations found applied / not applied after the restart.
        public var unknownApplied = 0
        public var unknownAbsent = 0
        /// Events of unacknowledged batches found applied before the resend.
        public var unknownEventsApplied = 0
        /// Reservations found expired after the restart.
        public var foundExpired = 0
        /// Reservations whose expiry fell within the margin of the question (either state allowed).
        public var expiryUndecided = 0
        /// Errors the server answered during the load (other than the kill closing connections).
        public var loadErrors: [String] = []
        /// atpd's recovery line after the restart.
        public var recovery = ""
        /// Milliseconds from the restart to atpd listening, and of the checks.
        public var restartMilliseconds = 0
        public var checkMilliseconds = 0
        /// Every check that failed (empty: the cycle passed).
        public var violations: [CrashViolation] = []

        /// An empty report for the cycle with `seed`.
        public init(seed: UInt64) {
            self.seed = seed
        }

        /// Operations acknowledged in this cycle.
        public var acknowledged: Int { acknowledgedByKind.values.reduce(0, +) }
        /// Operations left unknown by the kill.
        public var unknown: Int { unknownByKind.values.reduce(0, +) }
        /// Of the unknown ones, how many were ingest batches.
        public var unknownBatches: Int { unknownByKind[.ingest, default: 0] }

        public var description: String {
            var text = "seed \(seed) \(mode): killed after \(killDelayMilliseconds) ms (at \(killedAtMilliseconds), "
                + "\(snapshotsBeforeKill) snapshots written before); acknowledged \(acknowledged) \(Self.counts(acknowledgedByKind)); "
                + "unknown \(unknown) \(Self.counts(unknownByKind)), reservation ops applied \(unknownApplied) absent \(unknownAbsent), "
                + "events applied \(unknownEventsApplied); found expired \(foundExpired), expiry within the margin \(expiryUndecided); "
            if !loadErrors.isEmpty { text += "load errors: \(loadErrors.prefix(3)); " }
            text += violations.isEmpty ? "OK" : "\(violations.count) VIOLATIONS (\(Self.kinds(violations)))"
            text += "; restart \(restartMilliseconds) ms, checks \(checkMilliseconds) ms"
            return text + "; recovery: \(recovery.isEmpty ? "none" : recovery)"
        }

        static func counts(_ counts: [OperationKind: Int]) -> String {
            "(" + counts.keys.sorted().map { "\($0) \(counts[$0]!)" }.joined(separator: ", ") + ")"
        }

        static func kinds(_ violations: [CrashViolation]) -> String {
            Dictionary(grouping: violations, by: \.kind).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.count)" }
                .joined(separator: ", ")
        }
    }

    /// Starts atpd on the data directory.
    public func start(extraArguments: [String] = []) throws -> AtpdProcess {
        try AtpdProcess.start(executable: atpdPath,
                              arguments: ["--data-dir", dataDirectory, "--port", "0"] + atpdArguments + extraArguments)
    }

    /// Runs one cycle on `server` (already started on the data directory): load, SIGKILL,
    /// restart, checks. Returns the restarted server (nil when atpd refused to start, or exited
    /// during the checks: a violation with its output is in the report) and the report. Throws when
    /// the load cannot connect.
    public func runCycle(seed: UInt64, cycle: Int, server: AtpdProcess, model: inout CrashModel,
                         restartArguments: [String] = []) async throws -> (AtpdProcess?, CycleReport) {
        var report = CycleReport(seed: seed)
        var generator = SeededGenerator(seed: seed)
        report.mode = workload.cycleMode(using: &generator)
        report.killDelayMilliseconds = Int.random(in: killDelayMilliseconds, using: &generator)
        if model.onHand.isEmpty { try await seedStock(server, model: &model) }
        try await loadAndKill(server, cycle: cycle, generator: &generator, model: &model, report: &report)
        let restartedAt = ContinuousClock.now
        let restarted: AtpdProcess
        do {
            restarted = try start(extraArguments: restartArguments)
        } catch let failure as AtpdProcess.StartFailure {
            let status = failure.exitStatus.map { "exit status \($0)" } ?? "killed by a signal, or by the start timeout"
            report.violations.append(CrashViolation(.refusedToStart, "atpd",
                "did not start on \(dataDirectory) after the kill (\(status)); its output:\n\(failure.log)"))
            return (nil, report)
        }
        report.restartMilliseconds = Self.milliseconds(since: restartedAt)
        report.recovery = restarted.log.split(separator: "\n").first { $0.contains("recovered") }.map(String.init) ?? ""
        let checkedAt = ContinuousClock.now
        do {
            let client = try await ATPConnection.connect(port: restarted.port, token: "demo-admin", clientName: "crash-check")
            var failure: (any Error)?
            do { try await check(client, model: &model, report: &report) } catch { failure = error }
            await client.close()
            if let failure { throw failure }
        } catch {
            // atpd stopped answering (or answered nonsense) while being checked.
            try? await Task.sleep(for: .milliseconds(200))  // let a dying atpd finish its output
            let running = restarted.process.isRunning
            report.violations.append(CrashViolation(.checksFailed, "atpd",
                "the checks could not go on: \(error); atpd \(running ? "is still running" : "exited")"
                    + "; the end of its output:\n\(restarted.logTail())"))
            if !running {
                restarted.waitForExit()
                report.checkMilliseconds = Self.milliseconds(since: checkedAt)
                return (nil, report)
            }
        }
        report.checkMilliseconds = Self.milliseconds(since: checkedAt)
        return (restarted, report)
    }

    /// The load: `clients` connections until the kill, then SIGKILL and the wait for the exit. The
    /// model takes every acknowledged reply; the report the counts, the kill moment and the load's
    /// violations.
    private func loadAndKill(_ server: AtpdProcess, cycle: Int, generator: inout SeededGenerator,
                             model: inout CrashModel, report: inout CycleReport) async throws {
        let snapshotsAtStart = Self.snapshotsWritten(server.log)
        let shared = LoadShared(model)
        let connections = try await (0..<clients).asyncMap { _ in
            try await ATPConnection.connect(port: server.port, token: "demo-admin", clientName: "crash-soak")
        }
        // Reservations left live by earlier cycles, shared out among the clients to settle.
        let inherited = model.reservations.filter { $0.value.pending == nil && ($0.value.state == .held || $0.value.state == .committed) }
            .keys.sorted()
        let killDelay = report.killDelayMilliseconds
        let mode = report.mode
        let clientSeeds = (0..<clients).map { _ in generator.next() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, connection) in connections.enumerated() {
                let mine = stride(from: index, to: inherited.count, by: clients).map { inherited[$0] }
                group.addTask {
                    var load = ClientLoad(soak: self, connection: connection, shared: shared, client: index, cycle: cycle,
                                          seed: clientSeeds[index], inherited: mine)
                    await load.run(mode)
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(killDelay))
                shared.exitedBeforeKill.store(!server.process.isRunning, ordering: .relaxed)
                shared.killedAtMilliseconds.store(wallClockMilliseconds(), ordering: .relaxed)
                server.send(SIGKILL)
                shared.stop.store(true, ordering: .relaxed)
            }
            try await group.waitForAll()
        }
        let exitStatus = server.waitForExit()
        for connection in connections { await connection.close() }
        if shared.exitedBeforeKill.load(ordering: .relaxed) {
            report.violations.append(CrashViolation(.exitedUnderLoad, "atpd",
                "exited before the kill (\(exitStatus.map { "exit status \($0)" } ?? "signal")); the end of its output:\n\(server.logTail())"))
        } else if server.crashed {
            // A crash the Swift runtime reported (its backtracer keeps the process alive, stopped,
            // until the kill): atpd failed under the load.
            report.violations.append(CrashViolation(.exitedUnderLoad, "atpd",
                "crashed before the kill; the end of its output:\n\(server.logTail(lines: 120))"))
        }
        model = shared.model.withLock { $0 }
        model.killedAtMilliseconds = shared.killedAtMilliseconds.load(ordering: .relaxed)
        for (id, entry) in model.reservations where entry.state == nil && entry.pending == .reserve {
            let ttl = entry.request.ttlMilliseconds
            // A reserve sent after the kill was stored (the clients stop just after) did not happen.
            let sentAt = entry.pendingSentAtMilliseconds
            model.reservations[id]?.expiresAtMilliseconds = (sentAt + ttl)...(max(sentAt, model.killedAtMilliseconds) + ttl)
        }
        report.killedAtMilliseconds = model.killedAtMilliseconds
        report.snapshotsBeforeKill = Self.snapshotsWritten(server.log) - snapshotsAtStart
        shared.tally.withLock { tally in
            report.acknowledgedByKind = tally.acknowledged
            report.unknownByKind = tally.unknown
            report.loadErrors = tally.errors
            report.violations += tally.violations
        }
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Int {
        let elapsed = ContinuousClock.now - start
        return Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
    }

    /// How many "snapshot N written" lines `log` has.
    static func snapshotsWritten(_ log: String) -> Int {
        log.matches(of: /snapshot \d+ written/).count
    }

    /// Stocks every cell (acknowledged), so that reservations have names and units from the start,
    /// and defines the workload's channel (as `atp channel set` does).
    private func seedStock(_ server: AtpdProcess, model: inout CrashModel) async throws {
        let client = try await ATPConnection.connect(port: server.port, token: "demo-admin", clientName: "crash-seed")
        var events: [WireEvent] = []
        for sku in 0..<skuCount {
            for location in locations {
                events.append(WireEvent(kind: .receive, sku: "SKU-\(sku)", location: location, quantity: initialUnitsPerCell,
                                        sequence: UInt64(events.count + 1)))
            }
        }
        let reply = try await client.ingest(source: "seed", events: events)
        guard reply.appliedCount == UInt32(events.count) else {
            throw ATPClientError.unexpectedReply("seeding the stock: \(reply)")
        }
        if let channel = workload.channel {
            try await client.setChannel(channel)
            model.channel = channel
        }
        await client.close()
        model.apply(events)
        model.nextSequence["seed"] = UInt64(events.count + 1)
        model.acknowledgedOperations += 1
    }
}

/// From `start` to now on the wall clock (the server's clock: atpd runs on this machine), never
/// empty even if the clock steps back.
func since(_ start: Int64) -> ClosedRange<Int64> {
    let now = wallClockMilliseconds()
    return min(start, now)...max(start, now)
}

/// What the load tasks share: the model, the tallies and the stop flag.
final class LoadShared: Sendable {
    let model: Mutex<CrashModel>
    let tally = Mutex(LoadTally())
    /// Set when the kill has been sent: the load tasks stop.
    let stop = Atomic<Bool>(false)
    /// When the kill was sent (wall clock, milliseconds since 1970).
    let killedAtMilliseconds = Atomic<Int64>(0)
    /// Whether atpd had already exited when the kill was to be sent.
    let exitedBeforeKill = Atomic<Bool>(false)

    init(_ model: CrashModel) {
        self.model = Mutex(model)
    }

    var stopped: Bool { stop.load(ordering: .relaxed) }
}

/// Counts and findings of the load.
struct LoadTally {
    var acknowledged: [OperationKind: Int] = [:]
    var unknown: [OperationKind: Int] = [:]
    var errors: [String] = []
    var violations: [CrashViolation] = []
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
