#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPLedger

/// The deterministic simulator (docs/SIMULATOR.md): a seeded scheduler drives every core of a
/// ledger on one thread (`SimulatedCluster`) through a random workload — every event kind,
/// multi-line reservations across cores, short ttls, commits and releases racing expiry, retries
/// of the same id, channel changes, snapshots — while it writes, syncs and fails journals, moves
/// the clock, and crashes the process or the power. After every step it checks the engine's
/// invariants; after every recovery, and at the end, everything the clients were told against
/// what the engine holds (`SimulationModel`), and that recovery from the snapshot and from the
/// journals alone agree. The same seed replays the same run.
public enum Simulation {
    /// Runs one seed. Never throws: what failed is in `violations`, with the replay command.
    public static func run(_ options: SimulationOptions) -> SimulationResult {
        let runner = SimulationRunner(options)
        runner.run()
        return runner.result
    }
}

final class SimulationRunner {
    let options: SimulationOptions
    let setup: SimulationSetup
    var random: SplitMix64
    var cluster: SimulatedCluster
    var model: SimulationModel
    var result: SimulationResult
    var skus: [SKUID] = []
    var locations: [LocationID] = []
    var sources: [SourceID] = []
    var channelIDs: [ChannelID] = []
    var reservationNumber = 0
    /// Steps left before the restart that follows a journal failure.
    var restartAfterFailure: Int?
    /// Whether a power loss since the last check may have taken acknowledged work.
    var acknowledgedMayBeLost = false
    /// Reservations a shipment against them is in flight for (no commit or release meanwhile).
    var shipping = Set<ReservationID>()
    /// With ATP_SIM_TRACE set, every step is printed (to follow a failing seed).
    let tracing = getenv("ATP_SIM_TRACE") != nil

    func log(_ text: @autoclosure () -> String) {
        if tracing { print("[\(result.steps) t=\(cluster.nowMilliseconds % 1_000_000)] \(text())") }
    }

    init(_ options: SimulationOptions) {
        self.options = options
        setup = SimulationSetup(seed: options.seed)
        random = SplitMix64(seed: options.seed)
        do {
            cluster = try SimulatedCluster(configuration: setup.configuration, durability: setup.durability,
                                           startMilliseconds: 1_700_000_000_000, seed: options.seed)
        } catch {
            preconditionFailure("simulation set-up: \(error)")
        }
        model = SimulationModel(coreCount: setup.configuration.workerCount, sourceCount: setup.sourceCount)
        result = SimulationResult(seed: options.seed)
        result.setup = setup.description
        result.replayCommand = options.replayCommand
        internNames()
        if tracing { cluster.trace = { [unowned self] in log("  engine: \($0)") } }
        switch options.sabotage {
        case .loseStableRecords?: cluster.sabotage = .loseStableRecords
        case .skipRepairs?: cluster.sabotage = .skipRepairs
        case nil: break
        }
        cluster.onEventsApplied = { [unowned self] core, batch, indices in
            log("core \(core) applies batch \(batch) \(indices)")
            model.appliedParts[core].append(.init(batch: batch, indices: indices))
        }
    }

    func run() {
        stockEveryCell()
        for _ in 0..<options.steps {
            step()
            result.steps += 1
            if !result.violations.isEmpty { return }
        }
        drain()
        // A failed journal leaves parts of reservations behind until the restart that must follow it.
        if !cluster.journals.contains(where: { $0.failure != nil }) {
            check(after: "the end")
            if result.violations.isEmpty, !cluster.disagreements().isEmpty {
                violation("records and holds disagree at rest: \(cluster.disagreements().prefix(4))")
            }
        }
        guard result.violations.isEmpty, options.faults || cluster.journals.contains(where: { $0.failure != nil }) else { return }
        // One more crash at rest: a clean restart must find everything.
        crash(.process)
        check(after: "the final restart")
    }

    // MARK: - Names

    private func internNames() {
        do {
            skus = try (0..<setup.skuCount).map { try cluster.catalog.sku("S\($0)") }
            locations = try (0..<setup.locationCount).map { try cluster.catalog.location("L\($0)") }
            sources = try (0..<setup.sourceCount).map { try cluster.catalog.source("feed-\($0)") }
            channelIDs = try ["web", "mkt"].map { try cluster.catalog.channel($0) }
        } catch {
            preconditionFailure("simulation names: \(error)")
        }
    }

    /// Recovery rebuilds the catalog from snapshot and journals; names the journals never used
    /// are interned again in the same order, so every id means the same.
    private func reinternNames() {
        let before = (skus, locations, sources, channelIDs)
        internNames()
        if before.0 != skus || before.1 != locations || before.2 != sources || before.3 != channelIDs {
            violation("names have other ids after recovery")
        }
    }

    // MARK: - The schedule

    private func step() {
        if let left = restartAfterFailure {
            if left == 0 {
                restartAfterFailure = nil
                crash(.process)
                return
            }
            restartAfterFailure = left - 1
        }
        let roll = random.next(below: 1000)
        switch roll {
        case 0..<300: request()
        case 300..<640: runCore()
        case 640..<760: write()
        case 760..<800: if setup.syncsOften || roll < 765 { sync() } else { write() }
        case 800..<860: advanceClock()
        case 860..<900: expire()
        case 900..<910: snapshot()
        case 910..<950: cutSnapshot()
        case 950..<993: runCore()
        case 993..<996: if options.faults { failSync() } else { runCore() }
        default:
            if options.faults {
                let power = setup.powerLoss && random.next(below: 3) == 0
                crash(power ? .power(keepingUnsynced: random.next(below: 4)) : .process)
            } else {
                runCore()
            }
        }
        if result.violations.isEmpty {
            let disagreements = cluster.disagreements()
            if !disagreements.isEmpty {
                violation("records and holds disagree with nothing between cores: \(disagreements.prefix(4))")
            }
        }
    }

    private func runCore() {
        let runnable = cluster.runnableCores
        guard !runnable.isEmpty else { return write() }
        let core = runnable[random.next(below: runnable.count)]
        result.trace(1, core)
        log("run core \(core)")
        cluster.run(core: core)
    }

    private func write() {
        let journal = random.next(below: cluster.coreCount)
        let records = 1 + random.next(below: 4)
        result.trace(2, journal, records)
        let snapshotsBefore = cluster.snapshots.count
        defer { if cluster.snapshots.count > snapshotsBefore { result.snapshots += 1; log("snapshot written") } }
        log("write journal \(journal) +\(records) (appended \(cluster.journals[journal].lastAppendedLSN), written \(cluster.journals[journal].writtenLSN))")
        cluster.write(journal: journal, records: records)
        // In `interval`/`none` a write is what makes records durable; syncs follow on their own.
        if setup.durability == .interval && random.next(below: 4) == 0 {
            cluster.sync(journal: journal)
        }
    }

    private func sync() {
        let journal = random.next(below: cluster.coreCount)
        result.trace(3, journal)
        let snapshotsBefore = cluster.snapshots.count
        defer { if cluster.snapshots.count > snapshotsBefore { result.snapshots += 1; log("snapshot written") } }
        log("sync journal \(journal) at \(cluster.journals[journal].writtenLSN)")
        cluster.sync(journal: journal)
    }

    private func failSync() {
        let journal = random.next(below: cluster.coreCount)
        result.trace(4, journal)
        log("sync of journal \(journal) FAILS")
        result.syncFailures += 1
        cluster.write(journal: journal, records: random.next(below: 3))
        cluster.sync(journal: journal, failing: true)
        if restartAfterFailure == nil { restartAfterFailure = 5 + random.next(below: 30) }
    }

    private func advanceClock() {
        let milliseconds = Int64(1 + random.next(below: random.next(below: 8) == 0 ? 3000 : 300))
        result.trace(5, Int(milliseconds))
        cluster.advanceClock(byMilliseconds: milliseconds)
    }

    private func expire() {
        let core = random.next(below: cluster.coreCount)
        result.trace(6, core)
        cluster.expire(core: core)
    }

    private func snapshot() {
        result.trace(7)
        log("begin snapshot")
        cluster.beginSnapshot()
    }

    private func cutSnapshot() {
        let cores = cluster.snapshotCoresToCut
        guard !cores.isEmpty else { return runCore() }
        let core = cores[random.next(below: cores.count)]
        result.trace(8, core)
        if cluster.isCopyingSnapshot(core: core) {
            log("copy a snapshot shard at core \(core)")
        } else {
            log("cut snapshot at core \(core) (mark \(cluster.journals[core].lastAppendedLSN))")
        }
        cluster.advanceSnapshotCut(core: core)
    }

    /// Runs everything queued and makes every journal durable, until nothing is left to do.
    func drain() {
        var rounds = 0
        while !cluster.isQuiescent || cluster.journals.contains(where: { $0.syncedLSN < $0.lastAppendedLSN && $0.failure == nil }) {
            for core in cluster.runnableCores { cluster.run(core: core) }
            for journal in 0..<cluster.coreCount {
                cluster.write(journal: journal, records: Int.max / 2)
                cluster.sync(journal: journal)
            }
            rounds += 1
            if rounds > 10_000 {
                violation("the cluster does not come to rest (waits \(cluster.isQuiescent))")
                return
            }
            if cluster.journals.contains(where: { $0.failure != nil }) && cluster.runnableCores.isEmpty { break }
        }
    }

    // MARK: - Crashes

    func crash(_ kind: SimulatedCluster.Crash) {
        result.crashes += 1
        if case .power = kind {
            result.powerLosses += 1
            if setup.powerLossLosesAcknowledged { acknowledgedMayBeLost = true }
        }
        let lost = cluster.crash(kind)
        log("CRASH \(kind): records lost per journal \(lost)")
        result.trace(9, lost.reduce(0, +))
        result.unknown += model.crashed()
        shipping.removeAll()
        restartAfterFailure = nil
        let journalOnly: LedgerImage
        let fromSnapshot: LedgerImage?
        do {
            journalOnly = try cluster.recoveredImage(fromSnapshot: false)
            fromSnapshot = cluster.snapshots.isEmpty ? nil : try cluster.recoveredImage(fromSnapshot: true)
        } catch {
            return violation("recovery refused to start: \(error)")
        }
        if let fromSnapshot, let difference = ImageComparison.difference(fromSnapshot, journalOnly) {
            violation("recovery from the snapshot and from the journals alone differ: \(difference)")
        }
        do {
            let report = try cluster.recover()
            log("recovered: \(report)")
            for (core, repairs) in cluster.lastRepairs.enumerated() where !repairs.isEmpty { log("  core \(core) repairs: \(repairs)") }
            result.recordsForgotten += report.recordsForgotten
            result.holdsChanged += report.holdsChanged
            result.orphanHoldsReleased += report.orphanHoldsReleased
        } catch {
            return violation("recovery refused to start: \(error)")
        }
        if let difference = ImageComparison.difference(cluster.captureImage(), journalOnly) {
            violation("the recovered engine differs from recovery from the journals alone: \(difference)")
        }
        reinternNames()
        check(after: "recovery \(cluster.recoveries)")
        acknowledgedMayBeLost = false
        // A crash while recovering (its repairs not yet durable) now and then: recovery again.
        if options.faults && random.next(below: 8) == 0 {
            cluster.write(journal: random.next(below: cluster.coreCount), records: random.next(below: 3))
            result.trace(10)
            crash(.process)
        }
    }

    func violation(_ text: String) {
        result.violations.append("step \(result.steps): \(text)")
    }
}
