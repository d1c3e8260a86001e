import ATPLedger
import ATPProtocol
import NIOCore

/// Availability queries: names are looked up, never interned (an unknown name reads as not
/// existing); the reply is encoded straight from the engine's result.
extension RequestExecutor {
    func executeQuery(_ request: QueryRequest, requestID: UInt32,
                      reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) -> ExecuteOutcome {
        let catalog = engine.catalog
        var queries: [AvailabilityQuery] = []
        queries.reserveCapacity(request.count)
        request.withUnsafeNames { names in
            for item in request.items {
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
        let frameBytesMax = configuration.limits.frameBytesMax
        let submitted = engine.submit(queries: queries) { result in
            reply { buffer in
                Self.encodeQueryReply(result, request: request, requestID: requestID, catalog: catalog,
                                      frameBytesMax: frameBytesMax, into: &buffer)
            }
        }
        return submitted == .accepted ? .started : .inboxFull
    }

    /// Writes the reply frame, or `replyTooLarge` when it would not fit one frame.
    static func encodeQueryReply(_ result: QueryBatchResult, request: QueryRequest, requestID: UInt32,
                                 catalog: Catalog, frameBytesMax: Int, into buffer: inout ByteBuffer) {
        let start = buffer.writerIndex
        var taken = ByteBuffer()
        swap(&taken, &buffer)
        let includeCells = request.options.contains(.includeCells)
        var encoder = QueryReplyEncoder(requestID: requestID, options: request.options,
                                        answerCount: result.answers.count, buffer: taken)
        request.withUnsafeNames { names in
            for (index, answer) in result.answers.enumerated() {
                let cells = result.cells(of: index)
                encoder.appendAnswer(answer, cellCount: includeCells ? cells.count : 0)
                guard includeCells else { continue }
                for cell in cells {
                    if cell.cell.location == .unknown {
                        encoder.appendCell(location: names[request.items[index].scope], exists: false, cell: cell.cell)
                    } else {
                        catalog.withName(.location, id: cell.cell.location.rawValue) {
                            encoder.appendCell(location: $0, exists: cell.exists, cell: cell.cell)
                        }
                    }
                }
            }
        }
        let frameBytes = encoder.frameBytes
        buffer = encoder.finish()
        if frameBytes > frameBytesMax {
            buffer.moveWriterIndex(to: start)
            let message = "the reply would be \(frameBytes) bytes, above frameBytesMax \(frameBytesMax); ask for fewer items or without cells"
            Reply.error(ErrorReply(code: .replyTooLarge, message: message)).encode(
                opcode: .query, requestID: requestID, into: &buffer)
        }
    }
}
