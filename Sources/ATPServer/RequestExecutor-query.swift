import ATPLedger
import ATPProtocol
import NIOCore

/// Availability queries: names are looked up, never interned (an unknown name reads as not
/// existing); the reply is encoded straight from the engine's result.
extension RequestExecutor {
    /// Starts the query requests of one read as one engine batch. Their replies are encoded where
    /// the batch is answered (the core's thread), into one buffer, so that the connection's loop
    /// only writes it: no closure per request, and the encoding's CPU is spent off the loop.
    func executeQueries(_ requests: [PendingQuery],
                        reply: @escaping @Sendable (EncodedQueryReplies) -> Void) -> ExecuteOutcome {
        let catalog = engine.catalog
        let frameBytesMax = configuration.limits.frameBytesMax
        let answerAndEncode: @Sendable (QueryBatchResult) -> Void = { result in
            var buffer = ByteBufferAllocator().buffer(capacity: 32 * requests.count + 64)
            var kinds = QueryKindCounts()
            var start = 0
            var owed = 0
            for pending in requests {
                owed += pending.replyBytesOwed
                let answers = start..<start + pending.request.count
                start = answers.upperBound
                Self.encodeQueryReply(result, answers: answers, request: pending.request, requestID: pending.requestID,
                                      catalog: catalog, frameBytesMax: frameBytesMax, into: &buffer)
                kinds[pending.kind] += 1
            }
            reply(EncodedQueryReplies(bytes: buffer, count: requests.count,
                                      startNanoseconds: requests.first?.startNanoseconds ?? 0, kinds: kinds,
                                      replyBytesOwed: owed))
        }
        // Cells are copied out of the ledger only when a request of the batch will send them, and
        // at most `cellsMax` of them.
        let collectingCells = requests.contains { $0.request.options.contains(.includeCells) }
        let cellsMax = queryCellsMax
        // One worker owns every SKU: it also looks the names up, leaving the event loop (the
        // busier thread of the default threading) only the sockets and the frames.
        if engine.configuration.workerCount == 1 && !engine.isHosted {
            let submitted = engine.submit(resolvingOnCore: { [self] queries in
                queries.reserveCapacity(requests.reduce(0) { $0 + $1.request.count })
                for pending in requests { appendQueries(of: pending.request, to: &queries) }
            }, collectingCells: collectingCells, cellsMax: cellsMax, completion: answerAndEncode)
            return submitted == .accepted ? .started : .inboxFull
        }
        var queries: [AvailabilityQuery] = []
        queries.reserveCapacity(requests.reduce(0) { $0 + $1.request.count })
        for pending in requests { appendQueries(of: pending.request, to: &queries) }
        return engine.submit(queries: queries, collectingCells: collectingCells, cellsMax: cellsMax,
                             completion: answerAndEncode) == .accepted ? .started : .inboxFull
    }

    /// The most cells one batch of a read's queries copies out of a core (issue 14 item 6). A
    /// connection takes requests while the replies it owes are below `outboundBytesHighWaterMark`
    /// (upper bounds, `ReplyEstimate`), so the requests of a batch before its last hold fewer than
    /// that many bytes of cells, and a cell takes at least 35 bytes of a reply (a one-byte name):
    /// when the cap is reached inside the last request, that request's reply is above
    /// `frameBytesMax` and it is answered `replyTooLarge` without its cells having been copied.
    static func cellsMax(frameBytesMax: Int, outboundBytesHighWaterMark: Int) -> Int {
        (frameBytesMax + outboundBytesHighWaterMark) / ReplyEstimate.cellBytesMin + 1
    }

    /// Appends `request`'s items to `batch` when every one is for core `coreIndex`, and returns the
    /// range they take; nil (the batch unchanged) when one is for another core. Thread-per-core:
    /// the read's local queries are answered together at its end (`Engine.answerInline`).
    func appendInline(_ request: QueryRequest, onCore coreIndex: Int, to batch: inout InlineQueryBatch) -> Range<Int>? {
        let start = batch.queries.count
        appendQueries(of: request, to: &batch.queries)
        for index in start..<batch.queries.count where !engine.canAnswer(batch.queries[index], onCore: coreIndex) {
            batch.queries.removeLast(batch.queries.count - start)
            return nil
        }
        // Cells are copied out only when a request of this read's batch will send them.
        let wantsCells = request.options.contains(.includeCells)
        batch.collectsCells = start == 0 ? wantsCells : batch.collectsCells || wantsCells
        batch.cellsMax = queryCellsMax
        return start..<batch.queries.count
    }

    /// Resolves a request's names (lookups only) into engine queries.
    func appendQueries(of request: QueryRequest, to queries: inout [AvailabilityQuery]) {
        let catalog = engine.catalog
        request.withUnsafeNames { names in
            for index in 0..<request.count {
                let item = request.item(at: index)
                let sku = catalog.lookup(names[item.sku], kind: .sku).map { SKUID($0) } ?? .unknown
                switch item.kind {
                case .cell:
                    let location = catalog.lookup(names[item.scope], kind: .location).map { LocationID($0) } ?? .unknown
                    queries.append(.cell(sku, location))
                case .sku:
                    queries.append(.sku(sku))
                case .channel:
                    let channel = catalog.lookup(names[item.scope], kind: .channel).map { ChannelID($0) } ?? .unknown
                    queries.append(.channel(sku, channel))
                }
            }
        }
    }

    /// Writes the reply frame, or `replyTooLarge` when it would not fit one frame. `answers` is the
    /// range of `result` that answers `request` (all of it unless requests were batched together).
    static func encodeQueryReply(_ result: some QueryAnswerSource, answers: Range<Int>? = nil, request: QueryRequest,
                                 requestID: UInt32, catalog: Catalog, frameBytesMax: Int,
                                 into buffer: inout ByteBuffer) {
        let answerRange = answers ?? result.answers.indices
        assert(answerRange.count == request.count, "one answer per query item")
        let start = buffer.writerIndex
        var taken = ByteBuffer()
        swap(&taken, &buffer)
        let includeCells = request.options.contains(.includeCells)
        var encoder = QueryReplyEncoder(requestID: requestID, options: request.options,
                                        answerCount: answerRange.count, buffer: consume taken)
        // Stops as soon as the reply is known not to fit: its cells were not copied out (the core's
        // cap, `cellsMax`), or what is encoded already passes the frame limit.
        var tooLarge = false
        request.withUnsafeNames { names in
            for index in answerRange {
                let answer = result.answers[index]
                if (includeCells && answer.cellsOmitted) || encoder.frameBytes > frameBytesMax {
                    tooLarge = true
                    break
                }
                let cells = result.cells(of: index)
                encoder.appendAnswer(answer, cellCount: includeCells ? cells.count : 0)
                guard includeCells else { continue }
                let item = request.item(at: index - answerRange.lowerBound)
                if item.kind == .sku && cells.count > 1 {
                    // The engine keeps a SKU's cells in location-id (first-use) order, which a
                    // client cannot see: the wire promises ascending location names, byte by byte.
                    var named = cells.map { cell in
                        (name: catalog.withName(.location, id: cell.cell.location.rawValue) { [UInt8]($0) }, cell: cell)
                    }
                    named.sort { $0.name.lexicographicallyPrecedes($1.name) }
                    for (name, cell) in named {
                        name.withUnsafeBytes { encoder.appendCell(location: $0, exists: cell.exists, cell: cell.cell) }
                    }
                    continue
                }
                for cell in cells {
                    if cell.cell.location == .unknown {
                        encoder.appendCell(location: names[item.scope],
                                           exists: false, cell: cell.cell)
                    } else {
                        catalog.withName(.location, id: cell.cell.location.rawValue) {
                            encoder.appendCell(location: $0, exists: cell.exists, cell: cell.cell)
                        }
                    }
                }
            }
        }
        tooLarge = tooLarge || encoder.frameBytes > frameBytesMax
        buffer = tooLarge ? encoder.abandon() : encoder.finish()
        if tooLarge {
            buffer.moveWriterIndex(to: start)
            let message = "the reply would be more than frameBytesMax \(frameBytesMax) bytes; ask for fewer items or without cells"
            Reply.error(ErrorReply(code: .replyTooLarge, message: message)).encode(
                opcode: .query, requestID: requestID, into: &buffer)
        }
    }
}

/// Answers and their cells, as the reply encoder reads them: an engine batch result or the
/// reusable storage of an inline answer.
protocol QueryAnswerSource {
    var answers: [QueryAnswer] { get }
    func cells(of index: Int) -> ArraySlice<CellAvailability>
}

extension QueryBatchResult: QueryAnswerSource {}
extension InlineQueryBatch: QueryAnswerSource {}

/// Query replies encoded where their batch was answered, for the connection's loop to write: the
/// bytes, how many requests they answer, and what the loop still records (latency by kind).
struct EncodedQueryReplies: Sendable {
    var bytes: ByteBuffer
    var count: Int
    /// When the read that brought the requests was handled (`NIODeadline` uptime nanoseconds).
    var startNanoseconds: UInt64
    var kinds: QueryKindCounts
    /// The sum of the requests' `PendingQuery.replyBytesOwed`: what their connection stops owing.
    var replyBytesOwed: Int = 0
}

/// A query request waiting to be submitted with the other queries of the same read.
struct PendingQuery: Sendable {
    var request: QueryRequest
    var requestID: UInt32
    /// When the read that brought it began to be handled (`NIODeadline` uptime nanoseconds).
    var startNanoseconds: UInt64 = 0
    /// What it asks about, for its latency histogram.
    var kind: QueryRequestKind = .mixed
    /// Its `ReplyEstimate`, counted in its connection's owed reply bytes until the reply is written.
    var replyBytesOwed: Int = 0
}
