/// One availability question.
public enum AvailabilityQuery: Sendable, Equatable {
    /// One (SKU, location) cell.
    case cell(SKUID, LocationID)
    /// A SKU across all its locations.
    case sku(SKUID)
    /// A SKU as one channel sees it.
    case channel(SKUID, ChannelID)

    /// The SKU the query is about.
    public var sku: SKUID {
        switch self {
        case .cell(let sku, _), .sku(let sku), .channel(let sku, _): sku
        }
    }
}

/// A cell as a query saw it: all buckets, and whether the cell exists at all.
public struct CellAvailability: Sendable, Equatable {
    /// The cell's buckets (zeros when it does not exist).
    public var cell: StockCell
    /// False when the engine has never seen an event for this (SKU, location).
    public var exists: Bool

    public init(cell: StockCell, exists: Bool) {
        self.cell = cell
        self.exists = exists
    }

    /// Units that can be promised now.
    public var sellable: Int64 { cell.sellable }
    /// sellable + inbound.
    public var projected: Int64 { cell.projected }
    /// Whether the cell is short (sellable reads 0 because claims exceed good units).
    public var isShort: Bool { cell.isShort }
}

/// The answer to one query: a summary and the cells behind it (see `QueryBatchResult.cells(of:)`).
public struct QueryAnswer: Sendable, Equatable {
    /// For a cell: its sellable units. For a SKU: the sum over its locations. For a channel: the channel ATP.
    public var sellable: Int64
    /// For a cell: sellable + inbound. For a SKU: the sum. For a channel: the ATP over projected units.
    public var projected: Int64
    /// True when any cell behind the answer is short.
    public var isShort: Bool
    /// False when the SKU (or cell, or channel) is unknown to the engine.
    public var exists: Bool
    /// True when cells were asked for but not copied out: the batch's cells passed its `cellsMax`
    /// (the reply cannot fit a frame; the server answers `replyTooLarge`). The sums are complete.
    public internal(set) var cellsOmitted: Bool = false
    @usableFromInline var part: Int32
    @usableFromInline var cellStart: Int32
    @usableFromInline var cellCount: Int32

    init(sellable: Int64, projected: Int64, isShort: Bool, exists: Bool, part: Int32, cellStart: Int32,
         cellCount: Int32) {
        self.sellable = sellable
        self.projected = projected
        self.isShort = isShort
        self.exists = exists
        self.part = part
        self.cellStart = cellStart
        self.cellCount = cellCount
    }

    static let unknown = QueryAnswer(sellable: 0, projected: 0, isShort: false, exists: false, part: -1, cellStart: 0,
                                     cellCount: 0)
}

/// Reusable storage for answering query batches inline on a core's host (thread-per-core,
/// `Engine.answerInline(_:onCore:)`): the caller keeps one per connection and refills `queries` for
/// each request, so that once its arrays have grown answering allocates nothing.
public struct InlineQueryBatch: Sendable {
    /// The questions; fill before `answerInline`, `removeAll()` before the next request.
    public var queries: [AvailabilityQuery] = []
    /// One answer per query after `answerInline` succeeded.
    public internal(set) var answers: [QueryAnswer] = []
    var cells: [CellAvailability] = []
    /// 0..<queries.count, kept at that length (the ledger's answer walks an index list).
    var indices: [Int32] = []
    /// Whether answers carry the cells behind them; false copies none (no request asked for them).
    public var collectsCells = true
    /// The most cells the batch copies out; answers past it keep none (`QueryAnswer.cellsOmitted`).
    public var cellsMax = Int.max

    /// Empty storage.
    public init() {}

    /// Forgets the previous request's queries and answers, keeping the storage.
    public mutating func removeAll() {
        queries.removeAll(keepingCapacity: true)
        answers.removeAll(keepingCapacity: true)
        cells.removeAll(keepingCapacity: true)
    }

    /// The cells behind answer `index` (as `QueryBatchResult.cells(of:)`).
    public func cells(of index: Int) -> ArraySlice<CellAvailability> {
        let answer = answers[index]
        guard answer.part >= 0 else { return [] }
        let start = Int(answer.cellStart)
        return cells[start..<start + Int(answer.cellCount)]
    }
}

/// The answers to a batch of queries, in batch order; cells are stored flat, per worker part.
public struct QueryBatchResult: Sendable {
    /// One answer per query.
    public var answers: [QueryAnswer]
    var parts: [[CellAvailability]]

    /// The cells behind answer `index`: one for a cell query, every location of a SKU in ascending
    /// location id order, or a channel's locations in priority order.
    public func cells(of index: Int) -> ArraySlice<CellAvailability> {
        let answer = answers[index]
        guard answer.part >= 0 else { return [] }
        let start = Int(answer.cellStart)
        return parts[Int(answer.part)][start..<start + Int(answer.cellCount)]
    }
}
