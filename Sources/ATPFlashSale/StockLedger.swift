import ATPClient
import ATPLedger
import ATPProtocol

/// One hot SKU's cell at the sale location as the server reports it.
public struct CellReading: Sendable, Equatable, Codable {
    /// The SKU.
    public var sku: String
    /// Units that can be promised now.
    public var sellable: Int64
    /// Units on hand.
    public var onHand: Int64
    /// Units held by reservations.
    public var reserved: Int64
    /// Units committed.
    public var committed: Int64

    /// A reading from its fields.
    public init(sku: String, sellable: Int64, onHand: Int64, reserved: Int64, committed: Int64) {
        self.sku = sku
        self.sellable = sellable
        self.onHand = onHand
        self.reserved = reserved
        self.committed = committed
    }
}

/// Puts the run's stock on sale and reads the cells back, over one admin connection.
enum StockLedger {
    /// Receives `stockPerSKU` units of every hot SKU at the sale location (one receipt each, from the
    /// run's fresh source), then reads the cells back. Throws `FlashSaleError.setupFailed` when an
    /// event is not applied or the read-back disagrees with what was received.
    static func receiveStock(_ catalog: FlashSaleCatalog, stockPerSKU: Int64, on connection: ATPConnection) async throws
        -> [CellReading]
    {
        let events = catalog.skus.enumerated().map { index, sku in
            WireEvent(kind: .receive, sku: sku, location: catalog.location, quantity: stockPerSKU,
                      sequence: UInt64(index + 1), eventMilliseconds: wallClockMilliseconds())
        }
        var sequenceOffset = 0
        for chunk in chunks(events, size: batchItems(connection)) {
            let reply: IngestReply
            do {
                let answer = try await requestWhileOpen(.ingest(IngestRequest(source: catalog.source, events: chunk)), on: connection)
                guard case .ingest(let ingested) = answer else { throw ATPClientError.unexpectedReply("\(answer)") }
                reply = ingested
            } catch {
                throw FlashSaleError.setupFailed("ingest of the receipts: \(error)")
            }
            if let rejection = reply.rejections.first {
                throw FlashSaleError.setupFailed("the receipt of \(catalog.skus[sequenceOffset + Int(rejection.index)]) was rejected (rejection reason code \(rejection.reasonCode))")
            }
            guard reply.appliedCount == chunk.count else {
                throw FlashSaleError.setupFailed("\(reply.appliedCount) of \(chunk.count) receipts applied, \(reply.duplicateCount) duplicates; use a fresh --run-tag")
            }
            sequenceOffset += chunk.count
        }
        let cells: [CellReading]
        do {
            cells = try await readCells(catalog, on: connection)
        } catch let error as FlashSaleError {
            throw FlashSaleError.setupFailed("\(error)")
        }
        for cell in cells where cell.sellable != stockPerSKU || cell.reserved != 0 || cell.committed != 0 {
            throw FlashSaleError.setupFailed("\(cell.sku) shows \(cell.sellable) sellable, \(cell.reserved) reserved and \(cell.committed) committed after receiving \(stockPerSKU); use a fresh --run-tag")
        }
        return cells
    }

    /// Reads every hot SKU's cell at the sale location (a query with cells). Throws
    /// `FlashSaleError.readBackFailed` when the server fails to answer or a cell is missing.
    static func readCells(_ catalog: FlashSaleCatalog, on connection: ATPConnection) async throws -> [CellReading] {
        var readings: [CellReading] = []
        readings.reserveCapacity(catalog.skus.count)
        for chunk in chunks(catalog.cellQueries(), size: batchItems(connection)) {
            let reply: QueryReply
            do {
                let answer = try await requestWhileOpen(.query(QueryRequest(options: .includeCells, queries: chunk)), on: connection)
                guard case .query(let answered) = answer else { throw ATPClientError.unexpectedReply("\(answer)") }
                reply = answered
            } catch {
                throw FlashSaleError.readBackFailed("query: \(error)")
            }
            guard reply.answers.count == chunk.count else {
                throw FlashSaleError.readBackFailed("\(reply.answers.count) answers to \(chunk.count) queries")
            }
            for answer in reply.answers {
                let sku = catalog.skus[readings.count]
                guard answer.exists, let cell = answer.cells.first, cell.exists else {
                    throw FlashSaleError.readBackFailed("the cell of \(sku) at \(catalog.location) does not exist")
                }
                readings.append(CellReading(sku: sku, sellable: answer.sellable, onHand: Int64(cell.onHand),
                                            reserved: Int64(cell.reserved), committed: Int64(cell.committed)))
            }
        }
        return readings
    }

    /// Sends `request` and waits for its reply, failing with `ATPClientError.connectionClosed` when
    /// the connection is already closed. The check and the write happen in one turn of the
    /// connection's event loop: ATPClient hands a request written after the channel closed to a
    /// pipeline without its handler, and that request would never be answered (so a server that
    /// died during the sale would hang the read-back instead of failing it).
    private static func requestWhileOpen(_ request: Request, on connection: ATPConnection) async throws -> Reply {
        try await withCheckedThrowingContinuation { continuation in
            connection.eventLoop.execute {
                guard connection.isActive else {
                    continuation.resume(throwing: ATPClientError.connectionClosed)
                    return
                }
                connection.send(request) { continuation.resume(with: $0) }
            }
        }
    }

    private static func batchItems(_ connection: ATPConnection) -> Int {
        max(1, min(Int(connection.hello.batchItemsMax), 10_000))
    }

    private static func chunks<Element>(_ items: [Element], size: Int) -> [[Element]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min(items.count, $0 + size)]) }
    }
}
