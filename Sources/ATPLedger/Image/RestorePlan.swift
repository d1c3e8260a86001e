/// Decides, from the whole image, which holds and records each shard gets back. The cut is taken per
/// worker, so a reservation whose messages were between workers at the cut may look different on
/// its home shard and on its part shards; the plan resolves that the same way every time, trusting
/// the home record (the single authority for a reservation's state):
///
/// | home record | reserved hold on a part | committed hold on a part |
/// | --- | --- | --- |
/// | held | kept (a part shard of the record) | kept as is, not a part (a forgotten older reservation's) |
/// | committed | kept, turned committed (the commit was on its way) | kept (a part shard) |
/// | released | dropped (the release was on its way) | dropped |
/// | expired, refused, none | dropped (units of a reservation nobody holds) | kept (a forgotten committed reservation's) |
///
/// A record's part shards are the shards where it keeps a hold. Cells' reserved and committed
/// buckets are then recomputed from the kept holds, so they always agree.
struct RestorePlan {
    var holdsByShard: [[HoldImage]]
    var recordsByShard: [[RestoredRecord]]
    var dedupWindowsByShard: [[DedupWindowImage]]

    init(image: LedgerImage) throws(LedgerImageError) {
        let shardCount = image.shardCount
        var stateByID: [ReservationID: ReservationState] = [:]
        stateByID.reserveCapacity(image.reservations.count)
        for reservation in image.reservations { stateByID[reservation.id] = reservation.state }

        holdsByShard = Array(repeating: [], count: shardCount)
        var partShardsByID: [ReservationID: [Int]] = [:]
        var unitsByCell: [CellKey: Int64] = [:]
        for var hold in image.holds {
            switch stateByID[hold.id] {
            case .held:
                if !hold.isCommitted { partShardsByID[hold.id, default: []].append(hold.shard) }
            case .committed:
                hold.isCommitted = true
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

        recordsByShard = Array(repeating: [], count: shardCount)
        for reservation in image.reservations {
            let home = Int(truncatingIfNeeded: reservation.id.stableHash) & (shardCount - 1)
            let parts: [Int]
            switch reservation.state {
            case .held, .committed: parts = (partShardsByID[reservation.id] ?? []).sorted()
            case .released, .expired, .refused: parts = []
            }
            recordsByShard[home].append(RestoredRecord(image: reservation, partShards: parts))
        }

        dedupWindowsByShard = Array(repeating: [], count: shardCount)
        for window in image.dedupWindows { dedupWindowsByShard[window.shard].append(window) }
    }

    private struct CellKey: Hashable {
        var sku: SKUID
        var location: LocationID
        var committed: Bool
    }
}
