import ATPLedger
import Testing

/// A `SimulatedCluster` driven by hand for the named regression scenarios: two cores, a few SKUs
/// whose shards sit on different cores, blocking helpers that run the cores until an answer comes.
final class ScenarioCluster {
    let cluster: SimulatedCluster
    var skus: [SKUID] = []
    let location: LocationID
    let source: SourceID
    var sequence: UInt64 = 0

    init(durability: SimulatedJournal.Durability = .sync, cores: Int = 2,
         configure: (inout LedgerConfiguration) -> Void = { _ in }) throws {
        var configuration = LedgerConfiguration()
        configuration.workerCount = cores
        configuration.shardCount = 4
        configuration.dedupWindowSequences = 1024
        configure(&configuration)
        cluster = try SimulatedCluster(configuration: configuration, durability: durability,
                                       startMilliseconds: 1_700_000_000_000, seed: 11)
        location = try cluster.catalog.location("L0")
        source = try cluster.catalog.source("feed")
        for index in 0..<8 { skus.append(try cluster.catalog.sku("S\(index)")) }
        settle()
    }

    /// A SKU whose shard is on `core`, the `nth` such.
    func sku(onCore core: Int, _ nth: Int = 0) -> SKUID {
        skus.filter { cluster.coreIndex(ofShard: cluster.shardIndex(of: $0)) == core }[nth]
    }

    /// Runs every core and makes every journal durable and stable until nothing is left to do.
    func settle() {
        for _ in 0..<1000 {
            for core in cluster.runnableCores { cluster.run(core: core) }
            for journal in 0..<cluster.coreCount {
                cluster.write(journal: journal, records: .max / 2)
                cluster.sync(journal: journal)
            }
            if cluster.isQuiescent { return }
        }
        Issue.record("the cluster did not come to rest")
    }

    /// Receives `units` into every SKU at the location and waits for the answer.
    func stock(_ units: Int64) {
        var answered = false
        let events = skus.map { sku -> StockEvent in
            sequence += 1
            return StockEvent(kind: .receive, sku: sku, location: location, quantity: units, source: source,
                              sequence: sequence)
        }
        cluster.submit(EventBatch(events: events), tag: 0) { _ in answered = true }
        settle()
        #expect(answered)
    }

    /// A reservation of `units` of each SKU at the location, homed at the first SKU's shard.
    func request(_ id: ReservationID, _ skus: [SKUID], units: Int64 = 2, ttl: Int64 = 600_000) -> ReserveRequest {
        ReserveRequest(id: id, lines: skus.map { ReservationLine(sku: $0, target: .location(location), quantity: units) },
                       ttlMilliseconds: ttl, mode: .allOrNothing)
    }

    /// Sends an operation; the answer, once it comes, is in the box.
    func send(_ operation: String, _ request: ReserveRequest) -> AnswerBox {
        let box = AnswerBox()
        switch operation {
        case "reserve": cluster.reserve(request) { box.reply = $0 }
        case "commit": cluster.commit(request.id) { box.reply = $0 }
        default: cluster.release(request.id) { box.reply = $0 }
        }
        return box
    }

    /// Sends and waits for the answer.
    @discardableResult
    func perform(_ operation: String, _ request: ReserveRequest) -> ReservationReply? {
        let box = send(operation, request)
        settle()
        return box.reply
    }

    /// Runs the cores (no journal writes) until nothing is queued.
    func runCores() {
        while let core = cluster.runnableCores.first { cluster.run(core: core) }
    }

    /// Crashes, checks that recovery from the journals alone and from the snapshot agree, recovers,
    /// then checks the engine's invariants and that records and holds agree.
    @discardableResult
    func crashAndRecover(_ crash: SimulatedCluster.Crash = .process) throws -> ResolutionReport {
        cluster.crash(crash)
        let journalOnly = try cluster.recoveredImage(fromSnapshot: false)
        if !cluster.snapshots.isEmpty {
            let fromSnapshot = try cluster.recoveredImage(fromSnapshot: true)
            #expect(describe(fromSnapshot) == describe(journalOnly), "snapshot + journal and journal alone differ")
        }
        let report = try cluster.recover()
        #expect(describe(cluster.captureImage()) == describe(journalOnly), "recovery differs from journal-only")
        settle()
        #expect(cluster.disagreements().isEmpty, "records and holds disagree: \(cluster.disagreements())")
        return report
    }

    /// The record of `id` as the engine holds it.
    func record(_ id: ReservationID) -> ReservationImage? {
        cluster.captureImage().reservations.first { $0.id == id }
    }

    /// reserved and committed of (sku, location).
    func buckets(_ sku: SKUID) -> (reserved: Int32, committed: Int32) {
        var result: (Int32, Int32) = (0, 0)
        cluster.captureImage().forEachCell { cell in
            if cell.sku == sku && cell.location == location { result = (cell.reserved, cell.committed) }
        }
        return result
    }

    func describe(_ image: LedgerImage) -> [String] {
        var lines: [String] = []
        image.forEachCell { lines.append("\($0) r\($0.reserved) c\($0.committed) v\($0.version)") }
        lines += image.reservations.map { "\($0)" }.sorted()
        lines += image.holds.map { "\($0)" }.sorted()
        lines += image.dedupWindows.map { "\($0)" }.sorted()
        lines += image.channels.map { "\($0)" }.sorted()
        return lines
    }
}

/// Where an answer lands.
final class AnswerBox {
    var reply: ReservationReply?
}

/// The finest steps a run can take after a request: run every core once, or hand one record of a
/// journal to the OS, or sync a journal. A crash can come between any two.
enum FineStep: CustomStringConvertible {
    case runCores
    case write(journal: Int)
    case sync(journal: Int)

    var description: String {
        switch self {
        case .runCores: "run the cores"
        case .write(let journal): "write one record of journal \(journal)"
        case .sync(let journal): "sync journal \(journal)"
        }
    }
}

extension ScenarioCluster {
    /// The fine steps that bring the cluster to rest from where it is, in one canonical order
    /// (cores first, then each journal one record at a time and a sync), performing them.
    func stepsToRest() -> [FineStep] {
        var steps: [FineStep] = []
        for _ in 0..<1000 {
            if !cluster.runnableCores.isEmpty {
                runCores()
                steps.append(.runCores)
                continue
            }
            var moved = false
            for journal in 0..<cluster.coreCount {
                while cluster.journals[journal].writtenLSN < cluster.journals[journal].lastAppendedLSN {
                    cluster.write(journal: journal, records: 1)
                    steps.append(.write(journal: journal))
                    moved = true
                }
                if cluster.journals[journal].syncedLSN < cluster.journals[journal].writtenLSN {
                    cluster.sync(journal: journal)
                    steps.append(.sync(journal: journal))
                    moved = true
                }
            }
            if !moved && cluster.runnableCores.isEmpty { break }
        }
        return steps
    }

    func perform(_ step: FineStep) {
        switch step {
        case .runCores: runCores()
        case .write(let journal): cluster.write(journal: journal, records: 1)
        case .sync(let journal): cluster.sync(journal: journal)
        }
    }
}

/// Builds a scenario afresh, starts an operation with `start`, and crashes after every fine step
/// the operation takes to come to rest (before the first, after the last, and every one between),
/// then recovers and runs `check` with how many steps ran. Every crash point, every record boundary.
func forEveryCrashPoint(_ name: String, crash: SimulatedCluster.Crash = .process,
                       build: () throws -> ScenarioCluster, start: (ScenarioCluster) -> Void,
                       check: (ScenarioCluster, Int) throws -> Void) throws {
    let probe = try build()
    start(probe)
    let steps = probe.stepsToRest()
    #expect(!steps.isEmpty, "\(name): the operation takes no step")
    for crashAfter in 0...steps.count {
        let scenario = try build()
        start(scenario)
        for step in steps.prefix(crashAfter) { scenario.perform(step) }
        do {
            try scenario.crashAndRecover(crash)
        } catch {
            Issue.record("\(name), crash after \(crashAfter) of \(steps.count) steps: recovery refused: \(error)")
            continue
        }
        try check(scenario, crashAfter)
    }
}
