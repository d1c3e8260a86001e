import ATPClient
import ATPLedger
import ATPProtocol
import Foundation
import Synchronization

/// One kill -9 crash cycle against atpd, and the checks after the restart (docs/DURABILITY.md,
/// "Crash test"). Shared by Tests/ATPDurabilityTests/CrashTests.swift and the `crash-soak` tool.
///
/// A cycle: start (or reuse) atpd on the data directory; `clients` connections send ingest batches
/// and reservations (single- and cross-shard reserve, commit, release) one at a time each, the
/// model recording every acknowledged reply; SIGKILL after a seeded random delay; restart on the
/// same directory; then check the recovered ledger against the model and settle the unknowns.
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
    /// The kill comes after a random delay in this range, in milliseconds.
    public var killDelayMilliseconds: ClosedRange<Int> = 150...1200
    /// Reservation time to live: long enough that nothing expires during a run.
    public var ttlMilliseconds: Int64 = 3_600_000

    /// A soak over `dataDirectory` with atpd at `atpdPath`.
    public init(atpdPath: String, dataDirectory: String) {
        self.atpdPath = atpdPath
        self.dataDirectory = dataDirectory
    }

    /// What one cycle did and found.
    public struct CycleReport: Sendable, CustomStringConvertible {
        /// The cycle's seed.
        public var seed: UInt64
        /// Milliseconds of load before the kill.
        public var killDelayMilliseconds = 0
        /// Operations acknowledged in this cycle, and those left unknown by the kill.
        public var acknowledged = 0
        public var unknown = 0
        /// Of the unknown ones, how many were ingest batches.
        public var unknownBatches = 0
        /// Unknown reservation operations found applied / not applied after the restart.
        public var unknownApplied = 0
        public var unknownAbsent = 0
        /// Events of unacknowledged batches found applied before the resend.
        public var unknownEventsApplied = 0
        /// atpd's recovery line after the restart.
        public var recovery = ""
        /// Every check that failed (empty: the cycle passed).
        public var violations: [String] = []

        /// An empty report for the cycle with `seed`.
        public init(seed: UInt64) {
            self.seed = seed
        }

        public var description: String {
            "seed \(seed): killed after \(killDelayMilliseconds) ms, \(acknowledged) ops acknowledged, \(unknown) unknown "
                + "(\(unknownBatches) ingest batches, \(unknown - unknownBatches) reservation ops; reservation ops applied \(unknownApplied), absent \(unknownAbsent); events applied \(unknownEventsApplied)), "
                + (violations.isEmpty ? "OK" : "\(violations.count) VIOLATIONS: \(violations.prefix(5))")
                + "; recovery: \(recovery)"
        }
    }

    /// Starts atpd on the data directory.
    public func start(extraArguments: [String] = []) throws -> AtpdProcess {
        try AtpdProcess.start(executable: atpdPath,
                              arguments: ["--data-dir", dataDirectory, "--port", "0"] + atpdArguments + extraArguments)
    }

    /// Runs one cycle on `server` (already started on the data directory): load, SIGKILL,
    /// restart, checks. Returns the restarted server (for the next cycle) and the report.
    public func runCycle(seed: UInt64, cycle: Int, server: AtpdProcess, model: inout CrashModel,
                         restartArguments: [String] = []) async throws -> (AtpdProcess, CycleReport) {
        var report = CycleReport(seed: seed)
        var generator = SeededGenerator(seed: seed)
        report.killDelayMilliseconds = Int.random(in: killDelayMilliseconds, using: &generator)
        if model.onHand.isEmpty { try await seedStock(server, model: &model) }
        let shared = SharedModel(model)
        let acknowledgedBefore = model.acknowledgedOperations
        let stop = StopFlag()
        let killDelay = report.killDelayMilliseconds
        let connections = try await (0..<clients).asyncMap { _ in
            try await ATPConnection.connect(port: server.port, token: "demo-admin", clientName: "crash-soak")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, connection) in connections.enumerated() {
                let clientSeed = generator.next()
                group.addTask {
                    await self.load(connection, client: index, cycle: cycle, seed: clientSeed, model: shared, stop: stop)
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(killDelay))
                server.send(SIGKILL)
                stop.value.store(true, ordering: .relaxed)
            }
            try await group.waitForAll()
        }
        server.waitForExit()
        for connection in connections { await connection.close() }
        model = shared.state.withLock { $0 }
        report.acknowledged = model.acknowledgedOperations - acknowledgedBefore
        report.unknownBatches = model.pendingBatches.count
        report.unknown = model.pendingBatches.count + model.reservations.values.filter { $0.pending != nil }.count
        let restarted = try start(extraArguments: restartArguments)
        report.recovery = restarted.log.split(separator: "\n").first { $0.contains("recovered") }.map(String.init) ?? ""
        let client = try await ATPConnection.connect(port: restarted.port, token: "demo-admin", clientName: "crash-check")
        try await check(client, model: &model, report: &report)
        await client.close()
        return (restarted, report)
    }

    // MARK: - Load

    /// Stocks every cell (acknowledged), so that reservations have names and units from the start.
    private func seedStock(_ server: AtpdProcess, model: inout CrashModel) async throws {
        let client = try await ATPConnection.connect(port: server.port, token: "demo-admin", clientName: "crash-seed")
        var events: [WireEvent] = []
        for sku in 0..<skuCount {
            for location in locations {
                events.append(WireEvent(kind: .receive, sku: "SKU-\(sku)", location: location, quantity: 40,
                                        sequence: UInt64(events.count + 1)))
            }
        }
        let reply = try await client.ingest(source: "seed", events: events)
        await client.close()
        guard reply.appliedCount == UInt32(events.count) else {
            throw ATPClientError.unexpectedReply("seeding the stock: \(reply)")
        }
        model.apply(events)
        model.nextSequence["seed"] = UInt64(events.count + 1)
        model.acknowledgedOperations += 1
    }

    private func load(_ connection: ATPConnection, client: Int, cycle: Int, seed: UInt64, model: SharedModel,
                      stop: StopFlag) async {
        var generator = SeededGenerator(seed: seed)
        let source = "feed-\(client)"
        var reservationNumber = 0
        var mine: [String] = []
        while !stop.value.load(ordering: .relaxed) {
            let roll = Int.random(in: 0..<100, using: &generator)
            let succeeded: Bool
            if roll < 40 {
                succeeded = await ingest(connection, source: source, generator: &generator, model: model)
            } else if roll < 75 || mine.isEmpty {
                reservationNumber += 1
                let id = "R-\(cycle)-\(client)-\(reservationNumber)"
                mine.append(id)
                succeeded = await reserve(connection, id: id, generator: &generator, model: model)
            } else {
                let id = mine[Int.random(in: 0..<mine.count, using: &generator)]
                succeeded = await settle(connection, id: id, commit: roll < 88, model: model)
            }
            // A failed request leaves its outcome unknown; the server is gone (or refusing): stop.
            if !succeeded { return }
        }
    }

    private func ingest(_ connection: ATPConnection, source: String, generator: inout SeededGenerator,
                        model: SharedModel) async -> Bool {
        let count = Int.random(in: 1...24, using: &generator)
        let events: [WireEvent] = model.state.withLock { model in
            let first = model.nextSequence[source, default: 1]
            model.nextSequence[source] = first + UInt64(count)
            let events = (0..<count).map { offset in
                WireEvent(kind: .receive, sku: "SKU-\(Int.random(in: 0..<skuCount, using: &generator))",
                          location: locations[Int.random(in: 0..<locations.count, using: &generator)],
                          quantity: Int64.random(in: 1...6, using: &generator), sequence: first + UInt64(offset))
            }
            model.pendingBatches[source] = PendingBatch(source: source, events: events)
            return events
        }
        guard let reply = try? await connection.ingest(source: source, events: events),
              reply.appliedCount == UInt32(count) else { return false }
        model.state.withLock { model in
            model.pendingBatches[source] = nil
            model.apply(events)
            model.acknowledgedOperations += 1
        }
        return true
    }

    private func reserve(_ connection: ATPConnection, id: String, generator: inout SeededGenerator,
                         model: SharedModel) async -> Bool {
        // 1 to 3 lines on distinct SKUs: with several, usually on several shards (cross-shard).
        let lineCount = Int.random(in: 1...3, using: &generator)
        var skus: [Int] = []
        while skus.count < lineCount {
            let sku = Int.random(in: 0..<skuCount, using: &generator)
            if !skus.contains(sku) { skus.append(sku) }
        }
        let lines = skus.map { sku in
            WireReservationLine(sku: "SKU-\(sku)", target: .location(locations[Int.random(in: 0..<locations.count, using: &generator)]),
                                quantity: Int64.random(in: 1...4, using: &generator))
        }
        guard let reservationID = try? ReservationID(id) else { return false }
        let request = WireReserveRequest(id: reservationID, ttlMilliseconds: ttlMilliseconds, mode: .allOrNothing, lines: lines)
        model.state.withLock { $0.reservations[id] = ModelReservation(request: request, state: nil, pending: .reserve) }
        guard let reply = try? await connection.reserve(request) else { return false }
        model.state.withLock { model in
            model.reservations[id]?.state = reply.state
            model.reservations[id]?.lines = reply.lines
            model.reservations[id]?.pending = nil
            model.acknowledgedOperations += 1
        }
        return true
    }

    private func settle(_ connection: ATPConnection, id: String, commit: Bool, model: SharedModel) async -> Bool {
        guard let reservationID = try? ReservationID(id) else { return false }
        let known = model.state.withLock { model -> Bool in
            guard let state = model.reservations[id]?.state, state == .held || (!commit && state == .committed) else { return false }
            model.reservations[id]?.pending = commit ? .commit : .release
            return true
        }
        guard known else { return true }  // nothing to do for this id now: not a failure
        let answer: WireReservationReply?
        if commit {
            answer = try? await connection.commit(reservationID)
        } else {
            answer = try? await connection.release(reservationID)
        }
        guard let reply = answer else { return false }
        model.state.withLock { model in
            model.reservations[id]?.state = reply.state
            model.reservations[id]?.pending = nil
            model.acknowledgedOperations += 1
        }
        return true
    }

    // MARK: - Checks after the restart

    /// Checks the restarted ledger against the model, then settles the unknowns so that the model
    /// is exact again: probes each reservation (a reserve of a known id replays its state; of an
    /// unknown id it starts a new one) and resends each unacknowledged batch (dedup drops what was
    /// applied).
    public func check(_ client: ATPConnection, model: inout CrashModel, report: inout CycleReport) async throws {
        // 1. The cells as recovered, before anything else touches them.
        let before = try await cells(client)
        // 2. Reservations: each in its acknowledged state; each unknown one absent or whole.
        var reserved: [CellKey: Int64] = [:]
        var committed: [CellKey: Int64] = [:]
        let probes = try await probe(client, model.reservations)
        for id in model.reservations.keys.sorted() {
            guard var entry = model.reservations[id], let probe = probes[id] else { continue }
            let existed = probe.replayed
            switch entry.pending {
            case nil:
                if !existed || probe.state != entry.state || probe.lines != entry.lines {
                    report.violations.append("\(id): acknowledged \(entry.state.map { "\($0)" } ?? "?") with \(entry.lines), "
                                             + "found \(existed ? "\(probe.state) with \(probe.lines)" : "nothing")")
                }
            case .reserve:
                if existed {
                    report.unknownApplied += 1
                    let whole = probe.state == .refused
                        || (probe.state == .held && probe.lines.count == entry.request.lines.count
                            && probe.lines.allSatisfy { $0.granted == $0.requested })
                    if !whole { report.violations.append("\(id): unacknowledged reserve found partial: \(probe.state) \(probe.lines)") }
                } else {
                    report.unknownAbsent += 1
                }
            case .commit, .release:
                let after: ReservationState = entry.pending == .commit ? .committed : .released
                if !existed || (probe.state != entry.state && probe.state != after) {
                    report.violations.append("\(id): acknowledged \(entry.state.map { "\($0)" } ?? "?") with an unknown "
                                             + "\(entry.pending.map { "\($0)" } ?? ""), found \(existed ? "\(probe.state)" : "nothing")")
                }
                if probe.state == after { report.unknownApplied += 1 } else { report.unknownAbsent += 1 }
            }
            if existed {
                for (index, line) in probe.lines.enumerated() where index < entry.request.lines.count {
                    for allocation in line.allocations {
                        let key = CellKey(sku: entry.request.lines[index].sku, location: allocation.location)
                        if probe.state == .held { reserved[key, default: 0] += allocation.quantity }
                        if probe.state == .committed { committed[key, default: 0] += allocation.quantity }
                    }
                }
            }
            entry.state = probe.state
            entry.lines = probe.lines
            entry.pending = nil
            model.reservations[id] = entry
        }
        // 3. The buckets hold exactly the units of the reservations that exist, nothing partial.
        for key in Set(before.keys).union(reserved.keys).union(committed.keys) {
            let cell = before[key]
            if Int64(cell?.reserved ?? 0) != reserved[key, default: 0] || Int64(cell?.committed ?? 0) != committed[key, default: 0] {
                report.violations.append("\(key): reserved \(cell?.reserved ?? 0) committed \(cell?.committed ?? 0), "
                                         + "the reservations hold reserved \(reserved[key, default: 0]) committed \(committed[key, default: 0])")
            }
        }
        // 4. onHand: every acknowledged event, plus some of the unacknowledged ones (each at most once).
        var unknownUnits: [CellKey: Int64] = [:]
        for batch in model.pendingBatches.values {
            for event in batch.events { unknownUnits[CellKey(sku: event.sku, location: event.location), default: 0] += event.quantity }
        }
        for key in Set(before.keys).union(model.onHand.keys) {
            let found = Int64(before[key]?.onHand ?? 0)
            let acknowledged = model.onHand[key, default: 0]
            if found < acknowledged || found > acknowledged + unknownUnits[key, default: 0] {
                report.violations.append("\(key): onHand \(found), acknowledged \(acknowledged), unknown up to \(unknownUnits[key, default: 0])")
            }
        }
        // 5. The feed resends what was not acknowledged: dedup drops what was applied, then onHand is exact.
        for batch in model.pendingBatches.values.sorted(by: { $0.source < $1.source }) {
            let reply = try await client.ingest(source: batch.source, events: batch.events)
            report.unknownEventsApplied += Int(reply.duplicateCount)
            if Int(reply.appliedCount + reply.duplicateCount) != batch.events.count || !reply.rejections.isEmpty {
                report.violations.append("resend of \(batch.source): \(reply)")
            }
            model.apply(batch.events)
        }
        model.pendingBatches = [:]
        let after = try await cells(client)
        for key in Set(after.keys).union(model.onHand.keys) where Int64(after[key]?.onHand ?? 0) != model.onHand[key, default: 0] {
            report.violations.append("\(key): onHand \(after[key]?.onHand ?? 0) after the resend, the model says \(model.onHand[key, default: 0])")
        }
    }

    /// A reserve of each id (a replay for a known id), 64 in flight at a time.
    private func probe(_ client: ATPConnection,
                       _ reservations: [String: ModelReservation]) async throws -> [String: WireReservationReply] {
        var replies: [String: WireReservationReply] = [:]
        let ids = reservations.keys.sorted()
        for start in stride(from: 0, to: ids.count, by: 64) {
            try await withThrowingTaskGroup(of: (String, WireReservationReply).self) { group in
                for id in ids[start..<min(start + 64, ids.count)] {
                    guard let request = reservations[id]?.request else { continue }
                    group.addTask { (id, try await client.reserve(request)) }
                }
                for try await (id, reply) in group { replies[id] = reply }
            }
        }
        return replies
    }

    /// Every cell of the catalogue the load uses.
    func cells(_ client: ATPConnection) async throws -> [CellKey: WireCell] {
        let reply = try await client.query((0..<skuCount).map { .sku("SKU-\($0)") }, includeCells: true)
        var cells: [CellKey: WireCell] = [:]
        for (index, answer) in reply.answers.enumerated() {
            for cell in answer.cells where cell.exists { cells[CellKey(sku: "SKU-\(index)", location: cell.location)] = cell }
        }
        return cells
    }
}

/// The model shared by the load tasks.
final class SharedModel: Sendable {
    let state: Mutex<CrashModel>
    init(_ model: CrashModel) { state = Mutex(model) }
}

/// Set when the kill has been sent: the load tasks stop.
final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
