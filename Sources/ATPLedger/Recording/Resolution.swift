/// What recovery's resolution repaired (docs/DURABILITY.md, "Recovery").
public struct ResolutionReport: Sendable, Equatable {
    /// Records forgotten: multi-core reserves a crash cut before every part's prepare was journaled
    /// (never acknowledged), and version-1 reserves in flight.
    public var recordsForgotten = 0
    /// Part holds brought to their home record's state (kept, committed or given back).
    public var holdsChanged = 0
    /// Holds given back that no record accounts for (prepares whose home never decided).
    public var orphanHoldsReleased = 0
    /// Records whose awaited part acknowledgements were settled by recovery.
    public var acknowledgementsCleared = 0
    /// Version-1 records settled (commits or releases in flight rolled forward).
    public var legacyRecordsSettled = 0
    /// Version-1 shard messages that found nothing waiting for them while replaying.
    public var legacyMessagesSkipped = 0
    /// Cores whose channel table was brought up to the newest channel change.
    public var channelTablesRepaired = 0

    /// Nothing repaired.
    public init() {}

    /// Whether anything was repaired.
    public var isEmpty: Bool { self == ResolutionReport() }
}

/// What one core holds after replay, for the resolution.
struct CoreCensus {
    struct RecordFacts {
        var homeShard: Int
        var record: ReservationRecord
    }
    struct HoldFacts {
        var shard: Int
        var id: ReservationID
        var status: HoldStatus
        var origin: HoldOrigin
    }

    var core: Int
    /// The last LSN replayed (the journal's end before recovery appends anything).
    var endLSN: UInt64
    var generation: UInt64
    var generationEnds: [UInt64: UInt64]
    var records: [ReservationID: RecordFacts] = [:]
    var holds: [HoldFacts] = []
    var legacyInFlight: [ReservationID: (homeShard: Int, flight: LegacyReservations.InFlight)] = [:]
    var legacyPartShards: [ReservationID: [Int]] = [:]
    var legacyMessagesSkipped = 0
    var isLegacy = false
    var channelSequence: UInt64
    var channels: [ChannelDefinition]
    /// Set on a placeholder for a core that had work between cores (no census taken).
    var isBusy = false

    /// A placeholder for a core with work between cores.
    static let busy = CoreCensus(core: -1, endLSN: 0, generation: 0, generationEnds: [:], channelSequence: 0,
                                 channels: [], isBusy: true)
}

extension CoreLedger {
    /// This core's census (after replay, before `finishRecovery`).
    func census(endLSN: UInt64) -> CoreCensus {
        var census = CoreCensus(core: index, endLSN: endLSN, generation: generation, generationEnds: generationEnds,
                                channelSequence: channelChangeSequence, channels: channels.all)
        for shard in shards {
            for (id, record) in shard.records { census.records[id] = .init(homeShard: shard.index, record: record) }
            for (id, hold) in shard.holds {
                census.holds.append(.init(shard: shard.index, id: id, status: hold.status, origin: hold.origin))
            }
        }
        if let legacy {
            census.isLegacy = true
            for (id, flight) in legacy.inFlight { census.legacyInFlight[id] = (hashedHomeShardIndex(of: id), flight) }
            census.legacyPartShards = legacy.partShards
            census.legacyMessagesSkipped = legacy.messagesSkipped
        }
        return census
    }

    /// Phase 1 of ending recovery on this core: starts journal generation `nextGeneration` (a number
    /// never used before: the driver draws it at random; the previous generation ended at
    /// `endLSN`), journals and applies the hold repairs, and sets the whole channel table the
    /// resolution found newest (journaled whole, so this core's journal alone rebuilds it even
    /// where its table came from a snapshot). The driver waits until every core's journal is
    /// stable before phase 2.
    func beginFinishingRecovery(endLSN: UInt64, nextGeneration: UInt64, holdRepairs: [RecoveryRepair],
                                channels table: [ChannelDefinition], channelSequence: UInt64,
                                nowMilliseconds now: Int64) {
        _ = recorder?.recordGeneration(nextGeneration, previousEnd: endLSN)
        startGeneration(nextGeneration, previousEnd: endLSN)
        journalAndApply(holdRepairs, nowMilliseconds: now)
        _ = recorder?.recordChannelTable(table, sequence: channelSequence)
        channels.replaceAll(with: table)
        channelChangeSequence = channelSequence
    }

    /// Phase 2: journals and applies the record repairs (once phase 1 is stable on every core).
    func completeRecovery(recordRepairs: [RecoveryRepair], nowMilliseconds now: Int64) {
        journalAndApply(recordRepairs, nowMilliseconds: now)
    }

    private func journalAndApply(_ repairs: [RecoveryRepair], nowMilliseconds now: Int64) {
        guard !repairs.isEmpty else { return }
        _ = recorder?.recordRepairs(repairs, nowMilliseconds: now)
        for repair in repairs { apply(repair, nowMilliseconds: now) }
    }
}

/// Decides, from every core's census after replay, the repairs that make each reservation's record
/// and holds agree on every core. The rules (docs/DURABILITY.md, "Recovery"):
///
/// - A multi-core record one of whose parts' prepare records the crash cut off (the part's journal
///   ends before it) was never acknowledged, nor any operation on it: the record is forgotten and
///   every hold of it given back.
/// - Otherwise every part's holds are brought to the record's state (a part hears of a decision,
///   commit, release or expiry only after the home journaled it, so parts are never ahead of the
///   record): tentative → held, → committed, or given back.
/// - A hold no record accounts for is given back unless committed (a forgotten committed
///   reservation's units stay, shippable by its id): prepares whose home never decided.
/// - Version-1 records are settled by version 1's own rules.
/// - Channel tables follow the newest channel change any core journaled (one table per sequence:
///   cores apply changes in one order).
///
/// The same censuses always give the same repairs, so a crash during recovery repeats them.
///
/// Repairs come in two phases: first every hold change (on the part cores), then — once those are
/// stable — the record changes at home (forgetting a record, settling it, clearing awaited
/// acknowledgements). A record is the evidence its holds are judged by, so it may only go once
/// the holds it accounts for have gone: a crash between the phases repeats the same decision.
struct Resolution {
    /// Hold changes, per core (phase 1).
    var holdRepairsByCore: [[RecoveryRepair]]
    /// Record changes, per core (phase 2, after the hold changes are stable).
    var recordRepairsByCore: [[RecoveryRepair]]
    /// Every repair, per core, phase 1 first.
    var repairsByCore: [[RecoveryRepair]] { zip(holdRepairsByCore, recordRepairsByCore).map { $0 + $1 } }
    var channelSequence: UInt64
    var channels: [ChannelDefinition]
    var report = ResolutionReport()

    private let censuses: [CoreCensus]
    private let shardCount: Int
    private let nowMilliseconds: Int64
    /// (core, shard, id) of holds a record accounts for.
    private var matched = Set<HoldKey>()
    private var holdsByID: [ReservationID: [(core: Int, facts: CoreCensus.HoldFacts)]] = [:]

    private struct HoldKey: Hashable {
        var core: Int
        var shard: Int
        var id: ReservationID
    }

    init(_ censuses: [CoreCensus], shardCount: Int, nowMilliseconds: Int64) {
        self.censuses = censuses
        self.shardCount = shardCount
        self.nowMilliseconds = nowMilliseconds
        holdRepairsByCore = Array(repeating: [], count: censuses.count)
        recordRepairsByCore = Array(repeating: [], count: censuses.count)
        channelSequence = 0
        channels = []
        for census in censuses {
            for hold in census.holds { holdsByID[hold.id, default: []].append((census.core, hold)) }
            report.legacyMessagesSkipped += census.legacyMessagesSkipped
        }
        for census in censuses {
            for (id, facts) in census.records.sorted(by: { $0.key < $1.key }) {
                if census.isLegacy {
                    resolveLegacy(id, facts, census: census)
                } else {
                    resolve(id, facts, home: census.core)
                }
            }
            // A version-1 reserve in flight (or giving back an all-or-nothing refusal) was never
            // answered: it has no record, and its holds are orphans, given back below.
            report.recordsForgotten += census.legacyInFlight.keys.count { census.records[$0] == nil }
        }
        releaseOrphans()
        planChannels()
    }

    private var coreCount: Int { censuses.count }
    private func coreIndex(ofShard shard: Int) -> Int { shard % coreCount }

    private func holds(of id: ReservationID, onCore core: Int, origin: HoldOrigin? = nil) -> [CoreCensus.HoldFacts] {
        (holdsByID[id] ?? []).filter { $0.core == core && (origin == nil || $0.facts.origin == origin) }.map(\.facts)
    }

    private mutating func add(_ repair: RecoveryRepair, onCore core: Int) {
        if case .changeHolds = repair {
            holdRepairsByCore[core].append(repair)
        } else {
            recordRepairsByCore[core].append(repair)
        }
    }

    private mutating func markMatched(_ holds: [CoreCensus.HoldFacts], core: Int) {
        for hold in holds { matched.insert(HoldKey(core: core, shard: hold.shard, id: hold.id)) }
    }

    /// Whether a part's prepare record was cut off by the crash (never journaled for good).
    private func isLost(_ part: PartReference) -> Bool {
        guard part.origin.prepareLSN > 0, part.core < censuses.count else { return false }
        let census = censuses[part.core]
        if part.origin.generation == census.generation { return part.origin.prepareLSN > census.endLSN }
        if let end = census.generationEnds[part.origin.generation] { return part.origin.prepareLSN > end }
        // A generation the part does not know: the record that started it was lost, and so was
        // everything journaled in it.
        return true
    }

    // MARK: - Current records

    private mutating func resolve(_ id: ReservationID, _ facts: CoreCensus.RecordFacts, home: Int) {
        let record = facts.record
        markMatched(holds(of: id, onCore: home, origin: .local), core: home)
        guard !record.parts.isEmpty else { return }
        if record.parts.contains(where: isLost) {
            add(.forgetRecord(homeShard: facts.homeShard, id: id), onCore: home)
            report.recordsForgotten += 1
            for part in record.parts {
                let partHolds = holds(of: id, onCore: part.core, origin: part.origin)
                markMatched(partHolds, core: part.core)
                if !partHolds.isEmpty {
                    add(.changeHolds(id: id, origin: part.origin, change: .release, shards: partHolds.map(\.shard)),
                        onCore: part.core)
                    report.holdsChanged += partHolds.count
                }
            }
            return
        }
        for part in record.parts {
            let partHolds = holds(of: id, onCore: part.core, origin: part.origin)
            markMatched(partHolds, core: part.core)
            let change: HoldChange
            let needing: [CoreCensus.HoldFacts]
            switch record.state {
            case .held:
                change = .keep
                needing = partHolds.filter { $0.status == .tentative }
            case .committed:
                change = .commit
                needing = partHolds.filter { $0.status != .committed }
            case .released, .expired, .refused:
                change = .release
                needing = partHolds
            }
            if !needing.isEmpty {
                add(.changeHolds(id: id, origin: part.origin, change: change, shards: needing.map(\.shard)), onCore: part.core)
                report.holdsChanged += needing.count
            }
        }
        if record.acknowledgementsAwaited > 0 {
            add(.clearAcknowledgements(homeShard: facts.homeShard, id: id), onCore: home)
            report.acknowledgementsCleared += 1
        }
    }

    /// Gives back every reserved or tentative hold no record accounted for.
    private mutating func releaseOrphans() {
        for (id, entries) in holdsByID.sorted(by: { $0.key < $1.key }) {
            var byCoreAndOrigin: [Int: [HoldOrigin: [Int]]] = [:]
            for (core, hold) in entries where hold.status != .committed
                && !matched.contains(HoldKey(core: core, shard: hold.shard, id: id)) {
                byCoreAndOrigin[core, default: [:]][hold.origin, default: []].append(hold.shard)
            }
            for (core, origins) in byCoreAndOrigin.sorted(by: { $0.key < $1.key }) {
                for (origin, shards) in origins.sorted(by: { $0.key.prepareLSN < $1.key.prepareLSN }) {
                    add(.changeHolds(id: id, origin: origin, change: .release, shards: shards.sorted()), onCore: core)
                    report.orphanHoldsReleased += shards.count
                }
            }
        }
    }

    // MARK: - Version-1 records

    /// Settles a version-1 record by version 1's rules (its parts are set from its part shards).
    private mutating func resolveLegacy(_ id: ReservationID, _ facts: CoreCensus.RecordFacts, census: CoreCensus) {
        let home = census.core
        let record = facts.record
        let partShards = census.legacyInFlight[id]?.flight.partShards ?? census.legacyPartShards[id] ?? []
        let all = (holdsByID[id] ?? [])
        let inParts = all.filter { partShards.contains($0.facts.shard) }
        var state = record.state
        if let flight = census.legacyInFlight[id]?.flight {
            switch flight.phase {
            case .committing: state = .committed
            case .releasing(let settleAs): state = settleAs == .released ? .released : record.state
            case .reserving: break
            }
        } else if record.state == .held {
            if inParts.contains(where: { $0.facts.status == .committed }) {
                state = .committed
            } else if Set(inParts.map(\.facts.shard)) != Set(partShards) {
                // A part lost its hold (its release ran ahead of the home's journal): give the rest
                // back, and remember the reservation as ended rather than forget it.
                state = record.expiresAtMilliseconds <= nowMilliseconds ? .expired : .released
            }
        }
        if state != record.state {
            add(.settleRecord(homeShard: facts.homeShard, id: id, state: state), onCore: home)
            report.legacyRecordsSettled += 1
        }
        for (core, hold) in all {
            matched.insert(HoldKey(core: core, shard: hold.shard, id: id))
            let inPart = partShards.contains(hold.shard)
            let change: HoldChange?
            switch state {
            case .held: change = inPart ? nil : (hold.status == .committed ? nil : .release)
            case .committed: change = inPart ? (hold.status == .committed ? nil : .commit) : (hold.status == .committed ? nil : .release)
            case .released: change = inPart || hold.status != .committed ? .release : nil
            case .expired, .refused: change = hold.status == .committed ? nil : .release
            }
            // `settleRecord` changes the home's own holds first; a change repeated here is a no-op.
            if let change {
                add(.changeHolds(id: id, origin: hold.origin, change: change, shards: [hold.shard]), onCore: core)
                report.holdsChanged += 1
            }
        }
    }

    // MARK: - Channels

    /// The channel table of the core with the newest change is the truth; every core is set to it.
    private mutating func planChannels() {
        guard let newest = censuses.max(by: { $0.channelSequence < $1.channelSequence }) else { return }
        channelSequence = newest.channelSequence
        channels = newest.channels
        report.channelTablesRepaired = censuses.count { $0.channels != newest.channels }
    }
}
