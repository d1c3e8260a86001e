/// Replaying recorded inputs on a worker (recovery). The worker runs the same code as when the
/// inputs first arrived, with its outgoing shard messages suppressed (each recipient's own log has
/// what it received) and no expiry timer (expiries come from the expiry records). Worker thread only.
extension ShardWorker {
    /// Applies one recorded input. Throws when the record does not decode or does not fit the
    /// engine's state (a log from another configuration, or damage the checksums missed).
    func replay(kind code: UInt8, payload: UnsafeRawBufferPointer) throws(RecordDecodingError) {
        guard let kind = WorkerInputKind(rawValue: code) else { throw RecordDecodingError("unknown record kind \(code)") }
        var reader = RecordReader(payload)
        let shardCount = core.configuration.shardCount
        switch kind {
        case .names:
            try replayNames(&reader)
        case .events:
            try replayEvents(&reader)
        case .reservation:
            let now = try reader.read(Int64.self)
            let home = try ownedShard(try reader.readShard(shardCount: shardCount))
            let operation: ReservationOperation
            let id: ReservationID
            switch try reader.read(UInt8.self) {
            case 0:
                let request = try reader.readReserveRequest()
                (operation, id) = (.reserve(request), request.id)
            case 1: (operation, id) = (.commit, try reader.readID())
            case 2: (operation, id) = (.release, try reader.readID())
            case let tag: throw RecordDecodingError("reservation operation \(tag)")
            }
            try reader.expectEnd()
            home.perform(operation, id: id, nowMilliseconds: now, router: self, completion: { _ in })
        case .shardMessage:
            let now = try reader.read(Int64.self)
            let target = try ownedShard(try reader.readShard(shardCount: shardCount))
            let message = try reader.readShardMessage(shardCount: shardCount)
            try reader.expectEnd()
            guard target.acceptsReplayed(message) else {
                throw RecordDecodingError("a reservation answer for a reservation that is not waiting for it")
            }
            target.receive(message, nowMilliseconds: now, router: self)
        case .expiry:
            let now = try reader.read(Int64.self)
            let shard = try ownedShard(try reader.readShard(shardCount: shardCount))
            try reader.expectEnd()
            shard.expireDue(nowMilliseconds: now, router: self)
        case .channelDefine:
            let sequence = try reader.read(UInt64.self)
            let definition = try reader.readChannelDefinition()
            try reader.expectEnd()
            channels.set(definition)
            channelChangeSequence = max(channelChangeSequence, sequence)
        case .channelRemove:
            let sequence = try reader.read(UInt64.self)
            let id = ChannelID(try reader.read(UInt32.self))
            try reader.expectEnd()
            channels.remove(id)
            channelChangeSequence = max(channelChangeSequence, sequence)
        case .normalization:
            let now = try reader.read(Int64.self)
            let repair = try ReservationRepair.decode(&reader, shardCount: shardCount)
            try reader.expectEnd()
            try ownedShard(repair.shard).apply(repair, nowMilliseconds: now)
        }
    }

    private func ownedShard(_ index: Int) throws(RecordDecodingError) -> Shard {
        guard let shard = shardIfOwned(index) else {
            throw RecordDecodingError("shard \(index) is not worker \(self.index)'s (was the worker count changed?)")
        }
        return shard
    }

    private func replayNames(_ reader: inout RecordReader) throws(RecordDecodingError) {
        guard let kind = NameKind(rawValue: try reader.read(UInt8.self)), kind != .reservation else {
            throw RecordDecodingError("name kind")
        }
        let first = Int(try reader.read(UInt32.self))
        let count = try reader.readCount(itemBytes: 3)
        for id in first..<(first + count) {
            let length = Int(try reader.read(UInt16.self))
            let bytes = try reader.readBytes(length)
            let known = core.catalog.count(kind)
            if id < known {
                let same = core.catalog.withName(kind, id: UInt32(id)) { $0.elementsEqual(bytes) }
                guard same else { throw RecordDecodingError("\(kind) id \(id) names another \(kind) than before") }
                continue
            }
            guard id == known else { throw RecordDecodingError("\(kind) id \(id) defined before id \(known)") }
            let interned: UInt32
            do throws(InvalidNameError) {
                interned = try core.catalog.intern(bytes, kind: kind)
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
        var batch = EventBatch(capacity: count)
        let shardMask = core.configuration.shardCount - 1
        for _ in 0..<count {
            let raw = try reader.readBytes(eventBytes)
            // In memory an enum holds its case index (not its raw value): 0..<caseCount is valid.
            guard Int(raw[kindOffset]) < StockEventKind.allCases.count else { throw RecordDecodingError("event kind") }
            let event = raw.loadUnaligned(as: StockEvent.self)
            _ = try ownedShard(Int(event.sku.rawValue) & shardMask)
            batch.events.append(event)
        }
        guard correlationCount <= reader.remaining else { throw RecordDecodingError("correlation count") }
        for _ in 0..<correlationCount { batch.correlationIDs.append(try reader.readID()) }
        try reader.expectEnd()
        let outcomes = UnsafeMutablePointer<EventOutcomeCode>.allocate(capacity: max(count, 1))
        defer { outcomes.deallocate() }
        apply(batch, indices: nil, nowMilliseconds: now, outcomes: outcomes)
        for shard in shards { shard.pendingRejections.removeAll(keepingCapacity: true) }
    }
}

extension Shard {
    /// Whether a replayed message finds the state it was sent for (answers go to a waiting record).
    func acceptsReplayed(_ message: ShardMessage) -> Bool {
        switch message {
        case .held(let id, _, _):
            return records[id]?.phase == .reserving
        case .acknowledged(let id):
            guard let record = records[id] else { return false }
            return record.state == nil && record.outstanding > 0
        case .hold, .commit, .release:
            return true
        }
    }
}
