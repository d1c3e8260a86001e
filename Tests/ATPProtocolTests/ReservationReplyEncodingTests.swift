import ATPLedger
import ATPProtocol
import NIOCore
import Testing

/// The server encodes reservation replies straight from the ledger's form
/// (`WireReservationReply.encode(_:opcode:requestID:catalog:into:)`): byte for byte what the wire
/// form and `Reply.encode` write, for every result, state and error, lines and allocations.
@Suite struct ReservationReplyEncodingTests {
    @Test func theDirectEncoderWritesTheWireFormsBytes() throws {
        let catalog = Catalog()
        let locations = try ["DC-EAST", "a-store-with-a-rather-long-location-name-of-60-bytes-or-so-x", "Z"].map {
            try catalog.location($0)
        }
        let grants = [
            LineGrant(requested: 3, granted: 3, allocations: [LineAllocation(location: locations[0], quantity: 3)]),
            LineGrant(requested: 5, granted: 4, allocations: [LineAllocation(location: locations[1], quantity: 1),
                                                               LineAllocation(location: locations[2], quantity: 3)]),
            LineGrant(requested: 7),
        ]
        let errors: [ReservationError?] = [nil, .unknownReservation, .notHeld(.released), .invalidRequest(.noLines),
                                           .notDurable("disk full")]
        var cases = 0
        for error in errors {
            for state in [ReservationState.held, .committed, .released, .expired, .refused] {
                for lines in [[], Array(grants[0..<1]), grants] {
                    for replayed in [false, true] {
                        let reply = ReservationReply(id: try ReservationID("order-\(cases)"), state: state, lines: lines,
                                                     expiresAtMilliseconds: state == .held ? 1_700_000_000_123 : 0,
                                                     replayed: replayed, error: error)
                        for opcode in [Opcode.reserve, .commit, .release] {
                            var direct = ByteBuffer()
                            WireReservationReply.encode(reply, opcode: opcode, requestID: 77, catalog: catalog, into: &direct)
                            var viaWire = ByteBuffer()
                            switch WireReservationReply.make(from: reply, locationName: { catalog.name(of: $0) }) {
                            case .success(let wire): Reply.reservation(wire).encode(opcode: opcode, requestID: 77, into: &viaWire)
                            case .failure(let failure): Reply.error(failure).encode(opcode: opcode, requestID: 77, into: &viaWire)
                            }
                            #expect(direct == viaWire, "\(reply) on \(opcode)")
                            cases += 1
                        }
                    }
                }
            }
        }
        #expect(cases == 5 * 5 * 3 * 2 * 3)
    }
}
