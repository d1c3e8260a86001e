import ATPLedger

/// The on-disk layout of a snapshot (docs/SNAPSHOT.md is its description; keep them in step).
/// Keys are big-endian where their order matters (mdb_dump lists cells by SKU id, then location
/// id); values are little-endian, fixed layouts.
enum SnapshotFormat {
    /// Bumped on any incompatible change. Version 2 added hold status and origin, reservation
    /// parts and awaited acknowledgements, and the workers' journal generations; version 3 the SKU
    /// placement, version 4 reservation home shards. A reader accepts versions 1 to 4 and refuses
    /// others.
    static let version: UInt32 = 4
    static let versionsRead: ClosedRange<UInt32> = 1...4

    /// The layout of reservations and holds (`LedgerImage.version`) of a format version: version 3
    /// only added the `skuPlacement` meta entry to version 2, version 4 each reservation's home shard.
    static func imageVersion(ofFormat version: UInt32) -> Int { min(Int(version), 2) }
    /// Named databases, in the order they are written (`meta` last).
    static let databases = ["names", "cells", "reservations", "holds", "channels", "dedup", "meta"]
    static let databasesMax = 8
    /// Bytes of a cell value.
    static let cellValueBytes = 44
    /// The file beside data.mdb holding the whole file's CRC-32C.
    static let checksumFileName = "data.mdb.crc32c"

    /// Keys of the `meta` database (ASCII).
    enum Meta {
        static let formatVersion = "formatVersion"
        static let snapshotID = "snapshotID"
        static let cutWallClockMilliseconds = "cutWallClockMilliseconds"
        static let clockMilliseconds = "clockMilliseconds"
        static let engineVersion = "engineVersion"
        static let shardCount = "shardCount"
        static let skuPlacement = "skuPlacement"
        static let dedupWindowSequences = "dedupWindowSequences"
        static let workerMarks = "workerMarks"
        static let workerGenerations = "workerGenerations"
        static let channelChangeSequence = "channelChangeSequence"
        static func count(_ database: String) -> String { "count.\(database)" }
        static func checksum(_ database: String) -> String { "checksum.\(database)" }
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    // MARK: - Names: key kind u8 + id u32 BE; value the UTF-8 bytes

    static func nameKey(kind: NameKind, id: UInt32) -> [UInt8] {
        var writer = ByteWriter(capacity: 5)
        writer.u8(kind.rawValue)
        writer.u32BigEndian(id)
        return writer.bytes
    }

    static func decodeNameKey(_ key: UnsafeRawBufferPointer) throws(Malformed) -> (NameKind, UInt32) {
        var reader = ByteReader(key)
        do {
            let kindCode = try reader.u8()
            let id = try reader.u32BigEndian()
            guard reader.isAtEnd, let kind = NameKind(rawValue: kindCode), kind != .reservation else {
                throw Malformed("bad names key")
            }
            return (kind, id)
        } catch is ByteReader.Truncated {
            throw Malformed("short names key")
        } catch {
            throw Malformed("bad names key")
        }
    }

    // MARK: - Cells: key sku u32 BE + location u32 BE; value 44 bytes LE

    static func appendCellKey(_ cell: StockCell, to writer: inout ByteWriter) {
        writer.u32BigEndian(cell.sku.rawValue)
        writer.u32BigEndian(cell.location.rawValue)
    }

    static func appendCellValue(_ cell: StockCell, to writer: inout ByteWriter) {
        for bucket in [cell.onHand, cell.damaged, cell.quarantine, cell.committed, cell.reserved, cell.inbound,
                       cell.returnPending, cell.safetyStock] {
            writer.i32(bucket)
        }
        writer.u32(cell.version)
        writer.i64(cell.lastEventMilliseconds)
    }

    static func decodeCell(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(Malformed) -> StockCell {
        guard key.count == 8, value.count == cellValueBytes else {
            throw Malformed("cell entry of \(key.count) + \(value.count) bytes, expected 8 + \(cellValueBytes)")
        }
        var keyReader = ByteReader(key)
        var reader = ByteReader(value)
        do {
            var cell = StockCell(sku: SKUID(try keyReader.u32BigEndian()), location: LocationID(try keyReader.u32BigEndian()))
            cell.onHand = try reader.i32()
            cell.damaged = try reader.i32()
            cell.quarantine = try reader.i32()
            cell.committed = try reader.i32()
            cell.reserved = try reader.i32()
            cell.inbound = try reader.i32()
            cell.returnPending = try reader.i32()
            cell.safetyStock = try reader.i32()
            cell.version = try reader.u32()
            cell.lastEventMilliseconds = try reader.i64()
            return cell
        } catch {
            throw Malformed("short cell entry")
        }
    }

    // MARK: - Channels: key id u32 BE

    static func channelKey(_ id: ChannelID) -> [UInt8] {
        var writer = ByteWriter(capacity: 4)
        writer.u32BigEndian(id.rawValue)
        return writer.bytes
    }

    static func channelValue(_ channel: ChannelDefinition) -> [UInt8] {
        var writer = ByteWriter(capacity: 16 + 4 * channel.locations.count)
        writer.i64(channel.bufferUnits)
        writer.u32(UInt32(channel.capPercent))
        writer.u32(UInt32(channel.locations.count))
        for location in channel.locations { writer.u32(location.rawValue) }
        return writer.bytes
    }

    static func decodeChannel(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(Malformed) -> ChannelDefinition {
        do {
            var keyReader = ByteReader(key)
            let id = ChannelID(try keyReader.u32BigEndian())
            var reader = ByteReader(value)
            let buffer = try reader.i64()
            let cap = Int(try reader.u32())
            let count = try reader.count(itemBytes: 4)
            var locations: [LocationID] = []
            locations.reserveCapacity(count)
            for _ in 0..<count { locations.append(LocationID(try reader.u32())) }
            guard keyReader.isAtEnd, reader.isAtEnd else { throw Malformed("trailing bytes in a channel entry") }
            return ChannelDefinition(id: id, locations: locations, bufferUnits: buffer, capPercent: cap)
        } catch let error as Malformed {
            throw error
        } catch {
            throw Malformed("short channel entry")
        }
    }

    // MARK: - Dedup: key shard u32 BE + source u32 BE

    static func dedupKey(shard: Int, source: SourceID) -> [UInt8] {
        var writer = ByteWriter(capacity: 8)
        writer.u32BigEndian(UInt32(shard))
        writer.u32BigEndian(source.rawValue)
        return writer.bytes
    }

    static func dedupValue(_ window: DedupWindowImage) -> [UInt8] {
        var writer = ByteWriter(capacity: 13 + 8 * window.words.count)
        writer.u8(window.newest == nil ? 0 : 1)
        writer.u64(window.newest ?? 0)
        writer.u32(UInt32(window.words.count))
        for word in window.words { writer.u64(word) }
        return writer.bytes
    }

    static func decodeDedup(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) throws(Malformed) -> DedupWindowImage {
        do {
            var keyReader = ByteReader(key)
            let shard = Int(try keyReader.u32BigEndian())
            let source = SourceID(try keyReader.u32BigEndian())
            var reader = ByteReader(value)
            let hasNewest = try reader.u8()
            let newest = try reader.u64()
            let count = try reader.count(itemBytes: 8)
            var words: [UInt64] = []
            words.reserveCapacity(count)
            for _ in 0..<count { words.append(try reader.u64()) }
            guard keyReader.isAtEnd, reader.isAtEnd, hasNewest <= 1 else { throw Malformed("malformed dedup entry") }
            return DedupWindowImage(shard: shard, source: source, newest: hasNewest == 1 ? newest : nil, words: words)
        } catch let error as Malformed {
            throw error
        } catch {
            throw Malformed("short dedup entry")
        }
    }

    // MARK: - Holds: key shard u32 BE + reservation id bytes

    static func holdKey(_ hold: HoldImage) -> [UInt8] {
        var writer = ByteWriter(capacity: 4 + ReservationID.bytesMax)
        writer.u32BigEndian(UInt32(hold.shard))
        hold.id.withBytes { writer.raw($0) }
        return writer.bytes
    }

    static func holdValue(_ hold: HoldImage) -> [UInt8] {
        var writer = ByteWriter(capacity: 17 + 12 * hold.lines.count)
        writer.u8(hold.status.rawValue)
        writer.u32(UInt32(hold.lines.count))
        for line in hold.lines {
            writer.u32(line.sku.rawValue)
            writer.u32(line.location.rawValue)
            writer.i32(line.units)
        }
        writer.u64(hold.originGeneration)
        writer.u64(hold.originPrepareLSN)
        return writer.bytes
    }

    /// A hold entry; version 1 has `isCommitted u8` (0/1) in place of the status and no origin.
    static func decodeHold(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, version: UInt32) throws(Malformed)
        -> HoldImage
    {
        do {
            var keyReader = ByteReader(key)
            let shard = Int(try keyReader.u32BigEndian())
            let id = try reservationID(try keyReader.raw(keyReader.remaining))
            var reader = ByteReader(value)
            let statusCode = try reader.u8()
            let count = try reader.count(itemBytes: 12)
            var lines: [HoldImage.Line] = []
            for _ in 0..<count {
                lines.append(HoldImage.Line(sku: SKUID(try reader.u32()), location: LocationID(try reader.u32()),
                                            units: try reader.i32()))
            }
            if version == 1 {
                guard reader.isAtEnd, statusCode <= 1 else { throw Malformed("malformed hold entry") }
                return HoldImage(shard: shard, id: id, isCommitted: statusCode == 1, lines: lines)
            }
            let generation = try reader.u64()
            let prepareLSN = try reader.u64()
            guard reader.isAtEnd, let status = HoldImage.Status(rawValue: statusCode) else {
                throw Malformed("malformed hold entry")
            }
            return HoldImage(shard: shard, id: id, status: status, originGeneration: generation,
                             originPrepareLSN: prepareLSN, lines: lines)
        } catch let error as Malformed {
            throw error
        } catch {
            throw Malformed("short hold entry")
        }
    }

    // MARK: - Reservations: key reservation id bytes

    static func reservationKey(_ reservation: ReservationImage) -> [UInt8] {
        reservation.id.withBytes { Array($0) }
    }

    static func reservationValue(_ reservation: ReservationImage) -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + 64 * reservation.request.lines.count)
        writer.u8(reservation.state.rawValue)
        writer.u8(reservation.request.mode.rawValue)
        writer.i64(reservation.request.ttlMilliseconds)
        writer.i64(reservation.expiresAtMilliseconds)
        writer.i64(reservation.settledAtMilliseconds)
        writer.u32(UInt32(reservation.request.lines.count))
        for (line, grant) in zip(reservation.request.lines, reservation.lineGrants) {
            writer.u32(line.sku.rawValue)
            switch line.target {
            case .location(let location):
                writer.u8(0)
                writer.u8(0)
                writer.u32(location.rawValue)
            case .channel(let channel, let allowSplit):
                writer.u8(1)
                writer.u8(allowSplit ? 1 : 0)
                writer.u32(channel.rawValue)
            }
            writer.i64(line.quantity)
            writer.i64(grant.requested)
            writer.i64(grant.granted)
            writer.u32(UInt32(grant.allocations.count))
            for allocation in grant.allocations {
                writer.u32(allocation.location.rawValue)
                writer.i64(allocation.quantity)
            }
        }
        writer.u32(UInt32(reservation.acknowledgementsAwaited))
        writer.u32(UInt32(reservation.parts.count))
        for part in reservation.parts {
            writer.u32(UInt32(part.worker))
            writer.u64(part.generation)
            writer.u64(part.prepareLSN)
        }
        writer.u32(UInt32(reservation.homeShard ?? Int(UInt32.max)))
        return writer.bytes
    }

    /// A reservation entry; version 1 ends after the lines (no acknowledgements, no parts), versions
    /// 2 and 3 after the parts (no home shard: the id's hashed shard).
    static func decodeReservation(key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, version: UInt32)
        throws(Malformed) -> ReservationImage
    {
        do {
            let id = try reservationID(key)
            var reader = ByteReader(value)
            guard let state = ReservationState(rawValue: try reader.u8()),
                  let mode = ReservationMode(rawValue: try reader.u8())
            else { throw Malformed("reservation \(id): unknown state or mode") }
            let ttl = try reader.i64()
            let expiresAt = try reader.i64()
            let settledAt = try reader.i64()
            let count = try reader.count(itemBytes: 38)
            var lines: [ReservationLine] = []
            var grants: [LineGrant] = []
            for _ in 0..<count {
                let sku = SKUID(try reader.u32())
                let kind = try reader.u8()
                let allowSplit = try reader.u8()
                let target = try reader.u32()
                guard kind <= 1, allowSplit <= 1 else { throw Malformed("reservation \(id): unknown line target") }
                let quantity = try reader.i64()
                var grant = LineGrant(requested: try reader.i64(), granted: try reader.i64())
                let allocationCount = try reader.count(itemBytes: 12)
                for _ in 0..<allocationCount {
                    grant.allocations.append(LineAllocation(location: LocationID(try reader.u32()), quantity: try reader.i64()))
                }
                let lineTarget: ReservationLine.Target = kind == 0
                    ? .location(LocationID(target)) : .channel(ChannelID(target), allowSplit: allowSplit == 1)
                lines.append(ReservationLine(sku: sku, target: lineTarget, quantity: quantity))
                grants.append(grant)
            }
            var acknowledgementsAwaited = 0
            var parts: [ReservationPartImage] = []
            if version >= 2 {
                acknowledgementsAwaited = Int(try reader.u32())
                let partCount = try reader.count(itemBytes: 20)
                for _ in 0..<partCount {
                    parts.append(ReservationPartImage(worker: Int(try reader.u32()), generation: try reader.u64(),
                                                      prepareLSN: try reader.u64()))
                }
            }
            var homeShard: Int?
            if version >= 4 {
                let home = try reader.u32()
                homeShard = home == UInt32.max ? nil : Int(home)
            }
            guard reader.isAtEnd else { throw Malformed("reservation \(id): trailing bytes") }
            return ReservationImage(
                request: ReserveRequest(id: id, lines: lines, ttlMilliseconds: ttl, mode: mode), state: state,
                lineGrants: grants, expiresAtMilliseconds: expiresAt, settledAtMilliseconds: settledAt, parts: parts,
                acknowledgementsAwaited: acknowledgementsAwaited, homeShard: homeShard)
        } catch let error as Malformed {
            throw error
        } catch {
            throw Malformed("short reservation entry")
        }
    }

    // MARK: - Meta: the workers' journal generations

    static func workerGenerationsValue(_ generations: [WorkerGenerationImage]) -> [UInt8] {
        var writer = ByteWriter()
        for worker in generations {
            writer.u64(worker.generation)
            writer.u32(UInt32(worker.ends.count))
            for end in worker.ends {
                writer.u64(end.generation)
                writer.u64(end.lastLSN)
            }
        }
        return writer.bytes
    }

    static func decodeWorkerGenerations(_ reader: inout ByteReader) throws -> [WorkerGenerationImage] {
        var result: [WorkerGenerationImage] = []
        while !reader.isAtEnd {
            let generation = try reader.u64()
            let count = try reader.count(itemBytes: 16)
            var ends: [WorkerGenerationImage.GenerationEnd] = []
            for _ in 0..<count { ends.append(.init(generation: try reader.u64(), lastLSN: try reader.u64())) }
            result.append(WorkerGenerationImage(generation: generation, ends: ends))
        }
        return result
    }

    private static func reservationID(_ bytes: UnsafeRawBufferPointer) throws(Malformed) -> ReservationID {
        do { return try ReservationID(bytes: bytes) } catch { throw Malformed("invalid reservation id: \(error)") }
    }
}
