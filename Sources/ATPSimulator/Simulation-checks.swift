import ATPLedger

/// The checks after every recovery and at the end: what the clients were told is there, what they
/// were not told is whole or absent, and every cell is what the events and reservations make it.
/// Afterwards the model takes the engine's word for what was unknown.
extension SimulationRunner {
    func check(after moment: String) {
        let image = cluster.captureImage()
        let dedup = DedupProbe(image)
        checkEvents(dedup, moment: moment)
        let records = Dictionary(uniqueKeysWithValues: image.reservations.map { ($0.id, $0) })
        checkReservations(records, moment: moment)
        checkCells(image, records: records, moment: moment)
        checkChannels(image, moment: moment)
    }

    // MARK: - Events

    /// Each core's parts applied since the last check: those the journal kept form a prefix of the
    /// order the core applied them in, each whole; every acknowledged one is kept.
    private func checkEvents(_ dedup: DedupProbe, moment: String) {
        for core in 0..<cluster.coreCount {
            var lostOne = false
            for part in model.appliedParts[core] {
                let batch = model.batches[part.batch]
                guard !batch.isResend else { continue }
                let kept = part.indices.map { dedup.applied(batch.events[Int($0)]) }
                let keptCount = kept.count { $0 }
                if keptCount != 0 && keptCount != kept.count {
                    violation("after \(moment): core \(core) kept \(keptCount) of \(kept.count) events of batch \(part.batch)")
                }
                let isKept = keptCount > 0
                if isKept && lostOne {
                    violation("after \(moment): core \(core) kept batch \(part.batch) after losing an earlier one")
                }
                if !isKept {
                    lostOne = true
                    model.batches[part.batch].partLost = true
                    if batch.acknowledged == true && !acknowledgedMayBeLost {
                        violation("after \(moment): acknowledged batch \(part.batch) is lost on core \(core): \(batch.events)")
                    }
                } else {
                    model.survivingParts[core].append(part)
                }
            }
            model.appliedParts[core] = []
        }
    }

    // MARK: - Reservations

    private func checkReservations(_ records: [ReservationID: ReservationImage], moment: String) {
        for id in model.reservationOrder {
            var known = model.reservations[id]!
            let record = records[id]
            defer { model.reservations[id] = known }
            guard let record else {
                let forgettable = setup.forgets && known.state.map { $0 != .held || known.expiresAtMilliseconds <= cluster.nowMilliseconds } ?? true
                if known.state != nil && !known.uncertain && !forgettable && !acknowledgedMayBeLost {
                    violation("after \(moment): \(id) is unknown to the engine; the clients were told \(known.state!)")
                }
                if known.state != nil && (known.uncertain || acknowledgedMayBeLost || forgettable) {
                    known.state = nil
                    known.grants = []
                }
                known.settleOutstanding()
                continue
            }
            if let problem = model.checkGrants(record.lineGrants, of: known.request) {
                violation("after \(moment): \(id) holds grants that are not whole: \(problem)")
            }
            // Where settled records are forgotten, a retry whose answer was lost may have made a new
            // reservation under the id: the engine's is the one to follow. The old record may have
            // been settled (or expired) when last heard of, or held with a commit or release
            // outstanding (or answered `notDurable`) that settled it before the retry came (seed
            // 33085: a held answer that waited for a part's prepare arrived after the release, the
            // forgetting and the retry; seed 91803: the release was answered `notDurable`).
            let settledOrExpired = known.state.map { $0 != .held || known.expiresAtMilliseconds <= cluster.nowMilliseconds } ?? false
            let settledByOutstanding = known.state == .held && known.mayHaveBeenRenewed && known.mayHaveBeenSettled
            let renewed = setup.forgets && known.uncertain && (settledOrExpired || settledByOutstanding)
            if renewed { known.state = nil }
            if known.state != nil, !known.grants.isEmpty, record.lineGrants != known.grants, !acknowledgedMayBeLost {
                violation("after \(moment): \(id) has grants \(record.lineGrants); the clients were told \(known.grants)")
            }
            if known.state != nil, !acknowledgedMayBeLost,
               !model.reachable(record.state, from: known, nowMilliseconds: cluster.nowMilliseconds) {
                violation("after \(moment): \(id) is \(record.state); the clients were told \(known.state!) "
                          + "(commits outstanding \(known.commitsOutstanding), releases \(known.releasesOutstanding), "
                          + "expires at \(known.expiresAtMilliseconds), now \(cluster.nowMilliseconds))")
            }
            known.state = record.state
            known.grants = record.lineGrants
            known.expiresAtMilliseconds = record.expiresAtMilliseconds
            known.settleOutstanding()
        }
    }

    // MARK: - Cells

    /// Every cell's buckets from the events kept, in each core's order; reserved and committed from
    /// the records the engine holds (held: their grants; committed: their grants less what shipped
    /// against them).
    private func checkCells(_ image: LedgerImage, records: [ReservationID: ReservationImage], moment: String) {
        var stock = StockModel()
        var shipped: [ReservationID: [CellKey: Int64]] = [:]
        for core in 0..<cluster.coreCount {
            for part in model.survivingParts[core] {
                let batch = model.batches[part.batch]
                for index in part.indices {
                    let event = batch.events[Int(index)]
                    stock.apply(event)
                    guard event.kind == .ship, event.correlation > 0 else { continue }
                    let id = batch.correlations[Int(event.correlation) - 1]
                    let key = CellKey(sku: event.sku, location: event.location)
                    guard let record = records[id], record.state == .committed else { continue }
                    let granted = units(of: record, at: key)
                    let left = granted - shipped[id, default: [:]][key, default: 0]
                    shipped[id, default: [:]][key, default: 0] += min(event.quantity, max(left, 0))
                }
            }
        }
        var reserved: [CellKey: Int64] = [:]
        var committed: [CellKey: Int64] = [:]
        for record in records.values where record.state == .held || record.state == .committed {
            for (line, grant) in zip(record.request.lines, record.lineGrants) {
                for allocation in grant.allocations {
                    let key = CellKey(sku: line.sku, location: allocation.location)
                    if record.state == .held {
                        reserved[key, default: 0] += allocation.quantity
                    } else {
                        committed[key, default: 0] += allocation.quantity
                    }
                }
            }
        }
        for (id, cells) in shipped { for (key, units) in cells where records[id]?.state == .committed { committed[key, default: 0] -= units } }
        // A forgotten committed reservation's units stay committed, shippable by its id, also where
        // a new reservation under the same id was granted nothing (it cannot hold there).
        for hold in image.holds where !holdsOnShard(records[hold.id], shard: hold.shard, image: image) {
            let mayBeCommitted = model.reservations[hold.id]?.commitSent ?? false
            if !setup.forgets || hold.status != .committed || !mayBeCommitted {
                violation("after \(moment): \(hold.id) holds \(hold.status) units on shard \(hold.shard) with no record")
            }
            for line in hold.lines {
                committed[CellKey(sku: line.sku, location: line.location), default: 0] += Int64(line.units)
            }
        }
        var seen = Set<CellKey>()
        image.forEachCell { cell in
            let key = CellKey(sku: cell.sku, location: cell.location)
            seen.insert(key)
            guard let expected = stock.cells[key] else {
                return violation("after \(moment): cell \(key) exists, but no event kept creates it")
            }
            if !expected.matches(cell) {
                violation("after \(moment): cell \(key) is \(cell); the events kept make it \(expected)")
            }
            if Int64(cell.reserved) != reserved[key, default: 0] || Int64(cell.committed) != committed[key, default: 0] {
                if tracing {
                    for record in records.values where record.request.lines.contains(where: { $0.sku == key.sku }) {
                        log("  record \(record)")
                    }
                    for hold in image.holds where hold.lines.contains(where: { $0.sku == key.sku }) { log("  hold \(hold)") }
                }
                violation("after \(moment): cell \(key) reserved \(cell.reserved) committed \(cell.committed); its "
                          + "reservations make \(reserved[key, default: 0]) and \(committed[key, default: 0])")
            }
        }
        for key in stock.cells.keys.sorted() where !seen.contains(key) {
            violation("after \(moment): cell \(key) is missing; events kept create it")
        }
    }

    /// Whether `record` was granted units on `shard`.
    private func holdsOnShard(_ record: ReservationImage?, shard: Int, image: LedgerImage) -> Bool {
        guard let record else { return false }
        return zip(record.request.lines, record.lineGrants).contains { line, grant in
            grant.granted > 0 && image.shardIndex(of: line.sku) == shard
        }
    }

    private func units(of record: ReservationImage, at key: CellKey) -> Int64 {
        var units: Int64 = 0
        for (line, grant) in zip(record.request.lines, record.lineGrants) where line.sku == key.sku {
            for allocation in grant.allocations where allocation.location == key.location { units += allocation.quantity }
        }
        return units
    }

    // MARK: - Channels

    private func checkChannels(_ image: LedgerImage, moment: String) {
        let engine = Dictionary(uniqueKeysWithValues: image.channels.map { ($0.id, $0) })
        for id in channelIDs {
            if let known = model.channels[id], known.isKnown, known.definition != engine[id], !acknowledgedMayBeLost {
                violation("after \(moment): channel \(id) is \(String(describing: engine[id])); the clients were told "
                          + "\(String(describing: known.definition))")
            }
            model.channels[id] = ChannelKnowledge(definition: engine[id], isKnown: true, outstanding: 0)
        }
    }
}

/// Whether an event was applied, from the dedup windows of an image.
struct DedupProbe {
    private var windows: [Key: DedupWindowImage] = [:]
    private let image: LedgerImage

    private struct Key: Hashable {
        var shard: Int
        var source: SourceID
    }

    init(_ image: LedgerImage) {
        self.image = image
        for window in image.dedupWindows { windows[Key(shard: window.shard, source: window.source)] = window }
    }

    func applied(_ event: StockEvent) -> Bool {
        guard let window = windows[Key(shard: image.shardIndex(of: event.sku), source: event.source)],
              let newest = window.newest, event.sequence <= newest else { return false }
        let size = UInt64(window.words.count * 64)
        guard newest - event.sequence < size else { return false }
        let bit = Int(event.sequence % size)
        return window.words[bit / 64] & (1 << UInt64(bit % 64)) != 0
    }
}

/// Compares two images of the same engine: cells (every field), names, channels, reservations,
/// holds and dedup windows.
enum ImageComparison {
    static func difference(_ a: LedgerImage, _ b: LedgerImage) -> String? {
        var cellsA: [String] = []
        var cellsB: [String] = []
        a.forEachCell { cellsA.append(describe($0)) }
        b.forEachCell { cellsB.append(describe($0)) }
        if cellsA != cellsB { return "cells: " + firstDifference(cellsA, cellsB) }
        // A snapshot holds every name interned by its cut; journals define the names records use.
        for kind in [NameKind.sku, .location, .channel, .source] {
            let (x, y) = (a.names(kind), b.names(kind))
            for id in 0..<min(x.count, y.count) where x.name(id) != y.name(id) {
                return "\(kind) name \(id) is \(x.name(id)) vs \(y.name(id))"
            }
        }
        if a.channels.sorted(by: { $0.id < $1.id }) != b.channels.sorted(by: { $0.id < $1.id }) {
            return "channels \(a.channels) vs \(b.channels)"
        }
        let reservationsA = a.reservations.map { "\($0)" }.sorted()
        let reservationsB = b.reservations.map { "\($0)" }.sorted()
        if reservationsA != reservationsB { return "reservations: " + firstDifference(reservationsA, reservationsB) }
        let holdsA = a.holds.map { "\($0)" }.sorted()
        let holdsB = b.holds.map { "\($0)" }.sorted()
        if holdsA != holdsB { return "holds: " + firstDifference(holdsA, holdsB) }
        let dedupA = a.dedupWindows.map { "\($0)" }.sorted()
        let dedupB = b.dedupWindows.map { "\($0)" }.sorted()
        if dedupA != dedupB { return "dedup windows: " + firstDifference(dedupA, dedupB) }
        return nil
    }

    private static func describe(_ cell: StockCell) -> String {
        "\(cell) reserved \(cell.reserved) committed \(cell.committed) version \(cell.version) last \(cell.lastEventMilliseconds)"
    }

    private static func firstDifference(_ a: [String], _ b: [String]) -> String {
        for (x, y) in zip(a, b) where x != y { return "\(x)\n    vs \(y)" }
        return "\(a.count) vs \(b.count) entries"
    }
}
