import ATPLedger

/// What one simulation run does. Everything not given is drawn from the seed, so a seed alone
/// replays a run exactly (`atp-sim --seed N`).
public struct SimulationOptions: Sendable, Equatable {
    /// The run's seed.
    public var seed: UInt64
    /// Scheduler steps before the final drain (each step is one request, one core running, one
    /// journal write or sync, one clock move, one fault ...).
    public var steps = 700
    /// Whether crashes and journal faults are injected.
    public var faults = true
    /// A fault planted in the engine under test, to show the checks catch it (tests only).
    public var sabotage: Sabotage?

    /// Faults the simulator can plant to test its own checks.
    public enum Sabotage: Sendable, Equatable {
        /// Every crash also loses the newest stable record of journal 0.
        case loseStableRecords
        /// Recovery makes no repairs.
        case skipRepairs
    }

    /// A run with `seed` and the default size.
    public init(seed: UInt64) {
        self.seed = seed
    }

    /// The command that replays this run.
    public var replayCommand: String {
        "swift run -c release atp-sim --seed \(seed) --steps \(steps)" + (faults ? "" : " --no-faults")
    }
}

/// The engine set-up a seed draws: core and shard counts, durability, retention, the catalogue.
struct SimulationSetup: CustomStringConvertible {
    var configuration: LedgerConfiguration
    var durability: SimulatedJournal.Durability
    /// Whether a crash may lose written but unsynced records (power loss): in `sync` nothing
    /// acknowledged may go; in `interval` acknowledged records may (the checks then stop at
    /// consistency); `none` promises nothing across a power loss (its next start may refuse), so
    /// its runs have none.
    var powerLoss: Bool
    /// Whether the workload syncs often (`interval`) or almost never (`none`).
    var syncsOften: Bool
    /// Whether settled records may be forgotten during the run (short retention, small maximum).
    var forgets: Bool
    var skuCount: Int
    var locationCount: Int
    var sourceCount: Int

    init(seed: UInt64) {
        var random = SplitMix64(seed: seed ^ 0x5EED_5E7_0F_CAFE)
        var configuration = LedgerConfiguration()
        configuration.workerCount = [1, 2, 2, 3, 4].randomElement(using: &random)!
        configuration.shardCount = [4, 8, 8, 16].filter { $0 >= configuration.workerCount }.randomElement(using: &random)!
        configuration.dedupWindowSequences = 1024
        configuration.rejectionLogCapacity = 64
        configuration.initialCellsPerShard = 4
        forgets = random.next(below: 4) == 0
        if forgets {
            configuration.reservationOutcomeRetentionMilliseconds = Int64(random.next(below: 2000))
            configuration.reservationOutcomesRememberedMaxPerShard = 1 + random.next(below: 6)
        }
        self.configuration = configuration
        switch random.next(below: 3) {
        case 0: (durability, syncsOften, powerLoss) = (.sync, true, true)
        case 1: (durability, syncsOften, powerLoss) = (.interval, true, random.next(below: 2) == 0)
        default: (durability, syncsOften, powerLoss) = (.none, false, false)
        }
        skuCount = 3 + random.next(below: 6)
        locationCount = 2 + random.next(below: 3)
        sourceCount = 1 + random.next(below: 3)
    }

    /// Whether a power loss may lose acknowledged work in this set-up (`interval`).
    var powerLossLosesAcknowledged: Bool { powerLoss && durability != .sync }

    var description: String {
        "cores \(configuration.workerCount), shards \(configuration.shardCount), durability \(durability)"
            + (powerLoss ? ", power losses" : "")
            + (forgets ? ", retention \(configuration.reservationOutcomeRetentionMilliseconds) ms / "
                + "\(configuration.reservationOutcomesRememberedMaxPerShard) per shard" : "")
            + ", \(skuCount) SKUs × \(locationCount) locations"
    }
}

/// What a run did and found.
public struct SimulationResult: Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var setup = ""
    public var steps = 0
    public var crashes = 0
    public var powerLosses = 0
    public var syncFailures = 0
    public var snapshots = 0
    /// Requests answered (not with a durability failure), by kind.
    public var acknowledged: [String: Int] = [:]
    /// Requests a crash left unanswered.
    public var unknown = 0
    /// What the recoveries repaired, summed.
    public var recordsForgotten = 0
    public var holdsChanged = 0
    public var orphanHoldsReleased = 0
    /// Every check that failed (empty: the run passed).
    public var violations: [String] = []
    /// A hash of everything the run did, to confirm that a replay followed the same path.
    public var traceHash: UInt64 = 0xCBF2_9CE4_8422_2325
    /// The command that replays the run.
    public var replayCommand = ""

    /// An empty result for `seed`.
    public init(seed: UInt64) {
        self.seed = seed
    }

    /// Adds another run's figures (for totals over many seeds).
    public mutating func add(_ other: SimulationResult) {
        steps += other.steps
        crashes += other.crashes
        powerLosses += other.powerLosses
        syncFailures += other.syncFailures
        snapshots += other.snapshots
        unknown += other.unknown
        recordsForgotten += other.recordsForgotten
        holdsChanged += other.holdsChanged
        orphanHoldsReleased += other.orphanHoldsReleased
        for (kind, count) in other.acknowledged { acknowledged[kind, default: 0] += count }
    }

    /// The figures of a total, one line.
    public var totalsDescription: String {
        let acknowledgedTotal = acknowledged.values.reduce(0, +)
        let faults = "\(crashes) crashes (\(powerLosses) power losses), \(syncFailures) sync failures, \(snapshots) snapshots"
        let repairs = "recoveries forgot \(recordsForgotten) records, changed \(holdsChanged) holds, released "
            + "\(orphanHoldsReleased) orphan holds"
        return "\(steps) steps, \(acknowledgedTotal) acknowledged requests, \(unknown) unknown, \(faults); \(repairs)"
    }

    public var description: String {
        let acknowledgedTotal = acknowledged.values.reduce(0, +)
        return "seed \(seed) [\(setup)]: \(steps) steps, \(acknowledgedTotal) acknowledged, \(unknown) unknown, "
            + "\(crashes) crashes (\(powerLosses) power losses), \(syncFailures) sync failures, \(snapshots) snapshots; "
            + "recovery: \(recordsForgotten) forgotten, \(holdsChanged) holds changed, \(orphanHoldsReleased) orphans; "
            + "trace \(String(traceHash, radix: 16)); "
            + (violations.isEmpty ? "OK" : "\(violations.count) VIOLATIONS:\n  " + violations.prefix(12).joined(separator: "\n  ")
                + "\n  replay: \(replayCommand)")
    }

    mutating func trace(_ values: Int...) {
        for value in values {
            traceHash = (traceHash ^ UInt64(bitPattern: Int64(value))) &* 0x100_0000_01B3
        }
    }
}
