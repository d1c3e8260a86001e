/// Assembles a `LedgerImage` from parts read back from storage (the snapshot store), checking that
/// they fit together: `build()` refuses an image that would break the engine's invariants, so a
/// damaged snapshot fails here with a `LedgerImageError` instead of corrupting an engine.
///
/// Names arrive in id order per kind and cells in ascending (SKU id, location id) order; the other
/// parts in any order. Cost: O(1) amortised per part, O(cells + holds · log cells) for `build()`.
public struct LedgerImageBuilder {
    private let version: Int
    private let workerGenerations: [WorkerGenerationImage]
    private let channelChangeSequence: UInt64
    private let shardCount: Int
    private let shardBits: Int
    /// The SKUs' placement numbers, assigned as their names arrive.
    private var skuPlacements: SKUPlacementMap
    private let dedupWindowSequences: Int
    private let workerMarks: [UInt64]
    private let cutWallClockMilliseconds: Int64
    private let clockMilliseconds: Int64
    private var names = [NameListImage](repeating: NameListImage(), count: 4)
    private var shardCells: [ShardCellsImage]
    /// Slot of the last cell appended to each shard (to chain a SKU's cells).
    private var lastSlotOfShard: [UInt32]
    private var lastKey: UInt64?
    private var channels: [ChannelDefinition] = []
    private var reservations: [ReservationImage] = []
    private var holds: [HoldImage] = []
    private var dedupWindows: [DedupWindowImage] = []

    /// Starts an empty image of an engine with `shardCount` shards (a power of two, 1…4,096) and
    /// dedup windows of `dedupWindowSequences` (a power of two, 64…2^24). `version` is the layout
    /// of its reservations and holds (`LedgerImage.currentVersion`, or 1 for a version-1 snapshot);
    /// `workerGenerations` the workers' journal generations (one per mark; empty in version 1);
    /// `channelChangeSequence` the number of the newest channel change in the image's channels;
    /// `skuPlacement` how the engine placed SKUs (`.skuID` for snapshots that do not say).
    public init(version: Int = LedgerImage.currentVersion, workerGenerations: [WorkerGenerationImage] = [],
                channelChangeSequence: UInt64 = 0,
                shardCount: Int, skuPlacement: SKUPlacementScheme = .skuID, dedupWindowSequences: Int, workerMarks: [UInt64], cutWallClockMilliseconds: Int64,
                clockMilliseconds: Int64) throws(LedgerImageError) {
        guard shardCount >= 1, shardCount <= 4096, shardCount.nonzeroBitCount == 1 else {
            throw .invalidGeometry("shard count \(shardCount) is not a power of two from 1 to 4096")
        }
        guard dedupWindowSequences >= 64, dedupWindowSequences <= 1 << 24, dedupWindowSequences.nonzeroBitCount == 1 else {
            throw .invalidGeometry("dedup window of \(dedupWindowSequences) sequences is not a power of two from 64 to 2^24")
        }
        guard version == 1 || version == LedgerImage.currentVersion else {
            throw .invalidGeometry("image version \(version) is not 1 or \(LedgerImage.currentVersion)")
        }
        guard workerGenerations.isEmpty || workerGenerations.count == workerMarks.count else {
            throw .invalidGeometry("\(workerGenerations.count) worker generations for \(workerMarks.count) workers")
        }
        self.version = version
        self.workerGenerations = workerGenerations
        self.channelChangeSequence = channelChangeSequence
        self.shardCount = shardCount
        shardBits = shardCount.trailingZeroBitCount
        skuPlacements = SKUPlacementMap(scheme: skuPlacement, shardCount: shardCount)
        self.dedupWindowSequences = dedupWindowSequences
        self.workerMarks = workerMarks
        self.cutWallClockMilliseconds = cutWallClockMilliseconds
        self.clockMilliseconds = clockMilliseconds
        shardCells = Array(repeating: ShardCellsImage(cells: [], firstSlotOfSKU: []), count: shardCount)
        lastSlotOfShard = Array(repeating: StockCell.noSlot, count: shardCount)
    }

    /// Appends name `id` of `kind`, which must be the next id of that kind. Throws when out of
    /// order or not a valid name.
    /// Reserves room for `cellCount` cells spread evenly over the shards (plus an eighth), so a
    /// reader that knows the count (a snapshot's meta) fills each shard's buffer without the
    /// doublings that copy it and fault its pages in again. Optional: buffers grow past it.
    public mutating func reserveCells(_ cellCount: Int) {
        guard cellCount > 0 else { return }
        let perShard = cellCount / shardCells.count + cellCount / shardCells.count / 8 + 16
        for shard in shardCells.indices { shardCells[shard].cells.reserveCapacity(perShard) }
    }

    public mutating func appendName(_ bytes: UnsafeRawBufferPointer, kind: NameKind, id: UInt32) throws(LedgerImageError) {
        guard kind != .reservation else { throw .invalidName(kind: kind, id: Int(id), "reservation ids are not interned") }
        let table = Int(kind.rawValue)
        guard Int(id) == names[table].count else { throw .nameOutOfOrder(kind: kind, id: id, expected: names[table].count) }
        do {
            try validateName(bytes, kind: kind)
        } catch {
            throw .invalidName(kind: kind, id: Int(id), error.description)
        }
        if kind == .sku && skuPlacements.append(id: id, nameHash: hashBytes(bytes)) == nil {
            throw .invalidName(kind: kind, id: Int(id), "its shard has no SKU number left")
        }
        names[table].append(bytes)
    }

    /// Appends a cell; cells must arrive in strictly ascending (SKU id, location id) order, after
    /// the SKU names (the name decides the cell's shard under `.nameHash`). Its
    /// floored and reservation buckets must be >= 0 (reserved and committed are recomputed from the
    /// holds on restore).
    public mutating func appendCell(_ cell: StockCell) throws(LedgerImageError) {
        let key = UInt64(cell.sku.rawValue) << 32 | UInt64(cell.location.rawValue)
        if let lastKey, key <= lastKey {
            throw .cellOutOfOrder(sku: cell.sku.rawValue, location: cell.location.rawValue)
        }
        guard cell.damaged >= 0, cell.quarantine >= 0, cell.inbound >= 0, cell.returnPending >= 0, cell.safetyStock >= 0,
              cell.committed >= 0, cell.reserved >= 0
        else { throw .invalidCell(sku: cell.sku.rawValue, location: cell.location.rawValue, "a bucket that cannot be negative is") }
        guard skuPlacements.scheme == .skuID || Int(cell.sku.rawValue) < names[0].count else {
            throw .unknownName(kind: .sku, id: cell.sku.rawValue, usedBy: "a cell")
        }
        lastKey = key
        let placement = skuPlacements.placement(of: cell.sku.rawValue)
        let shard = Int(placement) & (shardCount - 1)
        let local = Int(placement >> UInt32(shardBits))
        var copy = cell
        copy.nextSlotOfSKU = StockCell.noSlot
        let slot = UInt32(shardCells[shard].cells.count)
        let previous = lastSlotOfShard[shard]
        if previous != StockCell.noSlot, shardCells[shard].cells[Int(previous)].sku == cell.sku {
            shardCells[shard].cells[Int(previous)].nextSlotOfSKU = slot
        } else {
            let heads = shardCells[shard].firstSlotOfSKU.count
            if local >= heads {
                shardCells[shard].firstSlotOfSKU.append(contentsOf: repeatElement(StockCell.noSlot, count: local + 1 - heads))
            }
            shardCells[shard].firstSlotOfSKU[local] = slot
        }
        shardCells[shard].cells.append(copy)
        lastSlotOfShard[shard] = slot
    }

    /// Adds a channel definition.
    public mutating func appendChannel(_ definition: ChannelDefinition) { channels.append(definition) }
    /// Adds a reservation record.
    public mutating func appendReservation(_ reservation: ReservationImage) { reservations.append(reservation) }
    /// Adds a hold.
    public mutating func appendHold(_ hold: HoldImage) { holds.append(hold) }
    /// Adds a dedup window.
    public mutating func appendDedupWindow(_ window: DedupWindowImage) { dedupWindows.append(window) }

    /// Checks that the parts fit together and returns the image. Throws the first problem found.
    public func build() throws(LedgerImageError) -> LedgerImage {
        try checkCells()
        try checkChannels()
        try checkReservations()
        try checkHolds()
        try checkDedupWindows()
        return LedgerImage(
            version: version, workerGenerations: workerGenerations, channelChangeSequence: channelChangeSequence,
            shardCount: shardCount, skuPlacements: skuPlacements, dedupWindowSequences: dedupWindowSequences,
            workerMarks: workerMarks,
            cutWallClockMilliseconds: cutWallClockMilliseconds, clockMilliseconds: clockMilliseconds,
            skuNames: names[0], locationNames: names[1], channelNames: names[2], sourceNames: names[3],
            channels: channels.sorted { $0.id < $1.id }, reservations: reservations, holds: holds,
            dedupWindows: dedupWindows, shardCells: shardCells)
    }

    private func checkCells() throws(LedgerImageError) {
        let skuCount = UInt32(names[0].count)
        let locationCount = UInt32(names[1].count)
        for shard in shardCells {
            for cell in shard.cells {
                if cell.sku.rawValue >= skuCount { throw .unknownName(kind: .sku, id: cell.sku.rawValue, usedBy: "a cell") }
                if cell.location.rawValue >= locationCount {
                    throw .unknownName(kind: .location, id: cell.location.rawValue, usedBy: "a cell")
                }
            }
        }
    }

    private func checkChannels() throws(LedgerImageError) {
        var seen = Set<ChannelID>()
        for channel in channels {
            if channel.id.rawValue >= UInt32(names[2].count) {
                throw .unknownName(kind: .channel, id: channel.id.rawValue, usedBy: "a channel definition")
            }
            if !seen.insert(channel.id).inserted { throw .invalidChannel(channel.id, .duplicateLocation) }
            for location in channel.locations where location.rawValue >= UInt32(names[1].count) && location != .unknown {
                throw .unknownName(kind: .location, id: location.rawValue, usedBy: "channel \(channel.id)")
            }
            do { try channel.validate(quantityMax: Int64(Int32.max)) } catch { throw .invalidChannel(channel.id, error) }
        }
    }

    private func checkReservations() throws(LedgerImageError) {
        var seen = Set<ReservationID>()
        for reservation in reservations {
            let id = reservation.id
            if !seen.insert(id).inserted { throw .invalidReservation(id, "the id appears twice") }
            if reservation.lineGrants.count != reservation.request.lines.count {
                throw .invalidReservation(id, "\(reservation.lineGrants.count) grants for \(reservation.request.lines.count) lines")
            }
            // A refused reservation may name a SKU no one knew (`SKUID.unknown`).
            for line in reservation.request.lines where Int(line.sku.rawValue) >= names[0].count && line.sku != .unknown {
                throw .unknownName(kind: .sku, id: line.sku.rawValue, usedBy: "reservation \(id)")
            }
            for grant in reservation.lineGrants where grant.granted < 0 || grant.granted > grant.requested {
                throw .invalidReservation(id, "a line granted \(grant.granted) of \(grant.requested)")
            }
            // A record lives on its first line's shard, or (made by an older build) its id's hashed shard.
            if let home = reservation.homeShard {
                let shardOfSKU = { (sku: SKUID) in Int(skuPlacements.placement(of: sku.rawValue)) & (shardCount - 1) }
                guard ReservationHome.isValid(home, for: reservation.request, shardCount: shardCount,
                                              shardOfSKU: shardOfSKU) else {
                    let firstLine = ReservationHome.shard(of: reservation.request, shardCount: shardCount,
                                                          shardOfSKU: shardOfSKU)
                    let hashed = ReservationHome.hashedShard(of: id, shardCount: shardCount)
                    throw .invalidReservation(id, "home shard \(home) is neither its first line's (\(firstLine)) nor its id's (\(hashed))")
                }
            }
        }
    }

    private func checkHolds() throws(LedgerImageError) {
        var seen = Set<HoldKey>()
        for hold in holds {
            guard hold.shard >= 0 && hold.shard < shardCount else { throw .invalidHold(hold.id, shard: hold.shard, "no such shard") }
            if !seen.insert(HoldKey(shard: hold.shard, id: hold.id)).inserted {
                throw .invalidHold(hold.id, shard: hold.shard, "the reservation holds twice on one shard")
            }
            if hold.lines.isEmpty { throw .invalidHold(hold.id, shard: hold.shard, "no lines") }
            for line in hold.lines {
                if line.units <= 0 { throw .invalidHold(hold.id, shard: hold.shard, "a line holds \(line.units) units") }
                if Int(line.sku.rawValue) >= names[0].count {
                    throw .unknownName(kind: .sku, id: line.sku.rawValue, usedBy: "a hold of \(hold.id)")
                }
                if Int(skuPlacements.placement(of: line.sku.rawValue)) & (shardCount - 1) != hold.shard {
                    throw .invalidHold(hold.id, shard: hold.shard, "\(line.sku) belongs to another shard")
                }
                if !hasCell(shard: hold.shard, sku: line.sku, location: line.location) {
                    throw .invalidHold(hold.id, shard: hold.shard, "no cell (\(line.sku), \(line.location))")
                }
            }
        }
    }

    private func checkDedupWindows() throws(LedgerImageError) {
        var seen = Set<HoldKey.Window>()
        for window in dedupWindows {
            let source = window.source.rawValue
            guard window.shard >= 0 && window.shard < shardCount else {
                throw .invalidDedupWindow(shard: window.shard, source: source, "no such shard")
            }
            if source >= UInt32(names[3].count) { throw .unknownName(kind: .source, id: source, usedBy: "a dedup window") }
            if window.words.count != dedupWindowSequences / 64 {
                throw .invalidDedupWindow(shard: window.shard, source: source,
                                          "\(window.words.count) words for a window of \(dedupWindowSequences) sequences")
            }
            if !seen.insert(HoldKey.Window(shard: window.shard, source: window.source)).inserted {
                throw .invalidDedupWindow(shard: window.shard, source: source, "appears twice")
            }
        }
    }

    /// Binary search in the shard's cells, which are in key order.
    private func hasCell(shard: Int, sku: SKUID, location: LocationID) -> Bool {
        let cells = shardCells[shard].cells
        let key = UInt64(sku.rawValue) << 32 | UInt64(location.rawValue)
        var low = 0
        var high = cells.count
        while low < high {
            let middle = (low + high) / 2
            let middleKey = UInt64(cells[middle].sku.rawValue) << 32 | UInt64(cells[middle].location.rawValue)
            if middleKey == key { return true }
            if middleKey < key { low = middle + 1 } else { high = middle }
        }
        return false
    }
}

/// (shard, id) and (shard, source) pairs, for duplicate checks.
private struct HoldKey: Hashable {
    var shard: Int
    var id: ReservationID
    struct Window: Hashable {
        var shard: Int
        var source: SourceID
    }
}
