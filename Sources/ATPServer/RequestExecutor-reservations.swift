import ATPLedger
import ATPProtocol
import NIOCore

/// reserve, commit, release. Unknown SKU, location or channel names make a line that can grant
/// nothing (the reservation is refused or partial), exactly as an empty cell would.
extension RequestExecutor {
    func executeReserve(_ request: WireReserveRequest, requestID: UInt32, opcode: Opcode,
                        reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) -> ExecuteOutcome {
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
        let ledgerRequest = ReserveRequest(id: request.id, lines: lines, ttlMilliseconds: request.ttlMilliseconds,
                                           mode: request.mode)
        return submitReservation(opcode: opcode, requestID: requestID, reply: reply) {
            engine.submitReserve(ledgerRequest, completion: $0)
        }
    }

    /// Submits one reservation operation and turns its answer into a reply.
    func submitReservation(opcode: Opcode, requestID: UInt32,
                           reply: @escaping @Sendable (@escaping ReplyWriter) -> Void,
                           _ submit: (@escaping ReservationCompletion) -> SubmitResult) -> ExecuteOutcome {
        let catalog = engine.catalog
        let submitted = submit { answer in
            reply { buffer in
                switch WireReservationReply.make(from: answer, locationName: { catalog.name(of: $0) }) {
                case .success(let wire): Reply.reservation(wire).encode(opcode: opcode, requestID: requestID, into: &buffer)
                case .failure(let error): Reply.error(error).encode(opcode: opcode, requestID: requestID, into: &buffer)
                }
            }
        }
        return submitted == .accepted ? .started : .inboxFull
    }
}
