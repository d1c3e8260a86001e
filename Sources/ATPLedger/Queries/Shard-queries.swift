/// Availability queries: read-only; each cell read between two events, never half of one.
extension Shard {
    /// Answers one query, appending the cells behind it to `cellsOut` when `collectingCells` (a
    /// request asked for them: `includeCells`); otherwise the answer has no cells (part -1) and
    /// nothing is copied (issue 14 item 6: a batch of SKU queries copied every cell of every SKU).
    /// An answer whose cells would take `cellsOut` past `cellsMax` keeps none and says so
    /// (`cellsOmitted`): its reply cannot fit a frame, and copying them could cost gigabytes.
    func answer(_ query: AvailabilityQuery, channels: ChannelTable, part: Int32, collectingCells: Bool,
                cellsMax: Int = .max, cellsOut: inout [CellAvailability]) -> QueryAnswer {
        counters.queriesAnswered &+= 1
        let start = cellsOut.count
        var collector = CellCollector(start: start, cellsMax: cellsMax, isCollecting: collectingCells)
        var answer: QueryAnswer
        switch query {
        case .cell(let sku, let location):
            if let slot = cells.slot(sku: sku, location: location) {
                let cell = cells.cell(slot).pointee
                collector.add(CellAvailability(cell: cell, exists: true), into: &cellsOut)
                answer = QueryAnswer(sellable: cell.sellable, projected: cell.projected, isShort: cell.isShort,
                                     exists: true, part: part, cellStart: 0, cellCount: 0)
            } else {
                collector.add(CellAvailability(cell: StockCell(sku: sku, location: location), exists: false), into: &cellsOut)
                answer = QueryAnswer(sellable: 0, projected: 0, isShort: false, exists: false, part: part, cellStart: 0,
                                     cellCount: 0)
            }
        case .sku(let sku):
            var sellable: Int64 = 0
            var projected: Int64 = 0
            var short = false
            var count = 0
            cells.forEachSlot(ofSKU: sku) { slot in
                let cell = cells.cell(slot).pointee
                sellable += cell.sellable
                projected += cell.projected
                short = short || cell.isShort
                count += 1
                collector.add(CellAvailability(cell: cell, exists: true), into: &cellsOut)
            }
            answer = QueryAnswer(sellable: sellable, projected: projected, isShort: short, exists: count > 0,
                                 part: part, cellStart: 0, cellCount: 0)
        case .channel(let sku, let channelID):
            guard let channel = channels[channelID] else { return .unknown }
            var sellable: Int64 = 0
            var projected: Int64 = 0
            var short = false
            for location in channel.locations {
                if let slot = cells.slot(sku: sku, location: location) {
                    let cell = cells.cell(slot).pointee
                    sellable += cell.sellable
                    projected += cell.projected
                    short = short || cell.isShort
                    collector.add(CellAvailability(cell: cell, exists: true), into: &cellsOut)
                } else {
                    collector.add(CellAvailability(cell: StockCell(sku: sku, location: location), exists: false),
                            into: &cellsOut)
                }
            }
            answer = QueryAnswer(sellable: channel.atp(sellableSum: sellable), projected: channel.atp(sellableSum: projected),
                                 isShort: short, exists: cells.hasSKU(sku), part: part, cellStart: 0, cellCount: 0)
        }
        if collector.isCollecting {
            answer.cellStart = Int32(start)
            answer.cellCount = Int32(cellsOut.count - start)
        } else {
            assert(cellsOut.count == start, "cells of an answer without cells")
            answer.part = -1
            answer.cellsOmitted = collector.omitted
        }
        return answer
    }
}

/// The cells of one answer being copied out, up to a batch's cap (a struct, not a local function:
/// a local function's captured state is boxed on the heap in debug builds).
private struct CellCollector {
    /// Where the answer's cells begin in the batch's cells.
    let start: Int
    let cellsMax: Int
    var isCollecting: Bool
    /// The cap was reached: the answer's cells were dropped.
    var omitted = false

    /// Keeps `cell` while collecting; at the cap, drops the answer's cells and stops.
    @inline(__always) mutating func add(_ cell: CellAvailability, into cellsOut: inout [CellAvailability]) {
        guard isCollecting else { return }
        guard cellsOut.count < cellsMax else {
            cellsOut.removeLast(cellsOut.count - start)
            isCollecting = false
            omitted = true
            return
        }
        cellsOut.append(cell)
    }
}
