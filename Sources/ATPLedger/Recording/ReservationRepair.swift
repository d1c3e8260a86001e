/// One repair recovery's normalisation pass makes to a reservation left half-done by a crash
/// (`Engine.normalizeAfterReplay()`). Recorded like any input, so a later replay repeats it.
enum ReservationRepair: Equatable {
    /// Part shard: give back the units the id holds there (reserved or committed).
    case releaseHold(shard: Int, id: ReservationID)
    /// Part shard: turn the id's reserved units into committed units.
    case commitHold(shard: Int, id: ReservationID)
    /// Home shard: forget the record (a reserve that was never answered).
    case forgetRecord(shard: Int, id: ReservationID)
    /// Home shard: settle the record in `state` (a commit or release rolled forward).
    case settleRecord(shard: Int, id: ReservationID, state: ReservationState)

    var shard: Int {
        switch self {
        case .releaseHold(let shard, _), .commitHold(let shard, _), .forgetRecord(let shard, _),
             .settleRecord(let shard, _, _): shard
        }
    }

    func encode(into writer: RecordWriter) {
        switch self {
        case .releaseHold(let shard, let id): encode(1, shard, id, 0, writer)
        case .commitHold(let shard, let id): encode(2, shard, id, 0, writer)
        case .forgetRecord(let shard, let id): encode(3, shard, id, 0, writer)
        case .settleRecord(let shard, let id, let state): encode(4, shard, id, state.rawValue, writer)
        }
    }

    private func encode(_ tag: UInt8, _ shard: Int, _ id: ReservationID, _ state: UInt8, _ writer: RecordWriter) {
        writer.put(tag)
        writer.put(UInt32(shard))
        writer.put(id)
        writer.put(state)
    }

    static func decode(_ reader: inout RecordReader, shardCount: Int) throws(RecordDecodingError) -> ReservationRepair {
        let tag = try reader.read(UInt8.self)
        let shard = try reader.readShard(shardCount: shardCount)
        let id = try reader.readID()
        let stateCode = try reader.read(UInt8.self)
        switch tag {
        case 1: return .releaseHold(shard: shard, id: id)
        case 2: return .commitHold(shard: shard, id: id)
        case 3: return .forgetRecord(shard: shard, id: id)
        case 4:
            guard let state = ReservationState(rawValue: stateCode), state != .held else {
                throw RecordDecodingError("repair state \(stateCode)")
            }
            return .settleRecord(shard: shard, id: id, state: state)
        default: throw RecordDecodingError("repair tag \(tag)")
        }
    }
}

extension Shard {
    /// Applies a repair to this shard (worker thread).
    func apply(_ repair: ReservationRepair, nowMilliseconds: Int64) {
        switch repair {
        case .releaseHold(_, let id): releaseHold(id)
        case .commitHold(_, let id): commitHold(id)
        case .forgetRecord(_, let id): records[id] = nil
        case .settleRecord(_, let id, let state):
            guard let record = records[id] else { return }
            record.phase = .settled(state)
            record.outstanding = 0
            record.currentCompletion = nil
            record.deferred = []
            if state != .committed { record.partShards = [] }
            record.settledAtMilliseconds = nowMilliseconds
            finishedOutcomes.append(FinishedOutcome(id: id, settledAtMilliseconds: nowMilliseconds))
        }
    }
}
