/// Decides, from the whole image, which holds and records each shard gets back.
///
/// Version 2 images (per-core cuts of the current engine) are restored as they are: each worker's
/// part is its state after its journal up to its mark, and recovery resolves reservations between
/// cores after replaying the journals. The plan only checks that every cell's reserved and committed
/// buckets equal its holds (a snapshot that disagrees is damaged).
///
/// Version 1 images came from a cut that left reservations half-way between shards; the plan
/// resolves them the way version 1 did, trusting the home record:
///
/// | home record | reserved hold on a part | committed hold on a part |
/// | --- | --- | --- |
/// | held | kept (a part shard of the record) | kept as is, not a part (a forgotten older reservation's) |
/// | committed | kept, turned committed (the commit was on its way) | kept (a part shard) |
/// | released | dropped (the release was on its way) | dropped |
/// | expired, refused, none | dropped (units of a reservation nobody holds) | kept (a forgotten committed reservation's) |
///
/// and the cells' reserved and committed buckets are recomputed from the kept holds.
struct RestorePlan {
    var holdsByShard: [[HoldImage]]
    var recordsByShard: [[RestoredRecord]]
    var dedupWindowsByShard: [[DedupWindowImage]]

    init(image: LedgerImage, workerCount: Int) throws(LedgerImageError) {
        let shardCount = image.shardCount
        holdsByShard = Array(repeating: [], count: shardCount)
        recordsByShard = Array(repeating: [], count: shardCount)
        dedupWindowsByShard = Array(repeating: [], count: shardCount)
        for window in image.dedupWindows { dedupWindowsByShard[window.shard].append(window) }
        if image.version == 1 {
            try planVersion1(image)
        } else {
            try planCurrent(image, workerCount: workerCount)
        }
    }

    private mutating func planCurrent(_ image: LedgerImage, workerCount: Int) throws(LedgerImageError) {
        let shardCount = image.shardCount
        var unitsByCell: [CellKey: Int64] = [:]
        for hold in image.holds {
            for line in hold.lines {
                let key = CellKey(sku: line.sku, location: line.location, committed: hold.isCommitted)
                unitsByCell[key, default: 0] += Int64(line.units)
            }
        }
        for shard in 0..<shardCount {
            for cell in image.shardCells[shard].cells {
                let reserved = unitsByCell[CellKey(sku: cell.sku, location: cell.location, committed: false)] ?? 0
                let committed = unitsByCell[CellKey(sku: cell.sku, location: cell.location, committed: true)] ?? 0
                guard Int64(cell.reserved) == reserved, Int64(cell.committed) == committed else {
                    throw .invalidCell(sku: cell.sku.rawValue, location: cell.location.rawValue,
                                       "reserved \(cell.reserved) / committed \(cell.committed) differ from its holds' "
                                       + "\(reserved) / \(committed)")
                }
            }
        }
        if image.workerMarks.count == workerCount {
            for hold in image.holds { holdsByShard[hold.shard].append(hold) }
            for reservation in image.reservations {
                let home = reservation.homeShard ?? ReservationHome.hashedShard(of: reservation.id, shardCount: shardCount)
                recordsByShard[home].append(RestoredRecord(image: reservation, partShards: []))
            }
        } else {
            planForOtherWorkers(image, workerCount: workerCount)
        }
    }

    /// Restoring with another worker count (no journal follows: the workers' journals belong to
    /// the old count): every hold is settled to its record's state as the image shows it (a part's
    /// tentative hold without a decision is dropped, as recovery would), hold origins become local
    /// and each record's parts are the new workers that hold its lines.
    private mutating func planForOtherWorkers(_ image: LedgerImage, workerCount: Int) {
        let shardCount = image.shardCount
        var recordsByID: [ReservationID: ReservationImage] = [:]
        for reservation in image.reservations { recordsByID[reservation.id] = reservation }
        for var hold in image.holds {
            let record = recordsByID[hold.id]
            let origin = (hold.originGeneration, hold.originPrepareLSN)
            let isLocal = origin == (0, 0)
            let matches = record.map { record in
                isLocal || record.parts.contains { ($0.generation, $0.prepareLSN) == origin }
            } ?? false
            switch (matches ? record?.state : nil) {
            case .held?: if hold.status == .tentative { hold.status = .held }
            case .committed?: hold.status = .committed
            default: if hold.status != .committed { continue }
            }
            hold.originGeneration = 0
            hold.originPrepareLSN = 0
            holdsByShard[hold.shard].append(hold)
        }
        for var reservation in image.reservations {
            let home = reservation.homeShard ?? ReservationHome.hashedShard(of: reservation.id, shardCount: shardCount)
            let homeWorker = home % workerCount
            let workers = Set(reservation.request.lines.map {
                (Int(image.skuPlacements.placement(of: $0.sku.rawValue)) & (shardCount - 1)) % workerCount
            }).subtracting([homeWorker])
            reservation.parts = reservation.state == .held || reservation.state == .committed
                ? workers.sorted().map { ReservationPartImage(worker: $0, generation: 0, prepareLSN: 0) } : []
            reservation.acknowledgementsAwaited = 0
            recordsByShard[home].append(RestoredRecord(image: reservation, partShards: []))
        }
    }

    private mutating func planVersion1(_ image: LedgerImage) throws(LedgerImageError) {
        let shardCount = image.shardCount
        var stateByID: [ReservationID: ReservationState] = [:]
        stateByID.reserveCapacity(image.reservations.count)
        for reservation in image.reservations { stateByID[reservation.id] = reservation.state }
        var partShardsByID: [ReservationID: [Int]] = [:]
        var unitsByCell: [CellKey: Int64] = [:]
        for var hold in image.holds {
            switch stateByID[hold.id] {
            case .held:
                if !hold.isCommitted { partShardsByID[hold.id, default: []].append(hold.shard) }
            case .committed:
                hold.status = .committed
                partShardsByID[hold.id, default: []].append(hold.shard)
            case .released:
                continue
            case .expired, .refused, nil:
                guard hold.isCommitted else { continue }
            }
            for line in hold.lines {
                let key = CellKey(sku: line.sku, location: line.location, committed: hold.isCommitted)
                let total = unitsByCell[key, default: 0] + Int64(line.units)
                guard total <= Int64(Int32.max) else {
                    throw .invalidHold(hold.id, shard: hold.shard, "holds on (\(line.sku), \(line.location)) exceed Int32")
                }
                unitsByCell[key] = total
            }
            holdsByShard[hold.shard].append(hold)
        }
        for reservation in image.reservations {
            let home = reservation.homeShard ?? ReservationHome.hashedShard(of: reservation.id, shardCount: shardCount)
            let parts: [Int]
            switch reservation.state {
            case .held, .committed: parts = (partShardsByID[reservation.id] ?? []).sorted()
            case .released, .expired, .refused: parts = []
            }
            recordsByShard[home].append(RestoredRecord(image: reservation, partShards: parts))
        }
    }

    private struct CellKey: Hashable {
        var sku: SKUID
        var location: LocationID
        var committed: Bool
    }
}
