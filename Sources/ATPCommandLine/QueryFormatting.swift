import ATPLedger
import ATPProtocol

/// What one query asked, for printing its answer next to it.
struct AskedQuery {
    let query: WireQuery

    var sku: String {
        switch query {
        case .cell(let sku, _), .sku(let sku), .channel(let sku, _): sku
        }
    }

    /// "SKU-1 at DC1", "SKU-1 (all locations)", "SKU-1 in channel web".
    var title: String {
        switch query {
        case .cell(let sku, let location): "\(sku) at \(location)"
        case .sku(let sku): "\(sku) (all locations)"
        case .channel(let sku, let channel): "\(sku) in channel \(channel)"
        }
    }

    /// The JSON members that say what was asked.
    var jsonMembers: [(String, JSONValue)] {
        switch query {
        case .cell(let sku, let location): [("kind", "cell"), ("sku", .string(sku)), ("location", .string(location))]
        case .sku(let sku): [("kind", "sku"), ("sku", .string(sku))]
        case .channel(let sku, let channel): [("kind", "channel"), ("sku", .string(sku)), ("channel", .string(channel))]
        }
    }

    /// What "exists = false" means for this kind of question.
    var unknownMeaning: String {
        switch query {
        case .cell: "the server has no stock record for this SKU at this location"
        case .sku: "the server has never seen this SKU"
        case .channel: "the SKU or the channel is unknown to the server"
        }
    }
}

/// Text and JSON forms of query answers.
enum QueryFormatting {
    /// The answer as JSON: what was asked, then exists, short, sellable, projected and, when
    /// `withCells`, the cells with their eight buckets and sellable units.
    static func json(_ asked: AskedQuery, _ answer: WireQueryAnswer, withCells: Bool) -> JSONValue {
        var members = asked.jsonMembers
        members += [("exists", .bool(answer.exists)), ("short", .bool(answer.isShort)),
                    ("sellable", .number(answer.sellable)), ("projected", .number(answer.projected))]
        if withCells { members.append(("cells", .array(answer.cells.map(cellJSON)))) }
        return .object(members)
    }

    /// One cell as JSON: location, exists, the buckets by name, sellable.
    static func cellJSON(_ cell: WireCell) -> JSONValue {
        var members: [(String, JSONValue)] = [("location", .string(cell.location)), ("exists", .bool(cell.exists))]
        for bucket in Bucket.allCases { members.append((bucket.description, .number(cell[bucket]))) }
        members.append(("sellable", .number(cell.sellable)))
        return .object(members)
    }

    /// The answer for people: a summary line, then the cells as a table when `withCells`.
    static func lines(_ asked: AskedQuery, _ answer: WireQueryAnswer, withCells: Bool) -> [String] {
        var summary = "\(asked.title): sellable \(answer.sellable), projected \(answer.projected)"
        if !answer.exists { summary += " (unknown: \(asked.unknownMeaning))" }
        if answer.isShort { summary += " (short: claims exceed good units in a cell)" }
        guard withCells else { return [summary] }
        if answer.cells.isEmpty { return [summary, "(no cells)"] }
        return [summary] + cellTable(answer.cells).renderedLines()
    }

    /// Cells as a table: location, the eight buckets, sellable.
    static func cellTable(_ cells: [WireCell]) -> TextTable {
        var table = TextTable([("LOCATION", .left)] + Bucket.allCases.map { ($0.description, .right) }
            + [("sellable", .right)])
        for cell in cells {
            let location = cell.exists ? cell.location : cell.location + " (unknown)"
            table.add([location] + Bucket.allCases.map { String(cell[$0]) } + [String(cell.sellable)])
        }
        return table
    }
}
