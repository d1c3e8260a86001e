/// Replaying a core's journal (recovery): each record is applied exactly as it was when first
/// journaled, with no reply, no message to another core and no expiry timer. Records are effects
/// (decisions with their grants, holds with their units), never requests to decide again, so the
/// replayed state is this core's state at the record, whatever the other cores' journals hold.
/// A record that does not decode, or does not fit the state (a journal from another
/// configuration, or damage the checksums missed), throws and changes nothing more.
extension CoreLedger {
    /// Applies one journaled record with LSN `lsn`.
    func replay(kind code: UInt8, lsn: UInt64, payload: UnsafeRawBufferPointer) throws(RecordDecodingError) {
        guard let kind = WorkerInputKind(rawValue: code) else { throw RecordDecodingError("unknown record kind \(code)") }
        var reader = RecordReader(payload)
        switch kind {
        case .names: try replayNames(&reader)
        case .events: try replayEvents(&reader)
        case .reserveDecided: try replayDecision(&reader)
        case .prepared: try replayPrepare(&reader, lsn: lsn)
        case .transitions: try replayTransitions(&reader)
        case .partChange: try replayPartChange(&reader)
        case .acknowledged:
            let now = try reader.read(Int64.self)
            let homeShard = try ownedShard(&reader)
            _ = try reader.read(UInt32.self)
            let id = try reader.readID()
            try reader.expectEnd()
            applyAcknowledgement(id, homeShard: homeShard, nowMilliseconds: now)
        case .generation:
            let next = try reader.read(UInt64.self)
            let previousEnd = try reader.read(UInt64.self)
            try reader.expectEnd()
            guard next > 1, next != generation, generationEnds[next] == nil, previousEnd < lsn else {
                throw RecordDecodingError("generation \(next) after \(generation)")
            }
            startGeneration(next, previousEnd: previousEnd)
        case .repairs:
            let now = try reader.read(Int64.self)
            let count = try reader.readCount(itemBytes: 2)
            var repairs: [RecoveryRepair] = []
            for _ in 0..<count {
                let repair = try RecoveryRepair.decode(&reader, shardCount: configuration.shardCount)
                for shard in Self.shardsTouched(by: repair) where !owns(shard: shard) {
                    throw RecordDecodingError("a repair of shard \(shard), which is not core \(index)'s")
                }
                repairs.append(repair)
            }
            try reader.expectEnd()
            for repair in repairs { apply(repair, nowMilliseconds: now) }
        case .channelDefine:
            let sequence = try reader.read(UInt64.self)
            let definition = try reader.readChannelDefinition()
            try reader.expectEnd()
            // A change older than the table restored from a snapshot is in it already (one of the
            // same number may be one of several a recovery journaled together: applied again).
            guard sequence >= channelChangeSequence else { return }
            channels.set(definition)
            channelChangeSequence = sequence
        case .channelRemove:
            let sequence = try reader.read(UInt64.self)
            let id = ChannelID(try reader.read(UInt32.self))
            try reader.expectEnd()
            guard sequence >= channelChangeSequence else { return }
            channels.remove(id)
            channelChangeSequence = sequence
        case .channelTable:
            let sequence = try reader.read(UInt64.self)
            let count = try reader.readCount(itemBytes: 20)
            var definitions: [ChannelDefinition] = []
            for _ in 0..<count { definitions.append(try reader.readChannelDefinition()) }
            try reader.expectEnd()
            guard sequence >= channelChangeSequence else { return }
            channels.replaceAll(with: definitions)
            channelChangeSequence = sequence
        case .legacyReservation, .legacyShardMessage, .legacyExpiry, .legacyNormalization:
            try replayLegacy(kind, &reader)
        }
    }

    /// Starts journal generation `next`; the current one ended at LSN `previousEnd`.
    func startGeneration(_ next: UInt64, previousEnd: UInt64) {
        precondition(next > 1 && next != generation && generationEnds[next] == nil, "generation \(next) was used before")
        generationEnds[generation] = previousEnd
        generation = next
        // Recovery settled every version-1 reservation in the repairs that follow this record.
        legacy = nil
    }

    /// The shard of a SKU a replayed record names. Under `.nameHash` its name must be known by now:
    /// a stream defines every name it uses before the record (from the restored snapshot's name
    /// counts on), so an unknown id is damage, refused here rather than placed on a wrong shard.
    func replayedShardIndex(of sku: SKUID) throws(RecordDecodingError) -> Int {
        if catalog.placement.scheme == .nameHash, sku != .unknown, Int(sku.rawValue) >= catalog.count(.sku) {
            throw RecordDecodingError("SKU id \(sku.rawValue) is used before its name is defined")
        }
        return shardIndex(of: sku)
    }

    /// Reads a shard index this core owns.
    func ownedShard(_ reader: inout RecordReader) throws(RecordDecodingError) -> Int {
        let shard = try reader.readShard(shardCount: configuration.shardCount)
        guard owns(shard: shard) else {
            throw RecordDecodingError("shard \(shard) is not core \(index)'s (was the worker count changed?)")
        }
        return shard
    }

    private func replayNames(_ reader: inout RecordReader) throws(RecordDecodingError) {
        try reader.readNames { kind, id, bytes throws(RecordDecodingError) in
            let known = catalog.count(kind)
            if id < known {
                let same = catalog.withName(kind, id: UInt32(id)) { $0.elementsEqual(bytes) }
                guard same else { throw RecordDecodingError("\(kind) id \(id) names another \(kind) than before") }
                return
            }
            guard id == known else { throw RecordDecodingError("\(kind) id \(id) defined before id \(known)") }
            let interned: UInt32
            do throws(InvalidNameError) {
                interned = try catalog.intern(bytes, kind: kind)
            } catch {
                throw RecordDecodingError("\(kind) id \(id): \(error)")
            }
            guard Int(interned) == id else { throw RecordDecodingError("\(kind) id \(id) was interned as \(interned)") }
        }
        try reader.expectEnd()
    }

    private func replayEvents(_ reader: inout RecordReader) throws(RecordDecodingError) {
        let now = try reader.read(Int64.self)
        let eventBytes = MemoryLayout<StockEvent>.size
        let count = try reader.readCount(itemBytes: eventBytes)
        let correlationCount = Int(try reader.read(UInt32.self))
        let kindOffset = MemoryLayout<StockEvent>.offset(of: \StockEvent.kind) ?? 0
        // One reused batch and outcome buffer for every record: a replay of single-event records
        // (one per request) otherwise allocates three times per record.
        var batch = EventBatch()
        swap(&batch, &replayBatch)
        defer {
            batch.events.removeAll(keepingCapacity: true)
            batch.correlationIDs.removeAll(keepingCapacity: true)
            replayBatch = batch
        }
        for _ in 0..<count {
            let raw = try reader.readBytes(eventBytes)
            // In memory an enum holds its case index (not its raw value): 0..<caseCount is valid.
            guard Int(raw[kindOffset]) < StockEventKind.allCases.count else { throw RecordDecodingError("event kind") }
            let event = raw.loadUnaligned(as: StockEvent.self)
            let shard = try replayedShardIndex(of: event.sku)
            guard owns(shard: shard) else {
                throw RecordDecodingError("an event of shard \(shard), which is not core \(index)'s")
            }
            batch.events.append(event)
        }
        guard correlationCount <= reader.remaining else { throw RecordDecodingError("correlation count") }
        for _ in 0..<correlationCount { batch.correlationIDs.append(try reader.readID()) }
        try reader.expectEnd()
        if replayOutcomes.count < count { replayOutcomes = Array(repeating: .applied, count: count) }
        let rejected = replayOutcomes.withUnsafeMutableBufferPointer { outcomes in
            apply(batch, indices: nil, nowMilliseconds: now, outcomes: outcomes.baseAddress!)
            return outcomes[0..<count].contains { $0.isRejection }
        }
        // Replayed rejections were logged when they first happened (a shard's pending ones are
        // only ever this record's: they are dropped after each).
        if rejected { for shard in shards { shard.pendingRejections.removeAll(keepingCapacity: true) } }
    }

    private func replayDecision(_ reader: inout RecordReader) throws(RecordDecodingError) {
        let now = try reader.read(Int64.self)
        let homeShard = try ownedShard(&reader)
        guard let state = ReservationState(rawValue: try reader.read(UInt8.self)), state == .held || state == .refused else {
            throw RecordDecodingError("decided state")
        }
        let expiresAt = try reader.read(Int64.self)
        let request = try reader.readReserveRequest()
        guard ReservationHome.isValid(homeShard, for: request, catalog: catalog, shardCount: configuration.shardCount) else {
            throw RecordDecodingError("home shard of \(request.id)")
        }
        var grants: [LineGrant] = []
        for _ in request.lines { grants.append(try reader.readGrant()) }
        let partCount = try reader.readCount(itemBytes: 16)
        var parts: [PartReference] = []
        for _ in 0..<partCount {
            let core = Int(try reader.read(UInt32.self))
            guard core < configuration.workerCount, core != index else { throw RecordDecodingError("part core \(core)") }
            parts.append(PartReference(core: core, origin: try reader.readOrigin()))
        }
        try reader.expectEnd()
        for line in request.lines { _ = try replayedShardIndex(of: line.sku) }
        guard shard(homeShard).records[request.id] == nil, pendingReserves[request.id] == nil else {
            throw RecordDecodingError("a decision for \(request.id), which is already decided")
        }
        var record = ReservationRecord(request: request, state: state, lineGrants: grants, expiresAtMilliseconds: expiresAt)
        record.parts = parts
        if state == .held { try checkLocalHolds(of: record) }
        applyDecision(record, homeShard: homeShard, lsn: 0, nowMilliseconds: now)
    }

    /// Checks that the home's own holds of a decided record can be made: their cells exist and the
    /// id holds nothing there yet.
    private func checkLocalHolds(of record: ReservationRecord) throws(RecordDecodingError) {
        for (line, grant) in zip(record.request.lines, record.lineGrants) where grant.granted > 0 {
            let shardIndex = self.shardIndex(of: line.sku)
            guard owns(shard: shardIndex) else { continue }
            let shard = shard(shardIndex)
            guard shard.holds[record.id] == nil else { throw RecordDecodingError("\(record.id) already holds on shard \(shardIndex)") }
            for allocation in grant.allocations where shard.cells.slot(sku: line.sku, location: allocation.location) == nil {
                throw RecordDecodingError("\(record.id) holds on a cell that does not exist")
            }
        }
    }

    private func replayPrepare(_ reader: inout RecordReader, lsn: UInt64) throws(RecordDecodingError) {
        _ = try reader.read(Int64.self)
        _ = try reader.readShard(shardCount: configuration.shardCount)
        let preparedGeneration = try reader.read(UInt64.self)
        let id = try reader.readID()
        guard preparedGeneration == generation else {
            throw RecordDecodingError("a prepare of generation \(preparedGeneration) in generation \(generation)")
        }
        let count = try reader.readCount(itemBytes: 8)
        var plans: [LinePlan] = []
        for _ in 0..<count {
            let sku = SKUID(try reader.read(UInt32.self))
            let shardIndex = try replayedShardIndex(of: sku)
            guard owns(shard: shardIndex) else { throw RecordDecodingError("a prepare on shard \(shardIndex)") }
            guard shard(shardIndex).holds[id] == nil else { throw RecordDecodingError("\(id) already holds on shard \(shardIndex)") }
            var plan = LinePlan(index: plans.count, shard: shardIndex, grant: LineGrant(requested: 0), holdLines: [])
            let allocations = try reader.readCount(itemBytes: 12)
            for _ in 0..<allocations {
                let location = LocationID(try reader.read(UInt32.self))
                let units = try reader.read(Int64.self)
                guard units > 0 && units <= Int64(Int32.max),
                      let slot = shard(shardIndex).cells.slot(sku: sku, location: location) else {
                    throw RecordDecodingError("\(id) prepares a hold on a cell that does not exist")
                }
                plan.holdLines.append(HoldLine(slot: slot, units: Int32(units)))
                plan.grant.granted += units
            }
            plans.append(plan)
        }
        try reader.expectEnd()
        applyPrepare(id, origin: HoldOrigin(generation: preparedGeneration, prepareLSN: lsn), plans: plans)
    }

    private func replayTransitions(_ reader: inout RecordReader) throws(RecordDecodingError) {
        let now = try reader.read(Int64.self)
        let homeShard = try ownedShard(&reader)
        let count = try reader.readCount(itemBytes: 4)
        var entries: [TransitionEntry] = []
        for _ in 0..<count {
            let id = try reader.readID()
            guard let state = ReservationState(rawValue: try reader.read(UInt8.self)),
                  state == .committed || state == .released || state == .expired else {
                throw RecordDecodingError("transition state")
            }
            entries.append(TransitionEntry(id: id, state: state, acknowledge: try reader.read(UInt8.self) != 0))
        }
        try reader.expectEnd()
        for entry in entries {
            guard let record = shard(homeShard).records[entry.id] else {
                throw RecordDecodingError("a transition of \(entry.id), which has no record")
            }
            let allowed = record.state == .held || (record.state == .committed && entry.state == .released)
            guard allowed else { throw RecordDecodingError("\(entry.id) cannot go from \(record.state) to \(entry.state)") }
            applyTransition(entry, homeShard: homeShard, lsn: 0, nowMilliseconds: now)
        }
    }

    private func replayPartChange(_ reader: inout RecordReader) throws(RecordDecodingError) {
        _ = try reader.read(Int64.self)
        guard let change = HoldChange(rawValue: try reader.read(UInt8.self)) else { throw RecordDecodingError("hold change") }
        let id = try reader.readID()
        let origin = try reader.readOrigin()
        let count = try reader.readCount(itemBytes: 4)
        var shards: [Int] = []
        for _ in 0..<count { shards.append(try ownedShard(&reader)) }
        try reader.expectEnd()
        applyPartChange(change, id: id, origin: origin, shards: shards)
    }
}
