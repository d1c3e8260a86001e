/// One repair recovery makes so that a reservation's record and holds agree on every core
/// (`Resolution`). Journaled in a `repairs` record like any input, so a later replay repeats it;
/// applying one twice changes nothing more.
enum RecoveryRepair: Equatable {
    /// Applies `change` to the holds of `id` with `origin` on `shards` (of the journaling core).
    case changeHolds(id: ReservationID, origin: HoldOrigin, change: HoldChange, shards: [Int])
    /// Home: forgets the record of `id` (a reserve that was never acknowledged), giving back the
    /// home's own holds of it.
    case forgetRecord(homeShard: Int, id: ReservationID)
    /// Home: moves the record to `state` (a version-1 commit or release in flight, rolled forward).
    case settleRecord(homeShard: Int, id: ReservationID, state: ReservationState)
    /// Home: every part agrees with the record now: no acknowledgement is awaited any more.
    case clearAcknowledgements(homeShard: Int, id: ReservationID)

    func encode(into writer: RecordWriter) {
        switch self {
        case .changeHolds(let id, let origin, let change, let shards):
            writer.put(UInt8(1))
            writer.put(id)
            writer.put(origin)
            writer.put(change.rawValue)
            writer.put(UInt32(shards.count))
            for shard in shards { writer.put(UInt32(shard)) }
        case .forgetRecord(let homeShard, let id):
            writer.put(UInt8(2))
            writer.put(UInt32(homeShard))
            writer.put(id)
        case .settleRecord(let homeShard, let id, let state):
            writer.put(UInt8(3))
            writer.put(UInt32(homeShard))
            writer.put(id)
            writer.put(state.rawValue)
        case .clearAcknowledgements(let homeShard, let id):
            writer.put(UInt8(4))
            writer.put(UInt32(homeShard))
            writer.put(id)
        }
    }

    static func decode(_ reader: inout RecordReader, shardCount: Int) throws(RecordDecodingError) -> RecoveryRepair {
        switch try reader.read(UInt8.self) {
        case 1:
            let id = try reader.readID()
            let origin = try reader.readOrigin()
            guard let change = HoldChange(rawValue: try reader.read(UInt8.self)) else { throw RecordDecodingError("hold change") }
            let count = try reader.readCount(itemBytes: 4)
            var shards: [Int] = []
            for _ in 0..<count { shards.append(try reader.readShard(shardCount: shardCount)) }
            return .changeHolds(id: id, origin: origin, change: change, shards: shards)
        case 2:
            let homeShard = try reader.readShard(shardCount: shardCount)
            return .forgetRecord(homeShard: homeShard, id: try reader.readID())
        case 3:
            let homeShard = try reader.readShard(shardCount: shardCount)
            let id = try reader.readID()
            guard let state = ReservationState(rawValue: try reader.read(UInt8.self)), state != .held, state != .refused else {
                throw RecordDecodingError("repair state")
            }
            return .settleRecord(homeShard: homeShard, id: id, state: state)
        case 4:
            let homeShard = try reader.readShard(shardCount: shardCount)
            return .clearAcknowledgements(homeShard: homeShard, id: try reader.readID())
        case let tag:
            throw RecordDecodingError("repair tag \(tag)")
        }
    }
}

extension CoreLedger {
    /// Applies one repair to this core (recovery, and when replaying its record). Repairs of
    /// shards or records this core does not own are refused by the decoder's caller.
    func apply(_ repair: RecoveryRepair, nowMilliseconds now: Int64) {
        switch repair {
        case .changeHolds(let id, let origin, let change, let shards):
            applyPartChange(change, id: id, origin: origin, shards: shards)
        case .forgetRecord(let homeShard, let id):
            guard let record = shard(homeShard).records[id] else { return }
            for shardIndex in heldShards(of: record, onCore: index) {
                shard(shardIndex).changeHold(id, origin: .local, .release)
            }
            shard(homeShard).setRecord(nil, for: id)
        case .settleRecord(let homeShard, let id, let state):
            guard let record = shard(homeShard).records[id], record.state != state else { return }
            applyTransition(TransitionEntry(id: id, state: state, acknowledge: false), homeShard: homeShard, lsn: 0,
                            nowMilliseconds: now)
        case .clearAcknowledgements(let homeShard, let id):
            let home = shard(homeShard)
            guard var record = home.records[id], record.acknowledgementsAwaited > 0 else { return }
            record.acknowledgementsAwaited = 0
            if record.state != .held {
                home.noteFinished(id, sinceMilliseconds: record.settledAtMilliseconds)
            }
            home.setRecord(record, for: id)
        }
    }

    /// The shard a repair changes (to check that a replayed repair belongs to this core).
    static func shardsTouched(by repair: RecoveryRepair) -> [Int] {
        switch repair {
        case .changeHolds(_, _, _, let shards): shards
        case .forgetRecord(let homeShard, _), .settleRecord(let homeShard, _, _),
             .clearAcknowledgements(let homeShard, _): [homeShard]
        }
    }
}
