import ATPLedger
import ATPProtocol
import NIOCore

/// reserve, commit, release. Unknown SKU, location or channel names make a line that can grant
/// nothing (the reservation is refused or partial), exactly as an empty cell would.
extension RequestExecutor {
    func executeReserve(_ request: WireReserveRequest, requestID: UInt32, opcode: Opcode,
                        reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) -> ExecuteOutcome {
        let ledgerRequest = self.ledgerRequest(request)
        return submitReservation(opcode: opcode, requestID: requestID, reply: reply) {
            engine.submitReserve(ledgerRequest, completion: $0)
        }
    }

    /// `request` with its names resolved to ids; an unknown name becomes `.unknown`, which grants nothing.
    func ledgerRequest(_ request: WireReserveRequest) -> ReserveRequest {
        let catalog = engine.catalog
        let lines = request.lines.map { line -> ReservationLine in
            let sku = catalog.existingSKU(line.sku) ?? .unknown
            switch line.target {
            case .location(let name):
                return ReservationLine(sku: sku, target: .location(catalog.existingLocation(name) ?? .unknown),
                                       quantity: line.quantity)
            case .channel(let name, let allowSplit):
                return ReservationLine(sku: sku, target: .channel(catalog.existingChannel(name) ?? .unknown,
                                                                   allowSplit: allowSplit), quantity: line.quantity)
            }
        }
        return ReserveRequest(id: request.id, lines: lines, ttlMilliseconds: request.ttlMilliseconds, mode: request.mode)
    }

    /// Submits one reservation operation and turns its answer into a reply.
    func submitReservation(opcode: Opcode, requestID: UInt32,
                           reply: @escaping @Sendable (@escaping ReplyWriter) -> Void,
                           _ submit: (@escaping ReservationCompletion) -> SubmitResult) -> ExecuteOutcome {
        let catalog = engine.catalog
        let submitted = submit { answer in
            reply { Self.encodeReservationReply(answer, opcode: opcode, requestID: requestID, catalog: catalog, into: &$0) }
        }
        return submitted == .accepted ? .started : .inboxFull
    }

    /// Performs a reserve, commit or release on `core` during the read (thread-per-core), when the
    /// calling thread hosts `core` and `core` owns the reservation's home; returns false (nothing
    /// done) otherwise, and for every other request. `completion` as in `Engine.reserveInline`.
    func performReservationInline(_ request: Request, onCore core: Int,
                                  completion: @escaping ReservationCompletion) -> Bool {
        switch request {
        case .reserve(let reserve):
            return engine.reserveInline(ledgerRequest(reserve), onCore: core, completion: completion)
        case .commit(let id):
            return engine.commitInline(id, onCore: core, completion: completion)
        case .release(let id):
            return engine.releaseInline(id, onCore: core, completion: completion)
        default:
            return false
        }
    }

    /// Encodes a reservation operation's answer as its reply frame (an error reply for an invalid
    /// request or a journal failure).
    static func encodeReservationReply(_ answer: ReservationReply, opcode: Opcode, requestID: UInt32, catalog: Catalog,
                                       into buffer: inout ByteBuffer) {
        WireReservationReply.encode(answer, opcode: opcode, requestID: requestID, catalog: catalog, into: &buffer)
    }
}
