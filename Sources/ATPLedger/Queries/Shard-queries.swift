/// Availability queries: read-only; each cell read between two events, never half of one.
extension Shard {
    /// Answers one query, appending the cells behind it to `cellsOut`.
    func answer(_ query: AvailabilityQuery, channels: ChannelTable, part: Int32,
                cellsOut: inout [CellAvailability]) -> QueryAnswer {
        counters.queriesAnswered &+= 1
        let start = Int32(cellsOut.count)
        switch query {
        case .cell(let sku, let location):
            if let slot = cells.slot(sku: sku, location: location) {
                let cell = cells.cell(slot).pointee
                cellsOut.append(CellAvailability(cell: cell, exists: true))
                return QueryAnswer(sellable: cell.sellable, projected: cell.projected, isShort: cell.isShort,
                                   exists: true, part: part, cellStart: start, cellCount: 1)
            }
            cellsOut.append(CellAvailability(cell: StockCell(sku: sku, location: location), exists: false))
            return QueryAnswer(sellable: 0, projected: 0, isShort: false, exists: false, part: part, cellStart: start,
                               cellCount: 1)
        case .sku(let sku):
            var sellable: Int64 = 0
            var projected: Int64 = 0
            var short = false
            cells.forEachSlot(ofSKU: sku) { slot in
                let cell = cells.cell(slot).pointee
                sellable += cell.sellable
                projected += cell.projected
                short = short || cell.isShort
                cellsOut.append(CellAvailability(cell: cell, exists: true))
            }
            let count = Int32(cellsOut.count) - start
            return QueryAnswer(sellable: sellable, projected: projected, isShort: short, exists: count > 0, part: part,
                               cellStart: start, cellCount: count)
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
                    cellsOut.append(CellAvailability(cell: cell, exists: true))
                } else {
                    cellsOut.append(CellAvailability(cell: StockCell(sku: sku, location: location), exists: false))
                }
            }
            return QueryAnswer(sellable: channel.atp(sellableSum: sellable), projected: channel.atp(sellableSum: projected),
                               isShort: short, exists: cells.hasSKU(sku), part: part, cellStart: start,
                               cellCount: Int32(channel.locations.count))
        }
    }
}
