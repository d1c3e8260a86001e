import ATPLedger
import ATPProtocol
import NIOCore
import Testing

/// Round trips and helpers beyond the document's vectors: roles, versions, limits, the query reply
/// encoder, reservation replies from the ledger, statistics.
@Suite struct MessageTests {
    static func roundTrip(_ request: Request, limits: ProtocolLimits = ProtocolLimits()) throws -> Request {
        var buffer = ByteBuffer()
        request.encode(requestID: 77, into: &buffer)
        return try Request(decoding: try singleFrame(buffer.bytes), limits: limits)
    }

    static func roundTrip(_ reply: Reply, opcode: Opcode) throws -> Reply {
        var buffer = ByteBuffer()
        reply.encode(opcode: opcode, requestID: 77, into: &buffer)
        return try Reply(decoding: try singleFrame(buffer.bytes))
    }

    @Test func rolesPermitOpcodes() {
        #expect(Roles.query.permits(.query) && Roles.query.permits(.channelShow) && !Roles.query.permits(.reserve))
        #expect(Roles.reserve.permits(.commit) && !Roles.reserve.permits(.ingest))
        #expect(Roles.ingest.permits(.rejectionLogRead) && !Roles.ingest.permits(.channelSet))
        #expect(Roles.admin.permits(.channelSet) && Roles.admin.permits(.query) && Roles.admin.permits(.snapshotNow))
        #expect(Roles([]).permits(.ping) && Roles([]).permits(.stats) && !Roles([]).permits(.query))
        #expect(Roles([.query, .ingest]).description == "query | ingest")
    }

    @Test func versionNegotiation() {
        #expect(ProtocolVersion.negotiate(clientMin: 1, clientMax: 1) == 1)
        #expect(ProtocolVersion.negotiate(clientMin: 1, clientMax: 9) == 2)
        #expect(ProtocolVersion.negotiate(clientMin: 2, clientMax: 2) == 2)
        #expect(ProtocolVersion.negotiate(clientMin: 3, clientMax: 9) == nil)
        #expect(ProtocolVersion.negotiate(clientMin: 1, clientMax: 0) == nil)
    }

    @Test func limitsValidate() throws {
        try ProtocolLimits().validate()
        #expect(throws: ConfigurationError.self) { try ProtocolLimits(frameBytesMax: 100).validate() }
        #expect(throws: ConfigurationError.self) { try ProtocolLimits(batchItemsMax: 0).validate() }
        #expect(throws: ConfigurationError.self) { try ProtocolLimits(inFlightRequestsMax: 0).validate() }
        #expect(throws: ConfigurationError.self) { try ProtocolLimits(connectionsMax: 0).validate() }
        #expect(throws: ConfigurationError.self) { try ProtocolLimits(tokenBytesMax: 70_000).validate() }
        #expect(throws: ConfigurationError.self) { try ProtocolLimits(tokenBytesMax: 4096).validate() }
        #expect(throws: ConfigurationError.self) { try ProtocolLimits(handshakeFrameBytesMax: 32 << 20).validate() }
        #expect(ProtocolLimits().handshakeFrameBytesNeeded == 1109)
        let reply = HelloReply(roles: .all, serverTimeMilliseconds: 1, limits: ProtocolLimits())
        #expect(reply.frameBytesMax == 16_777_216 && reply.batchItemsMax == 100_000 && reply.inFlightRequestsMax == 1024)
    }

    @Test func errorCodesThatClose() {
        let closing = ErrorCode.allKnown.filter(\.closesConnection)
        #expect(closing == [.malformedFrame, .frameTooLarge, .unsupportedVersion, .unauthenticated, .shuttingDown,
                            .tooManyConnections, .idleTimeout])
        #expect(!ErrorCode(rawValue: 999).closesConnection && ErrorCode(rawValue: 999).description == "error 999")
    }

    @Test func requestsRoundTrip() throws {
        let requests: [Request] = [
            .hello(HelloRequest(versionMin: 1, versionMax: 3, token: [], clientName: "")),
            .channelShow(channel: "marketplace-x"),
            .stats(prefix: "reservations."),
            .reserve(WireReserveRequest(id: rid("o"), ttlMilliseconds: 1, mode: .partial, lines: [
                WireReservationLine(sku: "S", target: .channel("c", allowSplit: false), quantity: 1),
            ])),
            .rejectionLogRead(RejectionLogReadRequest(afterSequence: .max, limit: .max)),
            .query(QueryRequest(queries: [])),
        ]
        for request in requests { #expect(try Self.roundTrip(request) == request) }
    }

    @Test func repliesRoundTrip() throws {
        let replies: [(Reply, Opcode)] = [
            (.reservation(WireReservationReply(id: rid("o"), result: .notHeld, state: .expired, replayed: true,
                                               expiresAtMilliseconds: 0, lines: [])), .commit),
            (.channelShow([]), .channelShow),
            (.stats(StatsReply(entries: [])), .stats),
            (.query(QueryReply(options: .includeCells, answers: [WireQueryAnswer(exists: false, sellable: 0, projected: 0)])),
             .query),
            (.error(ErrorReply(code: .serverBusy, message: "")), .ingest),
            (.error(ErrorReply(code: .unknownOpcode, message: "unknown opcode 0x77")), Opcode(rawValue: 0x77)),
        ]
        for (reply, opcode) in replies { #expect(try Self.roundTrip(reply, opcode: opcode) == reply) }
    }

    @Test func longErrorMessagesAreCutAtACharacterBoundary() throws {
        let message = String(repeating: "é", count: 40_000)  // 80,000 bytes
        let decoded = try Self.roundTrip(.error(ErrorReply(code: .internalError, message: message)), opcode: .ping)
        guard case .error(let error) = decoded else { Issue.record("not an error"); return }
        #expect(error.message.utf8.count == 65_534)
        #expect(error.message.allSatisfy { $0 == "é" })
    }

    @Test func noticeFrame() throws {
        var buffer = ByteBuffer()
        Reply.encodeNotice(ErrorReply(code: .tooManyConnections, message: "try later"), into: &buffer)
        let frame = try singleFrame(buffer.bytes)
        #expect(frame.opcode == .notice && frame.requestID == 0 && frame.flags == .errorReply)
    }

    @Test func queryReplyEncoderWritesLedgerCells() throws {
        var cell = StockCell(sku: SKUID(0), location: LocationID(0))
        cell.onHand = 10
        cell.reserved = 2
        cell.inbound = 3
        var encoder = QueryReplyEncoder(requestID: 9, options: .includeCells, answerCount: 1, buffer: ByteBuffer())
        encoder.appendAnswer(exists: true, isShort: false, sellable: 8, projected: 11, cellCount: 1)
        Array("DC-9".utf8).withUnsafeBytes { encoder.appendCell(location: $0, exists: true, cell: cell) }
        #expect(encoder.frameBytes == 10 + 5 + 17 + 4 + 5 + 33)
        let buffer = encoder.finish()
        let reply = try Reply(decoding: try singleFrame(buffer.bytes))
        let expected = WireQueryAnswer(exists: true, sellable: 8, projected: 11,
                                       cells: [WireCell(location: "DC-9", onHand: 10, reserved: 2, inbound: 3)])
        #expect(reply == .query(QueryReply(options: .includeCells, answers: [expected])))
        #expect(expected.cells[0].sellable == 8)
    }

    @Test func reservationReplyFromLedger() {
        let ledger = ReservationReply(id: rid("o-1"), state: .held,
                                      lines: [LineGrant(requested: 3, granted: 3,
                                                        allocations: [LineAllocation(location: LocationID(4), quantity: 3)])],
                                      expiresAtMilliseconds: 123, replayed: true)
        let wire = try? WireReservationReply.make(from: ledger, locationName: { "L\($0.rawValue)" }).get()
        #expect(wire == WireReservationReply(id: rid("o-1"), state: .held, replayed: true, expiresAtMilliseconds: 123,
                                             lines: [WireLineGrant(requested: 3, granted: 3, allocations: [
                                                 WireLineAllocation(location: "L4", quantity: 3)])]))
        var unknown = ledger
        unknown.error = .unknownReservation
        #expect((try? WireReservationReply.make(from: unknown, locationName: { _ in "" }).get())?.result == .unknownReservation)
        var invalid = ledger
        invalid.error = .invalidRequest(.noLines)
        if case .failure(let error) = WireReservationReply.make(from: invalid, locationName: { _ in "" }) {
            #expect(error.code == .invalidRequest)
        } else {
            Issue.record("invalid request must become an error reply")
        }
    }

    @Test func statisticsEntriesHaveValidNames() throws {
        var statistics = EngineStatistics()
        statistics.counters.rejectionsByReason[Int(RejectionReason.sequenceTooOld.rawValue)] = 4
        statistics.inboxDepths = [1, 7, 2]
        let entries = StatsReply.entries(from: statistics)
        for entry in entries {
            #expect(entry.name.utf8.count <= 64 && !entry.name.isEmpty && entry.name.allSatisfy(\.isASCII))
        }
        #expect(entries.contains(StatEntry("events.rejected.sequenceTooOld", .unsigned(4))))
        #expect(entries.contains(StatEntry("inbox.depth.max", .unsigned(7))))
        #expect(!entries.contains { $0.name == "events.rejected.deltaZero" })
        #expect(Set(entries.map(\.name)).count == entries.count)
        let reply = Reply.stats(StatsReply(entries: entries))
        #expect(try Self.roundTrip(reply, opcode: .stats) == reply)
    }

    @Test func statisticNamesAreDocumented() throws {
        let text = try ProtocolDocument.text()
        for entry in StatsReply.entries(from: EngineStatistics()) {
            let parts = entry.name.split(separator: ".")
            let documented = text.contains("`\(entry.name)`")
                || text.contains("`\(parts.dropLast().joined(separator: ".")).<")
                || text.contains("`.\(parts.last!)`")
            #expect(documented, "\(entry.name) is not in docs/PROTOCOL.md §7.11")
        }
    }
}
