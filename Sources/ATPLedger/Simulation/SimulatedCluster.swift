import DequeModule

/// Every core of a ledger on one thread, driven step by step: the simulator's counterpart of the
/// worker threads (`ShardWorker`), running the same `CoreLedger`s unchanged (TigerBeetle's VOPR,
/// FoundationDB's simulation). The caller (ATPSimulator's seeded scheduler) decides every step:
/// which core runs its next input, when a journal writes or syncs (or fails to), when the clock
/// moves, when expiries run, when a snapshot is cut, and when the process crashes or the power
/// fails. Journals (`SimulatedJournal`) and snapshots survive crashes; everything else is rebuilt
/// by `recover()`, which follows `DurableLedger.open` step for step.
///
/// A core runs like its worker thread does: every message from another core first, then one
/// external request. Messages from one core to another keep their order. Nothing here reads a
/// clock, a random source or a thread: the same calls give the same states.
package final class SimulatedCluster {
    package let configuration: LedgerConfiguration
    package let durability: SimulatedJournal.Durability
    /// The engine clock (milliseconds since 1970); only `advanceClock` moves it.
    package private(set) var nowMilliseconds: Int64
    /// The journal stream of each core (kept across crashes).
    package let journals: [SimulatedJournal]
    /// Snapshots that were completely written, oldest first (kept across crashes).
    package private(set) var snapshots: [LedgerImage] = []
    /// The name tables (rebuilt by recovery, with the same ids).
    package private(set) var catalog: Catalog
    /// What the last recovery repaired.
    package private(set) var lastRecovery = ResolutionReport()
    /// The repairs the last recovery made, per core, when tracing (`trace` set).
    package private(set) var lastRepairs: [[String]] = []
    /// Recoveries so far.
    package private(set) var recoveries = 0
    /// Called when a core applies its part of a batch (its core, the batch's `tag`, the indices of
    /// its events), in the order cores apply them: the simulator's model follows the same order.
    package var onEventsApplied: ((Int, Int, [Int32]) -> Void)?
    /// Planted faults, to show that the simulator's checks catch them (never set otherwise).
    package enum Sabotage: Sendable {
        /// Each crash also cuts the newest stable record of journal 0: acknowledged work lost.
        case loseStableRecords
        /// Recovery applies no repairs: records and holds left as the crash left them.
        case skipRepairs
    }
    package var sabotage: Sabotage?

    /// Sees what the cores decide (tracing a seed); set it again after a recovery.
    package var trace: ((String) -> Void)? {
        didSet { for core in cores { core.ledger.trace = trace } }
    }

    let waits = SimulatedDurabilityWaits()
    private(set) var cores: [SimulatedCore] = []
    private var rejectionLog: RejectionLog
    private var channelDefinitions: [ChannelID: ChannelDefinition] = [:]
    private var channelChangeSequence: UInt64 = 0
    private var snapshotInProgress: PendingSnapshot?
    /// Draws journal generations (seeded: a run replays exactly).
    private var generations: SplitMix64

    /// A journal generation number never drawn before (in practice: 64 random bits).
    private func nextGeneration() -> UInt64 {
        var next: UInt64
        repeat { next = generations.next() } while next < 2
        return next
    }

    /// A snapshot being cut (one core at a time) or waiting for its marks to be synced.
    private struct PendingSnapshot {
        /// Tells a capture's completion from one of a snapshot a crash abandoned.
        var serial: UInt64
        var parts: [WorkerImagePart?]
        var image: LedgerImage?
    }
    private var snapshotSerial: UInt64 = 0

    /// Starts a fresh ledger (no journal, no snapshot) and runs its first recovery, as atpd does on
    /// an empty data directory.
    package init(configuration: LedgerConfiguration, durability: SimulatedJournal.Durability,
                 startMilliseconds: Int64, seed: UInt64) throws(ConfigurationError) {
        try configuration.validate()
        generations = SplitMix64(seed: seed ^ 0x6E6E_7261_7469_6F6E)
        self.configuration = configuration
        self.durability = durability
        nowMilliseconds = startMilliseconds
        catalog = Catalog(placement: configuration.placement)
        rejectionLog = RejectionLog(capacity: configuration.rejectionLogCapacity)
        let waits = self.waits
        journals = (0..<configuration.workerCount).map { _ in SimulatedJournal(durability: durability, waits: waits) }
        do {
            try recover()
        } catch {
            preconditionFailure("an empty ledger does not recover: \(error)")
        }
    }

    package var coreCount: Int { configuration.workerCount }

    // MARK: - Requests (a client's)

    /// Queues an event batch: one part per core that owns some of its events, answered once every
    /// part is applied and durable (`Engine.submit`).
    package func submit(_ batch: EventBatch, tag: Int, completion: @escaping (EventBatchResult) -> Void) {
        var indicesByCore = [[Int32]](repeating: [], count: coreCount)
        for (index, event) in batch.events.enumerated() {
            indicesByCore[coreIndex(ofShard: shardIndex(of: event.sku))].append(Int32(index))
        }
        let parts = indicesByCore.enumerated().filter { !$0.element.isEmpty }
        let outcomes = UnsafeMutablePointer<EventOutcomeCode>.allocate(capacity: max(batch.events.count, 1))
        outcomes.initialize(repeating: .pending, count: max(batch.events.count, 1))
        var remaining = parts.count
        var failure: DurabilityFailure?
        let finish = {
            remaining -= 1
            guard remaining == 0 else { return }
            var result = EventBatchResult(outcomes: (0..<batch.events.count).map { outcomes[$0].outcome })
            result.durabilityFailure = failure
            outcomes.deallocate()
            completion(result)
        }
        if parts.isEmpty {
            remaining = 1
            return finish()
        }
        for (core, indices) in parts {
            cores[core].external.append(.input { [unowned self] ledger in
                switch ledger.applyEvents(batch, indices: indices, nowMilliseconds: nowMilliseconds, outcomes: outcomes) {
                case .success(let lsn):
                    onEventsApplied?(core, tag, indices)
                    waits.register([journals[core]: lsn]) { partFailure in
                        if let partFailure, failure == nil { failure = partFailure }
                        finish()
                    }
                case .failure(let refusal):
                    for index in indices { outcomes[Int(index)] = EventOutcomeCode(rejected: .malformed) }
                    if failure == nil { failure = refusal }
                    finish()
                }
            })
        }
    }

    /// Queues a reserve at its home core (its first line's SKU's), as `Engine.submitReserve` does.
    package func reserve(_ request: ReserveRequest, completion: @escaping (ReservationReply) -> Void) {
        perform(.reserve(request), id: request.id,
                home: ReservationHome.shard(of: request, catalog: catalog, shardCount: configuration.shardCount),
                completion: completion)
    }

    /// Queues a commit at the core the directory names for the id when it is queued, as the engine
    /// routes it (an id unknown then goes to its hashed shard and is answered unknown there).
    package func commit(_ id: ReservationID, completion: @escaping (ReservationReply) -> Void) {
        perform(.commit, id: id, home: homeShardIndex(of: id), completion: completion)
    }

    /// Queues a release at the id's home core, as `commit`.
    package func release(_ id: ReservationID, completion: @escaping (ReservationReply) -> Void) {
        perform(.release, id: id, home: homeShardIndex(of: id), completion: completion)
    }

    private func perform(_ operation: ReservationOperation, id: ReservationID, home: Int,
                         completion: @escaping (ReservationReply) -> Void) {
        let sendable = SimulatedCallback(completion)
        cores[coreIndex(ofShard: home)].external.append(.input { [unowned self] ledger in
            ledger.perform(operation, id: id, homeShard: home, nowMilliseconds: nowMilliseconds) { sendable.call($0) }
        })
    }

    /// Defines (or with `remove`, removes) a channel on every core, as `Engine.defineChannel` does:
    /// each core applies it among its messages; `completion` runs once every core's record is durable.
    package func changeChannel(_ definition: ChannelDefinition?, remove id: ChannelID? = nil,
                               completion: @escaping (DurabilityFailure?) -> Void) {
        channelChangeSequence += 1
        let sequence = channelChangeSequence
        if let definition { channelDefinitions[definition.id] = definition } else if let id { channelDefinitions[id] = nil }
        var positions: [SimulatedJournal: UInt64] = [:]
        var refusal: DurabilityFailure?
        var remaining = coreCount
        for core in cores {
            core.incoming.append(.input { [unowned self] ledger in
                let journal = journals[ledger.index]
                if ledger.applyChannelChange(define: definition, remove: id, sequence: sequence) == nil {
                    refusal = journal.failure
                }
                positions[journal] = journal.lastAppendedLSN
                remaining -= 1
                guard remaining == 0 else { return }
                if let refusal { return completion(refusal) }
                waits.register(positions) { completion($0) }
            })
        }
    }

    /// The channel definitions in force (engine-wide, as `Engine.channels()`).
    package var channels: [ChannelDefinition] { channelDefinitions.values.sorted { $0.id < $1.id } }

    // MARK: - Steps (the scheduler's)

    /// Cores with something to run.
    package var runnableCores: [Int] { cores.indices.filter { !cores[$0].incoming.isEmpty || !cores[$0].external.isEmpty } }

    /// Runs core `core` once: every message waiting for it, then one external request (if any),
    /// then the durability waits that became ready.
    package func run(core index: Int) {
        let core = cores[index]
        core.drainIncoming(nowMilliseconds: nowMilliseconds)
        if let input = core.external.popFirst() {
            core.run(input, nowMilliseconds: nowMilliseconds)
            core.drainIncoming(nowMilliseconds: nowMilliseconds)
        }
        waits.fire()
        completeSnapshotIfSynced()
    }

    /// Runs core `core`'s expiry pass at the current time.
    package func expire(core index: Int) {
        cores[index].drainIncoming(nowMilliseconds: nowMilliseconds)
        cores[index].ledger.expireDue(nowMilliseconds: nowMilliseconds)
        waits.fire()
        completeSnapshotIfSynced()
    }

    /// Moves the clock forward.
    package func advanceClock(byMilliseconds milliseconds: Int64) {
        precondition(milliseconds >= 0, "clocks do not go back")
        nowMilliseconds += milliseconds
    }

    /// Hands `records` more of journal `index`'s records to the OS, and runs what became durable.
    package func write(journal index: Int, records: Int) {
        journals[index].write(records)
        waits.fire()
        completeSnapshotIfSynced()
    }

    /// Syncs journal `index` (or fails to, failing the stream), and runs what became durable.
    package func sync(journal index: Int, failing: Bool = false) {
        journals[index].sync(failing: failing)
        waits.fire()
        completeSnapshotIfSynced()
    }

    /// Whether nothing is queued, waiting for durability or being snapshotted.
    package var isQuiescent: Bool {
        runnableCores.isEmpty && waits.count == 0 && cores.allSatisfy { $0.ledger.pendingReserves.isEmpty }
    }

    // MARK: - Snapshots (`DurableLedger.snapshotNow`)

    /// Starts a snapshot; its cores are cut one at a time by `cutSnapshot(core:)` (each between two
    /// of its inputs, at its journal's last LSN). Ignored while one is in progress.
    package func beginSnapshot() {
        guard snapshotInProgress == nil else { return }
        snapshotSerial += 1
        snapshotInProgress = PendingSnapshot(serial: snapshotSerial, parts: Array(repeating: nil, count: coreCount))
    }

    /// Cores the snapshot in progress has not cut yet.
    package var snapshotCoresToCut: [Int] {
        guard let pending = snapshotInProgress, pending.image == nil else { return [] }
        return pending.parts.indices.filter { pending.parts[$0] == nil }
    }

    /// Cuts core `core`'s part of the snapshot in progress and copies all its shards at once; once
    /// every core is cut, the snapshot waits until every journal is synced up to its mark, then
    /// counts as written.
    package func cutSnapshot(core index: Int) {
        advanceSnapshotCut(core: index)
        cores[index].ledger.finishImageCapture()
        completeSnapshotIfSynced()
    }

    /// One step of core `core`'s part of the snapshot in progress, as a serving core takes it: the
    /// cut (between two of its inputs, at its journal's last LSN, no shard copied yet), or the copy
    /// of its next shard. Inputs the core runs in between copy the shards they change first.
    package func advanceSnapshotCut(core index: Int) {
        guard let pending = snapshotInProgress, pending.parts[index] == nil else { return }
        let ledger: CoreLedger = cores[index].ledger
        if ledger.isCapturingImage {
            ledger.copyNextImageShard()
        } else {
            cores[index].drainIncoming(nowMilliseconds: nowMilliseconds)
            let serial = pending.serial
            // The completion may run inside another input of the core: it only keeps the part.
            ledger.beginImageCapture(mark: journals[index].lastAppendedLSN) { [unowned self] part in
                guard snapshotInProgress?.serial == serial else { return }
                snapshotInProgress!.parts[index] = part
            }
        }
        completeSnapshotIfSynced()
    }

    /// Whether core `core` has cut its part of the snapshot in progress and still copies shards.
    package func isCopyingSnapshot(core index: Int) -> Bool { cores[index].ledger!.isCapturingImage }

    private func completeSnapshotIfSynced() {
        if var pending = snapshotInProgress, pending.image == nil, pending.parts.allSatisfy({ $0 != nil }) {
            pending.image = assemble(pending.parts.map { $0! })
            snapshotInProgress = pending
            waits.fire()
        }
        guard let image = snapshotInProgress?.image else { return }
        // With a failed journal a core may hold what its journal does not (changes it must follow
        // unjournaled until the restart): the snapshot fails, the engine goes on (`DurableLedger`).
        if journals.contains(where: { $0.failure != nil }) {
            snapshotInProgress = nil
            return
        }
        for (index, journal) in journals.enumerated() where journal.syncedLSN < image.workerMarks[index] { return }
        snapshots.append(image)
        snapshotInProgress = nil
    }

    /// The engine's state now, as a snapshot would hold it (every core cut at once).
    package func captureImage() -> LedgerImage {
        for core in cores { core.drainIncoming(nowMilliseconds: nowMilliseconds) }
        return assemble(cores.map { $0.ledger.captureImagePart(mark: journals[$0.index].lastAppendedLSN) })
    }

    private func assemble(_ parts: [WorkerImagePart]) -> LedgerImage {
        var shardCells = [ShardCellsImage](repeating: ShardCellsImage(cells: [], firstSlotOfSKU: []),
                                           count: configuration.shardCount)
        for part in parts { for (index, cells) in part.shards { shardCells[index] = cells } }
        let newest = parts.max { $0.channelChangeSequence < $1.channelChangeSequence }!
        let skuNames = catalog.image(.sku)
        return LedgerImage(
            workerGenerations: parts.map(\.generation), channelChangeSequence: newest.channelChangeSequence,
            shardCount: configuration.shardCount, skuPlacements: catalog.placementMap(of: skuNames),
            dedupWindowSequences: configuration.dedupWindowSequences, workerMarks: parts.map(\.mark),
            cutWallClockMilliseconds: nowMilliseconds, clockMilliseconds: nowMilliseconds,
            skuNames: skuNames, locationNames: catalog.image(.location),
            channelNames: catalog.image(.channel), sourceNames: catalog.image(.source),
            channels: newest.channels, reservations: parts.flatMap(\.reservations), holds: parts.flatMap(\.holds),
            dedupWindows: parts.flatMap(\.dedupWindows), shardCells: shardCells)
    }

    // MARK: - Crashes and recovery

    /// How the process ends.
    package enum Crash: Sendable, Equatable {
        /// kill -9: what the journals handed to the OS survives.
        case process
        /// Power loss: what was synced survives, and `keepingUnsynced` records of what was written
        /// after it (per journal, a prefix).
        case power(keepingUnsynced: Int)
    }

    /// Ends the process: every queued request, message, durability wait and snapshot in progress
    /// is gone (no reply will come); the journals keep what the crash leaves them. Returns the
    /// records lost per journal.
    @discardableResult
    package func crash(_ crash: Crash) -> [Int] {
        waits.dropAll()
        snapshotInProgress = nil
        cores = []
        var lost = journals.map { journal in
            switch crash {
            case .process: journal.crashProcess()
            case .power(let keeping): journal.losePower(keeping: keeping)
            }
        }
        if sabotage == .loseStableRecords, journals[0].lastAppendedLSN > 0 {
            lost[0] += journals[0].losePower(keeping: 0) + journals[0].cutForSabotage()
        }
        return lost
    }

    /// Why recovery refused to start.
    package struct RecoveryRefusal: Error, CustomStringConvertible {
        package var description: String
    }

    /// Starts again from what survived (`DurableLedger.open`): the newest snapshot, each journal
    /// replayed from its mark, then the resolution, journaled. The repairs are durable only once
    /// the journals write and sync them (a crash before that repeats the recovery). Throws when a
    /// journal ends before the snapshot's mark or a record cannot be replayed.
    @discardableResult
    package func recover() throws(RecoveryRefusal) -> ResolutionReport {
        for journal in journals { journal.reopen() }
        let image = snapshots.last
        if let image {
            for (index, journal) in journals.enumerated() where journal.lastAppendedLSN < image.workerMarks[index] {
                throw RecoveryRefusal(description: "journal \(index) ends at \(journal.lastAppendedLSN), before the "
                                      + "snapshot's mark \(image.workerMarks[index])")
            }
        }
        let restored = try restore(image, replayingJournals: true)
        cores = restored.cores
        for core in cores { core.ledger.trace = trace }
        catalog = restored.catalog
        rejectionLog = restored.rejectionLog
        let watermarks = image.map { image in [NameKind.sku, .location, .channel, .source].map { image.names($0).count } }
            ?? [0, 0, 0, 0]
        for core in cores {
            core.ledger.recorder = WorkerRecorder(log: journals[core.index], catalog: catalog, nameWatermarks: watermarks)
        }
        let censuses = cores.map { $0.ledger.census(endLSN: journals[$0.index].lastAppendedLSN) }
        var resolution = Resolution(censuses, shardCount: configuration.shardCount, nowMilliseconds: nowMilliseconds)
        if sabotage == .skipRepairs {
            resolution.holdRepairsByCore = resolution.holdRepairsByCore.map { _ in [] }
            resolution.recordRepairsByCore = resolution.recordRepairsByCore.map { _ in [] }
        }
        for core in cores {
            core.ledger.beginFinishingRecovery(endLSN: censuses[core.index].endLSN, nextGeneration: nextGeneration(),
                                               holdRepairs: resolution.holdRepairsByCore[core.index],
                                               channels: resolution.channels,
                                               channelSequence: resolution.channelSequence,
                                               nowMilliseconds: nowMilliseconds)
        }
        // Phase 2 only once phase 1 is stable everywhere (`Engine.resolveAfterReplay` waits too).
        if resolution.recordRepairsByCore.contains(where: { !$0.isEmpty }) {
            for journal in journals {
                journal.write(Int.max / 2)
                journal.sync()
            }
            for core in cores {
                core.ledger.completeRecovery(recordRepairs: resolution.recordRepairsByCore[core.index],
                                             nowMilliseconds: nowMilliseconds)
            }
        }
        channelDefinitions = Dictionary(uniqueKeysWithValues: resolution.channels.map { ($0.id, $0) })
        channelChangeSequence = max(resolution.channelSequence, image?.channelChangeSequence ?? 0)
        lastRecovery = resolution.report
        if trace != nil {
            lastRepairs = resolution.repairsByCore.map { $0.map { "\($0)" } }
            for census in censuses {
                let channels = census.channels.map { "\($0.id):\($0.locations.count)/\($0.bufferUnits)/\($0.capPercent)" }
                lastRepairs[census.core].insert("journal end \(census.endLSN), generation \(census.generation) "
                                                + "(earlier: \(census.generationEnds.sorted { $0.key < $1.key })), "
                                                + "channels #\(census.channelSequence) \(channels)", at: 0)
            }
        }
        recoveries += 1
        return resolution.report
    }

    /// The state recovery would reach from the journals alone, or from the newest snapshot and the
    /// journals (before its resolution is journaled), without touching this cluster: to check that
    /// both ways agree. Same errors as `recover()`.
    package func recoveredImage(fromSnapshot: Bool) throws(RecoveryRefusal) -> LedgerImage {
        let restored = try restore(fromSnapshot ? snapshots.last : nil, replayingJournals: true)
        let censuses = restored.cores.map { $0.ledger.census(endLSN: journals[$0.index].lastAppendedLSN) }
        let resolution = Resolution(censuses, shardCount: configuration.shardCount, nowMilliseconds: nowMilliseconds)
        var draws = generations
        for core in restored.cores {
            var next: UInt64
            repeat { next = draws.next() } while next < 2
            core.ledger.beginFinishingRecovery(endLSN: censuses[core.index].endLSN, nextGeneration: next,
                                               holdRepairs: resolution.holdRepairsByCore[core.index],
                                               channels: resolution.channels,
                                               channelSequence: resolution.channelSequence,
                                               nowMilliseconds: nowMilliseconds)
            core.ledger.completeRecovery(recordRepairs: resolution.recordRepairsByCore[core.index],
                                         nowMilliseconds: nowMilliseconds)
        }
        let parts = restored.cores.map { $0.ledger.captureImagePart(mark: 0) }
        var shardCells = [ShardCellsImage](repeating: ShardCellsImage(cells: [], firstSlotOfSKU: []),
                                           count: configuration.shardCount)
        for part in parts { for (index, cells) in part.shards { shardCells[index] = cells } }
        return LedgerImage(
            workerGenerations: parts.map(\.generation), channelChangeSequence: resolution.channelSequence,
            shardCount: configuration.shardCount, skuPlacements: restored.catalog.placementMap(of: restored.catalog.image(.sku)),
            dedupWindowSequences: configuration.dedupWindowSequences, workerMarks: parts.map(\.mark),
            cutWallClockMilliseconds: nowMilliseconds, clockMilliseconds: nowMilliseconds,
            skuNames: restored.catalog.image(.sku), locationNames: restored.catalog.image(.location),
            channelNames: restored.catalog.image(.channel), sourceNames: restored.catalog.image(.source),
            channels: resolution.channels, reservations: parts.flatMap(\.reservations),
            holds: parts.flatMap(\.holds), dedupWindows: parts.flatMap(\.dedupWindows), shardCells: shardCells)
    }

    /// Interns, in id order, every name the journals' `names` records define, and those of the
    /// newest snapshot, before a replay of the journals alone. A stream is self-contained from the
    /// snapshot its generation started from (docs/DURABILITY.md, "Names"); replayed from its first
    /// record instead, a later generation may use a name that only another stream's earlier
    /// generation defined, or one only the snapshot holds (interned, captured by the snapshot, then
    /// its names record lost unsynced in a crash: seed 12199). The check "recovery from the journals
    /// alone equals recovery from the snapshot" needs those names first: under `.nameHash`
    /// placement a SKU's shard comes from its name. Names carry no state (ids never change), so the
    /// check still compares what the journals alone rebuild. Production never replays the journals
    /// alone past a snapshot (segments a snapshot covers are deleted).
    private func defineNamesOfEveryJournal(in catalog: Catalog) {
        var names: [NameKind: [Int: [UInt8]]] = [:]
        if let image = snapshots.last {
            for kind in [NameKind.sku, .location, .channel, .source] {
                let list = image.names(kind)
                for id in 0..<list.count { names[kind, default: [:]][id] = list.withName(id) { Array($0) } }
            }
        }
        for journal in journals {
            for record in journal.records(after: 0) where record.kind == WorkerInputKind.names.rawValue {
                // A damaged record is left to the replay, which refuses it with the reason.
                record.payload.withUnsafeBytes { bytes in
                    var reader = RecordReader(bytes)
                    try? reader.readNames { kind, id, name in names[kind, default: [:]][id] = Array(name) }
                }
            }
        }
        for (kind, byID) in names {
            var id = catalog.count(kind)
            while let name = byID[id] {
                guard let interned = name.withUnsafeBytes({ try? catalog.intern($0, kind: kind) }), Int(interned) == id
                else { return }
                id += 1
            }
        }
    }

    private func restore(_ image: LedgerImage?, replayingJournals: Bool) throws(RecoveryRefusal)
        -> (cores: [SimulatedCore], catalog: Catalog, rejectionLog: RejectionLog)
    {
        let catalog: Catalog
        let plan: RestorePlan?
        do {
            catalog = try image.map { image throws(LedgerImageError) in try Catalog(restoring: image) }
                ?? Catalog(placement: configuration.placement)
            plan = try image.map { image throws(LedgerImageError) in
                try RestorePlan(image: image, workerCount: configuration.workerCount)
            }
        } catch {
            throw RecoveryRefusal(description: "the snapshot does not restore: \(error)")
        }
        if image == nil && replayingJournals { defineNamesOfEveryJournal(in: catalog) }
        let rejectionLog = RejectionLog(capacity: configuration.rejectionLogCapacity)
        let directory = ReservationDirectory()
        let cores = (0..<coreCount).map { index in
            SimulatedCore(index: index, cluster: self, configuration: configuration, catalog: catalog,
                          rejectionLog: rejectionLog, directory: directory)
        }
        for core in cores {
            if let image, let plan {
                for channel in image.channels { core.ledger.channels.set(channel) }
                core.ledger.restore(from: image, plan: plan)
            }
            guard replayingJournals else { continue }
            let mark = image?.workerMarks[core.index] ?? 0
            for record in journals[core.index].records(after: mark) {
                let problem: RecordDecodingError? = record.payload.withUnsafeBytes { bytes in
                    do throws(RecordDecodingError) {
                        try core.ledger.replay(kind: record.kind, lsn: record.lsn, payload: bytes)
                        return nil
                    } catch {
                        return error
                    }
                }
                if let problem {
                    throw RecoveryRefusal(description: "core \(core.index) record \(record.lsn) cannot be replayed: \(problem)")
                }
                core.ledger.lastReplayedLSN = record.lsn
            }
        }
        return (cores, catalog, rejectionLog)
    }

    // MARK: - Checks

    /// Checks every core's invariants (cells against holds; a failure stops the process with the
    /// reason, as in the engine) and, when nothing is between cores and no journal failed, that
    /// every reservation's record and holds agree: returns what recovery's resolution would repair
    /// (empty when sound).
    package func disagreements() -> [String] {
        for core in cores { core.ledger.checkInvariants() }
        // The directory holds exactly the records and the reserves being decided (every core's
        // checks above saw each of theirs in it, at its home).
        if let directory = cores.first?.ledger.directory {
            let remembered = cores.reduce(0) { $0 + $1.ledger.reservationsRemembered }
            precondition(directory.count == remembered, "the directory has \(directory.count) ids for \(remembered) reservations")
        }
        // A failed journal stops the home telling its parts (they follow it after the restart).
        guard isQuiescent, !journals.contains(where: { $0.failure != nil }) else { return [] }
        let censuses = cores.map { $0.ledger.census(endLSN: .max) }
        let resolution = Resolution(censuses, shardCount: configuration.shardCount, nowMilliseconds: nowMilliseconds)
        return resolution.repairsByCore.enumerated().flatMap { core, repairs in repairs.map { "core \(core): \($0)" } }
    }

    // MARK: - Routing

    package func coreIndex(ofShard shard: Int) -> Int { shard % coreCount }
    package func shardIndex(of sku: SKUID) -> Int { catalog.shardIndex(of: sku) }
    /// Where reservation `id` lives now (its record's home, or its reserve's while decided), else
    /// the id's hashed shard (`Engine.homeShardIndex(of:)`).
    package func homeShardIndex(of id: ReservationID) -> Int {
        cores.first?.ledger.directory.home(of: id)
            ?? ReservationHome.hashedShard(of: id, shardCount: configuration.shardCount)
    }
}

/// A callback handed to the engine's `@Sendable` completion parameters. The simulator runs on
/// one thread, so it never crosses one.
private struct SimulatedCallback<Value>: @unchecked Sendable {
    let body: (Value) -> Void
    init(_ body: @escaping (Value) -> Void) { self.body = body }
    func call(_ value: Value) { body(value) }
}

/// One core of a `SimulatedCluster`: its ledger, its queues, and the ledger's environment.
final class SimulatedCore: CoreEnvironment {
    /// Something for the core to run.
    enum Input {
        case message(CoreMessage)
        case input((CoreLedger) -> Void)
    }

    let index: Int
    private unowned let cluster: SimulatedCluster
    private(set) var ledger: CoreLedger!
    /// Messages from other cores and engine-wide changes: run before any external request.
    var incoming = Deque<Input>()
    /// Client requests, one per step.
    var external = Deque<Input>()

    init(index: Int, cluster: SimulatedCluster, configuration: LedgerConfiguration, catalog: Catalog,
         rejectionLog: RejectionLog, directory: ReservationDirectory) {
        self.index = index
        self.cluster = cluster
        ledger = CoreLedger(index: index, configuration: configuration, catalog: catalog, rejectionLog: rejectionLog,
                            directory: directory, environment: self)
    }

    func drainIncoming(nowMilliseconds: Int64) {
        while let input = incoming.popFirst() { run(input, nowMilliseconds: nowMilliseconds) }
    }

    func run(_ input: Input, nowMilliseconds: Int64) {
        switch input {
        case .message(let message): ledger.receive(message, nowMilliseconds: nowMilliseconds)
        case .input(let body): body(ledger)
        }
    }

    // MARK: - CoreEnvironment

    func send(_ message: CoreMessage, to core: Int) {
        cluster.cores[core].incoming.append(.message(message))
    }

    func whenDurable(_ positions: [DurablePosition], _ action: @escaping @Sendable (DurabilityFailure?) -> Void) {
        wait(positions, stable: false, action)
    }

    func whenStable(_ positions: [DurablePosition], _ action: @escaping @Sendable (DurabilityFailure?) -> Void) {
        wait(positions, stable: true, action)
    }

    private func wait(_ positions: [DurablePosition], stable: Bool, _ action: @escaping @Sendable (DurabilityFailure?) -> Void) {
        guard ledger.recorder != nil, !positions.isEmpty else { return action(nil) }
        var byJournal: [SimulatedJournal: UInt64] = [:]
        for position in positions {
            byJournal[cluster.journals[position.core]] = max(byJournal[cluster.journals[position.core]] ?? 0, position.lsn)
        }
        cluster.waits.register(byJournal, stable: stable) { action($0) }
    }

    func send(_ message: CoreMessage, to core: Int, whenStable positions: [DurablePosition]) {
        guard ledger.recorder != nil, positions.contains(where: { $0.lsn > 0 }) else { return send(message, to: core) }
        let deliver = SimulatedCallback<CoreMessage> { [unowned cluster] in cluster.cores[core].incoming.append(.message($0)) }
        whenStable(positions) { failure in
            if failure == nil { deliver.call(message) }
        }
    }
}
