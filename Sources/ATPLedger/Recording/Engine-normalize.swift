import Synchronization

/// What recovery's normalisation pass repaired.
public struct NormalizationReport: Sendable, Equatable {
    /// Home records forgotten: reserves that were never answered (their holds given back).
    public var recordsForgotten = 0
    /// Home records settled: a commit or release seen at a part shard rolled forward.
    public var recordsRolledForward = 0
    /// Holds given back (of forgotten or released reservations, or without any record).
    public var holdsReleased = 0
    /// Holds turned committed (a commit rolled forward).
    public var holdsCommitted = 0
    /// Workers whose channel table was brought up to the newest channel change.
    public var channelTablesRepaired = 0

    /// Nothing repaired.
    public init() {}

    /// Whether anything was repaired.
    public var isEmpty: Bool { self == NormalizationReport() }
}

/// One home record's state, as the normalisation pass sees it.
private struct RecordFacts {
    var home: Int
    var phase: ReservationRecord.Phase
    var settleAs: ReservationState
    var partShards: [Int]
}

/// What one worker holds, for the normalisation pass.
private struct WorkerCensus: @unchecked Sendable {
    var records: [ReservationID: RecordFacts] = [:]
    var holds: [(shard: Int, id: ReservationID, isCommitted: Bool)] = []
    var channelSequence: UInt64 = 0
    var channels: [ChannelDefinition] = []
}

extension Engine {
    /// After `replayInputs`, repairs what a crash left half-done between shards, once, across all
    /// shards (each repair is recorded when logs are attached, so a later replay repeats it):
    /// - a home record still reserving, or `held` while a part it counts on has no hold, was never
    ///   answered: it is forgotten and its reserved holds are given back;
    /// - a commit or release seen at a part but not finished at home is rolled forward;
    /// - reserved holds without a held or committed home record are given back;
    /// - workers' channel tables are brought to the newest channel change any of them recorded.
    /// Blocks the caller; run it before serving.
    public func normalizeAfterReplay() -> NormalizationReport {
        let censuses = Mutex<[Int: WorkerCensus]>([:])
        onEveryWorker { worker in
            var census = WorkerCensus()
            for shard in worker.shards {
                for (id, record) in shard.records {
                    census.records[id] = RecordFacts(home: shard.index, phase: record.phase, settleAs: record.settleAs,
                                                     partShards: record.partShards)
                }
                for (id, hold) in shard.holds { census.holds.append((shard.index, id, hold.isCommitted)) }
            }
            census.channelSequence = worker.channelChangeSequence
            census.channels = worker.channels.all
            censuses.withLock { $0[worker.index] = census }
        }
        let all = censuses.withLock { $0 }.sorted { $0.key < $1.key }.map(\.value)
        var report = NormalizationReport()
        let repairs = Self.plan(all, report: &report)
        let channelPlan = channelRepairs(all, report: &report)
        let workerCount = configuration.workerCount
        onEveryWorker { worker in
            let now = worker.core.clock.nowMilliseconds()
            for repair in repairs where repair.shard % workerCount == worker.index {
                _ = worker.recorder?.recordRepair(repair, nowMilliseconds: now)
                worker.shard(repair.shard).apply(repair, nowMilliseconds: now)
            }
            for change in channelPlan.changes[worker.index] {
                switch change {
                case .define(let definition):
                    _ = worker.recorder?.recordChannelDefine(definition, sequence: channelPlan.sequence)
                    worker.channels.set(definition)
                case .remove(let id):
                    _ = worker.recorder?.recordChannelRemove(id, sequence: channelPlan.sequence)
                    worker.channels.remove(id)
                }
            }
            worker.channelChangeSequence = channelPlan.sequence
        }
        core.channelDefinitions.withLock { definitions in
            definitions = [:]
            for definition in channelPlan.authoritative { definitions[definition.id] = definition }
        }
        core.channelChangeSequence.store(channelPlan.sequence, ordering: .releasing)
        core.reservationsInFlight.store(0, ordering: .releasing)
        return report
    }

    private enum ChannelChange {
        case define(ChannelDefinition)
        case remove(ChannelID)
    }

    /// The channel table of the worker with the newest change is the truth; the others follow it.
    private func channelRepairs(_ all: [WorkerCensus], report: inout NormalizationReport)
        -> (sequence: UInt64, authoritative: [ChannelDefinition], changes: [[ChannelChange]])
    {
        guard let newest = all.max(by: { $0.channelSequence < $1.channelSequence }) else { return (0, [], []) }
        let truth = Dictionary(uniqueKeysWithValues: newest.channels.map { ($0.id, $0) })
        var changes: [[ChannelChange]] = []
        for census in all {
            let mine = Dictionary(uniqueKeysWithValues: census.channels.map { ($0.id, $0) })
            var list: [ChannelChange] = []
            for definition in newest.channels where mine[definition.id] != definition { list.append(.define(definition)) }
            for definition in census.channels where truth[definition.id] == nil { list.append(.remove(definition.id)) }
            if !list.isEmpty { report.channelTablesRepaired += 1 }
            changes.append(list)
        }
        return (newest.channelSequence, newest.channels, changes)
    }

    /// The repairs, decided from every worker's records and holds (see `normalizeAfterReplay`).
    private static func plan(_ all: [WorkerCensus], report: inout NormalizationReport) -> [ReservationRepair] {
        var holdsByID: [ReservationID: [(shard: Int, isCommitted: Bool)]] = [:]
        for census in all { for hold in census.holds { holdsByID[hold.id, default: []].append((hold.shard, hold.isCommitted)) } }
        var repairs: [ReservationRepair] = []
        var recordIDs = Set<ReservationID>()
        for census in all {
            for (id, facts) in census.records {
                recordIDs.insert(id)
                repairs += repairsFor(id, facts, holds: holdsByID[id] ?? [], report: &report)
            }
        }
        // Holds no record accounts for: reserved units nobody holds are given back; committed units
        // stay (a forgotten committed reservation's, shippable by its id).
        for (id, holds) in holdsByID where !recordIDs.contains(id) {
            for hold in holds where !hold.isCommitted {
                repairs.append(.releaseHold(shard: hold.shard, id: id))
                report.holdsReleased += 1
            }
        }
        return repairs
    }

    private static func repairsFor(_ id: ReservationID, _ facts: RecordFacts, holds: [(shard: Int, isCommitted: Bool)],
                                   report: inout NormalizationReport) -> [ReservationRepair] {
        var repairs: [ReservationRepair] = []
        let parts = Set(facts.partShards)
        let reservedAt = holds.filter { !$0.isCommitted }.map(\.shard)
        func release(_ shards: [Int]) {
            for shard in shards { repairs.append(.releaseHold(shard: shard, id: id)) }
            report.holdsReleased += shards.count
        }
        func forget() {
            repairs.append(.forgetRecord(shard: facts.home, id: id))
            report.recordsForgotten += 1
            release(reservedAt)
        }
        func settle(_ state: ReservationState) {
            repairs.append(.settleRecord(shard: facts.home, id: id, state: state))
            report.recordsRolledForward += 1
        }
        func commitParts() {
            let toCommit = holds.filter { !$0.isCommitted && parts.contains($0.shard) }.map(\.shard)
            for shard in toCommit { repairs.append(.commitHold(shard: shard, id: id)) }
            report.holdsCommitted += toCommit.count
            release(holds.filter { !$0.isCommitted && !parts.contains($0.shard) }.map(\.shard))
        }
        let heldAtParts = Set(holds.filter { parts.contains($0.shard) }.map(\.shard))
        let committedAtParts = holds.contains { $0.isCommitted && parts.contains($0.shard) }
        switch facts.phase {
        case .reserving:
            forget()
        case .releasing where facts.settleAs == .refused:
            forget()
        case .releasing:
            release(holds.filter { parts.contains($0.shard) || !$0.isCommitted }.map(\.shard))
            settle(.released)
        case .committing:
            commitParts()
            settle(.committed)
        case .settled(.held):
            if committedAtParts {
                commitParts()
                settle(.committed)
            } else if heldAtParts != parts {
                forget()
            } else {
                release(holds.filter { !$0.isCommitted && !parts.contains($0.shard) }.map(\.shard))
            }
        case .settled(.committed):
            // A part without a hold may have shipped it all (or seen an unanswered release, which
            // returned the same units): either way the record stays committed.
            commitParts()
        case .settled(.released):
            release(holds.filter { parts.contains($0.shard) || !$0.isCommitted }.map(\.shard))
        case .settled:
            release(reservedAt)
        }
        return repairs
    }
}
