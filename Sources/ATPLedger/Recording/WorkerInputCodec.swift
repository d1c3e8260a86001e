/// Encoders and decoders of the worker records' parts (layouts in docs/DURABILITY.md). Name ids are
/// written with `put(name:kind:)` so that the recorder defines them first.
extension RecordWriter {
    func put(_ request: ReserveRequest) {
        put(request.id)
        put(request.mode.rawValue)
        put(request.ttlMilliseconds)
        put(UInt32(request.lines.count))
        for line in request.lines {
            put(name: line.sku.rawValue, kind: .sku)
            switch line.target {
            case .location(let location):
                put(UInt8(0))
                put(UInt8(0))
                // Unknown names (`.unknown`, UInt32.max) are not defined: only ids the catalog has.
                put(name: location.rawValue, kind: .location)
            case .channel(let channel, let allowSplit):
                put(UInt8(1))
                put(UInt8(allowSplit ? 1 : 0))
                put(name: channel.rawValue, kind: .channel)
            }
            put(line.quantity)
        }
    }

    func put(_ grant: LineGrant) {
        put(grant.requested)
        put(grant.granted)
        put(UInt32(grant.allocations.count))
        for allocation in grant.allocations {
            put(name: allocation.location.rawValue, kind: .location)
            put(allocation.quantity)
        }
    }

    func put(_ origin: HoldOrigin) {
        put(origin.generation)
        put(origin.prepareLSN)
    }

    func put(_ definition: ChannelDefinition) {
        put(name: definition.id.rawValue, kind: .channel)
        put(definition.bufferUnits)
        put(UInt32(definition.capPercent))
        put(UInt32(definition.locations.count))
        for location in definition.locations { put(name: location.rawValue, kind: .location) }
    }
}

extension RecordReader {
    mutating func readShard(shardCount: Int) throws(RecordDecodingError) -> Int {
        let shard = Int(try read(UInt32.self))
        guard shard < shardCount else { throw RecordDecodingError("shard \(shard) of \(shardCount)") }
        return shard
    }

    mutating func readReserveRequest() throws(RecordDecodingError) -> ReserveRequest {
        let id = try readID()
        guard let mode = ReservationMode(rawValue: try read(UInt8.self)) else { throw RecordDecodingError("mode") }
        let ttl = try read(Int64.self)
        let count = try readCount(itemBytes: 18)
        var lines: [ReservationLine] = []
        lines.reserveCapacity(count)
        for _ in 0..<count {
            let sku = SKUID(try read(UInt32.self))
            let targetKind = try read(UInt8.self)
            let allowSplit = try read(UInt8.self) != 0
            let targetID = try read(UInt32.self)
            let quantity = try read(Int64.self)
            switch targetKind {
            case 0: lines.append(ReservationLine(sku: sku, target: .location(LocationID(targetID)), quantity: quantity))
            case 1: lines.append(ReservationLine(sku: sku, target: .channel(ChannelID(targetID), allowSplit: allowSplit),
                                                 quantity: quantity))
            default: throw RecordDecodingError("line target kind \(targetKind)")
            }
        }
        return ReserveRequest(id: id, lines: lines, ttlMilliseconds: ttl, mode: mode)
    }

    mutating func readGrant() throws(RecordDecodingError) -> LineGrant {
        var grant = LineGrant(requested: try read(Int64.self), granted: try read(Int64.self))
        let count = try readCount(itemBytes: 12)
        for _ in 0..<count {
            grant.allocations.append(LineAllocation(location: LocationID(try read(UInt32.self)),
                                                    quantity: try read(Int64.self)))
        }
        return grant
    }

    mutating func readOrigin() throws(RecordDecodingError) -> HoldOrigin {
        HoldOrigin(generation: try read(UInt64.self), prepareLSN: try read(UInt64.self))
    }

    mutating func readChannelDefinition() throws(RecordDecodingError) -> ChannelDefinition {
        let id = ChannelID(try read(UInt32.self))
        let buffer = try read(Int64.self)
        let cap = Int(try read(UInt32.self))
        let count = try readCount(itemBytes: 4)
        var locations: [LocationID] = []
        locations.reserveCapacity(count)
        for _ in 0..<count { locations.append(LocationID(try read(UInt32.self))) }
        return ChannelDefinition(id: id, locations: locations, bufferUnits: buffer, capPercent: cap)
    }
}

extension RecordReader {
    /// Reads a `names` record's payload up to its end (docs/DURABILITY.md: kind, first id, count,
    /// each name's length and bytes), calling `body` with each name's kind, id and bytes in id order.
    mutating func readNames(
        _ body: (NameKind, Int, UnsafeRawBufferPointer) throws(RecordDecodingError) -> Void
    ) throws(RecordDecodingError) {
        guard let kind = NameKind(rawValue: try read(UInt8.self)), kind != .reservation else {
            throw RecordDecodingError("name kind")
        }
        let first = Int(try read(UInt32.self))
        let count = try readCount(itemBytes: 3)
        for id in first..<(first + count) {
            let length = Int(try read(UInt16.self))
            try body(kind, id, try readBytes(length))
        }
    }
}
