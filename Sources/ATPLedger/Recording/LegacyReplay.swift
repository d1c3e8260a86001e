/// Replaying journals written by version 1 of the engine (record kinds 3, 4, 5 and 8), so that a
/// data directory from before the crash-consistent reservations can be upgraded in place.
///
/// Version 1 journaled requests and shard-to-shard messages, and each receiving worker decided again
/// when replaying. Its journals can therefore hold states no single run produced (the reason for
/// the change): an answer for a reserve a snapshot left out, a release seen at a part whose home
/// never expired the reservation. This replay follows the version-1 rules where they apply and
/// skips, counting them, the messages that find nothing waiting. Recovery's `Resolution` then
/// settles every version-1 reservation so that its record and holds agree, journals that as
/// repairs, and from then on the core journals only the current kinds.
///
/// Version-1 holds are plain holds (`HoldOrigin.local`, never tentative); version-1 records in
/// flight live in `LegacyReservations` until recovery settles them.
final class LegacyReservations {
    /// A version-1 home record with an operation between its shards.
    struct InFlight {
        enum Phase: Equatable {
            case reserving, committing
            case releasing(settleAs: ReservationState)
        }
        var request: ReserveRequest
        var phase: Phase
        var lineGrants: [LineGrant]
        var expiresAtMilliseconds: Int64
        var outstanding: Int
        var partShards: [Int]
        /// Operations that arrived meanwhile, run in order once it settles.
        var deferred: [ReservationOperation] = []
    }

    /// Records with an operation in flight, by id.
    var inFlight: [ReservationID: InFlight] = [:]
    /// The shards holding units of each settled version-1 record (held or committed), by id.
    var partShards: [ReservationID: [Int]] = [:]
    /// Messages that found nothing waiting for them (skipped).
    var messagesSkipped = 0
}

/// A version-1 shard message, as journaled by its receiver.
private enum LegacyMessage {
    case hold(request: ReserveRequest, lineIndices: [Int], home: Int)
    case held(id: ReservationID, from: Int, grants: [(index: Int, grant: LineGrant)])
    case commit(id: ReservationID, home: Int)
    case release(id: ReservationID, home: Int?)
    case acknowledged(id: ReservationID)
}

extension CoreLedger {
    /// The version-1 state, created by the first version-1 record or image.
    var legacyReservations: LegacyReservations {
        if let legacy { return legacy }
        let created = LegacyReservations()
        legacy = created
        return created
    }

    /// Applies one version-1 record.
    func replayLegacy(_ kind: WorkerInputKind, _ reader: inout RecordReader) throws(RecordDecodingError) {
        let shardCount = configuration.shardCount
        switch kind {
        case .legacyReservation:
            let now = try reader.read(Int64.self)
            let home = try ownedShard(&reader)
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
            guard hashedHomeShardIndex(of: id) == home else { throw RecordDecodingError("home shard of \(id)") }
            legacyPerform(operation, id: id, home: home, nowMilliseconds: now)
        case .legacyShardMessage:
            let now = try reader.read(Int64.self)
            let target = try ownedShard(&reader)
            let message = try reader.readLegacyMessage(shardCount: shardCount)
            try reader.expectEnd()
            legacyReceive(message, target: target, nowMilliseconds: now)
        case .legacyExpiry:
            let now = try reader.read(Int64.self)
            let shard = try ownedShard(&reader)
            try reader.expectEnd()
            legacyExpireDue(shard, nowMilliseconds: now)
        case .legacyNormalization:
            let now = try reader.read(Int64.self)
            let tag = try reader.read(UInt8.self)
            let shard = try ownedShard(&reader)
            let id = try reader.readID()
            let stateCode = try reader.read(UInt8.self)
            try reader.expectEnd()
            switch tag {
            case 1: self.shard(shard).changeHold(id, origin: nil, .release)
            case 2: self.shard(shard).changeHold(id, origin: nil, .commit)
            case 3:
                self.shard(shard).setRecord(nil, for: id)
                legacyReservations.inFlight[id] = nil
                legacyReservations.partShards[id] = nil
            case 4:
                guard let state = ReservationState(rawValue: stateCode), state != .held else {
                    throw RecordDecodingError("repair state \(stateCode)")
                }
                legacySettle(id, home: shard, as: state, nowMilliseconds: now, runDeferred: false)
            default:
                throw RecordDecodingError("repair tag \(tag)")
            }
        default:
            preconditionFailure("\(kind) is not a version-1 kind")
        }
    }

    // MARK: - Home side (version 1)

    private func legacyPerform(_ operation: ReservationOperation, id: ReservationID, home: Int, nowMilliseconds now: Int64) {
        let legacy = legacyReservations
        if legacy.inFlight[id] != nil {
            legacy.inFlight[id]!.deferred.append(operation)
            return
        }
        if let record = shard(home).records[id] {
            if record.state == .held && record.expiresAtMilliseconds <= now {
                legacyExpire(id, home: home, nowMilliseconds: now)
            }
            legacyContinue(operation, id: id, home: home, nowMilliseconds: now)
            return
        }
        guard case .reserve(let request) = operation, isValidLegacy(request) else { return }
        let shardsOfLines = Set(request.lines.map { shardIndex(of: $0.sku) })
        legacy.inFlight[id] = LegacyReservations.InFlight(
            request: request, phase: .reserving, lineGrants: request.lines.map { LineGrant(requested: $0.quantity) },
            expiresAtMilliseconds: now + request.ttlMilliseconds, outstanding: shardsOfLines.count, partShards: [])
    }

    private func isValidLegacy(_ request: ReserveRequest) -> Bool {
        !request.lines.isEmpty && request.lines.count <= configuration.reservationLinesMax
            && request.ttlMilliseconds >= 1 && request.ttlMilliseconds <= configuration.reservationTTLMillisecondsMax
            && request.lines.allSatisfy { $0.quantity > 0 && $0.quantity <= configuration.quantityMax }
    }

    private func legacyContinue(_ operation: ReservationOperation, id: ReservationID, home: Int, nowMilliseconds now: Int64) {
        guard let record = shard(home).records[id] else { return }
        let parts = legacyReservations.partShards[id] ?? []
        switch (operation, record.state) {
        case (.commit, .held):
            shard(home).counters.reservationsCommitted &+= 1
            legacyReservations.inFlight[id] = LegacyReservations.InFlight(
                request: record.request, phase: .committing, lineGrants: record.lineGrants,
                expiresAtMilliseconds: record.expiresAtMilliseconds, outstanding: max(parts.count, 1), partShards: parts)
        case (.release, .held), (.release, .committed):
            shard(home).counters.reservationsReleased &+= 1
            legacyReservations.inFlight[id] = LegacyReservations.InFlight(
                request: record.request, phase: .releasing(settleAs: .released), lineGrants: record.lineGrants,
                expiresAtMilliseconds: record.expiresAtMilliseconds, outstanding: max(parts.count, 1), partShards: parts)
        default:
            break
        }
    }

    /// Settles a version-1 record: its state only (version 1 changed holds by messages, which are
    /// journaled by the shards that received them).
    private func legacySettle(_ id: ReservationID, home: Int, as state: ReservationState, nowMilliseconds now: Int64,
                              runDeferred: Bool) {
        let legacy = legacyReservations
        let flight = legacy.inFlight.removeValue(forKey: id)
        let homeShard = shard(home)
        var record: ReservationRecord
        if let existing = homeShard.records[id] {
            record = existing
        } else if let flight {
            record = ReservationRecord(request: flight.request, state: state, lineGrants: flight.lineGrants,
                                       expiresAtMilliseconds: flight.expiresAtMilliseconds)
        } else {
            return
        }
        if let flight {
            record.lineGrants = flight.lineGrants
            record.parts = legacyParts(flight.partShards)
        }
        record.state = state
        if state == .released || state == .refused || state == .expired {
            legacy.partShards[id] = nil
        } else if let flight {
            legacy.partShards[id] = flight.partShards
        }
        if state != .held {
            record.settledAtMilliseconds = now
            homeShard.noteFinished(id, sinceMilliseconds: now)
        }
        homeShard.setRecord(record, for: id)
        if runDeferred, let flight {
            for operation in flight.deferred where legacy.inFlight[id] == nil {
                legacyPerform(operation, id: id, home: home, nowMilliseconds: now)
            }
        }
        forgetOldOutcomes(homeShard, nowMilliseconds: now)
    }

    /// A version-1 record's part cores: the other cores owning its part shards (local origin).
    func legacyParts(_ partShards: [Int]) -> [PartReference] {
        Set(partShards.map(coreIndex(ofShard:))).subtracting([index]).sorted().map { PartReference(core: $0, origin: .local) }
    }

    private func legacyExpire(_ id: ReservationID, home: Int, nowMilliseconds now: Int64) {
        shard(home).counters.reservationsExpired &+= 1
        legacySettle(id, home: home, as: .expired, nowMilliseconds: now, runDeferred: true)
    }

    private func legacyExpireDue(_ home: Int, nowMilliseconds now: Int64) {
        let homeShard = shard(home)
        let due = homeShard.expiries.due(nowMilliseconds: now)
            .filter { ExpiryQueue.position(of: $0) == homeShard.expiryPosition }
            .map { homeShard.records[slot: ExpiryQueue.slot(of: $0)].id }
        for id in due where homeShard.records[id]?.state == .held && legacyReservations.inFlight[id] == nil {
            legacyExpire(id, home: home, nowMilliseconds: now)
        }
    }

    // MARK: - Messages (version 1)

    private func legacyReceive(_ message: LegacyMessage, target: Int, nowMilliseconds now: Int64) {
        let legacy = legacyReservations
        switch message {
        case .hold(let request, let lineIndices, _):
            legacyHold(request, lineIndices: lineIndices, shard: target)
        case .held(let id, let from, let grants):
            guard var flight = legacy.inFlight[id], flight.phase == .reserving, flight.outstanding > 0 else {
                legacy.messagesSkipped += 1
                return
            }
            var grantedHere: Int64 = 0
            for (lineIndex, grant) in grants where lineIndex < flight.lineGrants.count {
                flight.lineGrants[lineIndex] = grant
                grantedHere += grant.granted
            }
            if grantedHere > 0 { flight.partShards.append(from) }
            flight.outstanding -= 1
            legacy.inFlight[id] = flight
            guard flight.outstanding == 0 else { return }
            legacyDecide(id, home: target, nowMilliseconds: now)
        case .commit(let id, _):
            shard(target).changeHold(id, origin: nil, .commit)
        case .release(let id, _):
            shard(target).changeHold(id, origin: nil, .release)
        case .acknowledged(let id):
            guard var flight = legacy.inFlight[id], flight.phase != .reserving, flight.outstanding > 0 else {
                legacy.messagesSkipped += 1
                return
            }
            flight.outstanding -= 1
            legacy.inFlight[id] = flight
            guard flight.outstanding == 0 else { return }
            switch flight.phase {
            case .committing: legacySettle(id, home: target, as: .committed, nowMilliseconds: now, runDeferred: true)
            case .releasing(let state):
                if state == .refused { shard(target).counters.reservationsRefused &+= 1 }
                legacySettle(id, home: target, as: state, nowMilliseconds: now, runDeferred: true)
            case .reserving: break
            }
        }
    }

    /// Version 1's decision once every part shard answered a reserve.
    private func legacyDecide(_ id: ReservationID, home: Int, nowMilliseconds now: Int64) {
        let legacy = legacyReservations
        guard var flight = legacy.inFlight[id] else { return }
        let total = flight.lineGrants.reduce(0) { $0 + $1.granted }
        let complete = flight.lineGrants.allSatisfy { $0.granted == $0.requested }
        if flight.request.mode == .allOrNothing && !complete && !flight.partShards.isEmpty {
            flight.lineGrants = flight.request.lines.map { LineGrant(requested: $0.quantity) }
            flight.phase = .releasing(settleAs: .refused)
            flight.outstanding = flight.partShards.count
            legacy.inFlight[id] = flight
            return
        }
        let homeShard = shard(home)
        if total == 0 {
            homeShard.counters.reservationsRefused &+= 1
            legacySettle(id, home: home, as: .refused, nowMilliseconds: now, runDeferred: true)
            return
        }
        if complete { homeShard.counters.reservationsGranted &+= 1 } else { homeShard.counters.reservationsPartial &+= 1 }
        legacySettle(id, home: home, as: .held, nowMilliseconds: now, runDeferred: true)
    }

    /// Version 1's hold on a part shard: all-or-nothing per shard; an id holds once per shard.
    private func legacyHold(_ request: ReserveRequest, lineIndices: [Int], shard shardIndex: Int) {
        let shard = shard(shardIndex)
        guard shard.holds[request.id] == nil else { return }
        var taken: [Int: Int64] = [:]
        var lines: [HoldLine] = []
        for lineIndex in lineIndices {
            let line = request.lines[lineIndex]
            guard self.shardIndex(of: line.sku) == shardIndex else { return }
            var granted: Int64 = 0
            let before = taken
            shard.allocate(line, mode: request.mode, taken: before, channels: channels) { slot, units in
                taken[shard.takenKey(slot), default: 0] += units
                lines.append(HoldLine(slot: slot, units: Int32(units)))
                granted += units
            }
            if request.mode == .allOrNothing && granted < line.quantity { return }
        }
        shard.addHold(request.id, status: .held, origin: .local, lines: lines)
    }
}

extension RecordReader {
    fileprivate mutating func readLegacyMessage(shardCount: Int) throws(RecordDecodingError) -> LegacyMessage {
        switch try read(UInt8.self) {
        case 1:
            let home = try readShard(shardCount: shardCount)
            let count = try readCount(itemBytes: 4)
            var indices: [Int] = []
            for _ in 0..<count { indices.append(Int(try read(UInt32.self))) }
            let request = try readReserveRequest()
            guard indices.allSatisfy({ $0 < request.lines.count }) else { throw RecordDecodingError("line index") }
            return .hold(request: request, lineIndices: indices, home: home)
        case 2:
            let id = try readID()
            let from = try readShard(shardCount: shardCount)
            let count = try readCount(itemBytes: 24)
            var grants: [(index: Int, grant: LineGrant)] = []
            for _ in 0..<count { grants.append((Int(try read(UInt32.self)), try readGrant())) }
            return .held(id: id, from: from, grants: grants)
        case 3:
            let id = try readID()
            return .commit(id: id, home: try readShard(shardCount: shardCount))
        case 4:
            let id = try readID()
            let hasHome = try read(UInt8.self) != 0
            let home = try readShard(shardCount: shardCount)
            return .release(id: id, home: hasHome ? home : nil)
        case 5:
            return .acknowledged(id: try readID())
        case let tag:
            throw RecordDecodingError("shard message tag \(tag)")
        }
    }
}
