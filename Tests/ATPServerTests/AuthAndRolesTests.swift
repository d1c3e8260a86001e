import ATPClient
import ATPLedger
import ATPProtocol
import ATPServer
import Testing

/// The handshake and the roles (docs/PROTOCOL.md §3): hello first, tokens, versions, and which
/// opcodes each role may send.
@Suite struct AuthAndRolesTests {
    static func fixture() throws -> ServerFixture {
        try ServerFixture {
            $0.tokens = ServerConfiguration.demoTokens + [TokenGrant(token: "test-none", roles: [], name: "test-none")]
        }
    }

    /// Asserts that the next frame is an error with `code` for request `id` and that the server then
    /// closes the connection.
    static func expectErrorThenClose(_ raw: RawClient, code: ErrorCode, id: UInt32, opcode: Opcode,
                                     sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let (frame, reply) = try await raw.nextReply()
        #expect(frame.flags == .errorReply, sourceLocation: sourceLocation)
        #expect(frame.requestID == id && frame.opcode == opcode, "\(frame)", sourceLocation: sourceLocation)
        #expect(reply.errorCode == code, "\(reply)", sourceLocation: sourceLocation)
        #expect(try await raw.nextFrame() == nil, "nothing follows the error", sourceLocation: sourceLocation)
        #expect(try await raw.waitUntilClosed(), "the server closes", sourceLocation: sourceLocation)
    }

    @Test func anyRequestBeforeHelloIsUnauthenticatedAndCloses() async throws {
        let fixture = try Self.fixture()
        let bystander = try await fixture.connect()
        let cases: [(Opcode, [UInt8])] = [
            (.ping, Wire.le(UInt64(7))),
            (.query, [0] + Wire.le(UInt32(0))),
            (.stats, [0]),
            (.snapshotNow, []),
            (Opcode(rawValue: 0x77), [1, 2, 3]),
        ]
        for (opcode, payload) in cases {
            let raw = try await fixture.raw()
            // The offending request, then a hello and a ping that must never be answered.
            var bytes = Wire.raw(opcode: opcode.rawValue, id: 5, payload: payload)
            bytes += Wire.bytes(.hello(HelloRequest(token: Array("demo-admin".utf8))), id: 6)
            bytes += Wire.bytes(.ping(PingRequest(nonce: 1)), id: 7)
            try await raw.send(bytes)
            try await Self.expectErrorThenClose(raw, code: .unauthenticated, id: 5, opcode: opcode)
            #expect(try await bystander.ping(nonce: 1) > 0, "the server keeps serving others")
        }
        await bystander.close()
    }

    @Test func aRefusedTokenIsUnauthenticatedAndCloses() async throws {
        let fixture = try Self.fixture()
        for token in ["nope", "", "demo-admin ", "DEMO-ADMIN", "demo-admi"] {
            let raw = try await fixture.raw()
            try await raw.send(.hello(HelloRequest(token: Array(token.utf8), clientName: "bad")), id: 11)
            try await Self.expectErrorThenClose(raw, code: .unauthenticated, id: 11, opcode: .hello)
        }
        do {
            _ = try await fixture.connect(token: "wrong")
            Issue.record("a wrong token must be refused")
        } catch let error as ATPClientError {
            #expect(error.serverCode == .unauthenticated)
        }
        let good = try await fixture.connect()
        #expect(try await good.stat("server.connections.open") == 1, "refused connections are closed")
        await good.close()
    }

    @Test(arguments: [(UInt16(3), UInt16(4)), (0, 0), (2, 1), (1, 0), (UInt16.max, UInt16.max)])
    func aVersionRangeWithoutASpokenVersionIsUnsupportedAndCloses(versionMin: UInt16, versionMax: UInt16) async throws {
        let fixture = try Self.fixture()
        let raw = try await fixture.raw()
        try await raw.send(.hello(HelloRequest(versionMin: versionMin, versionMax: versionMax, token: Array("demo-admin".utf8))),
                           id: 3)
        let (frame, reply) = try await raw.nextReply()
        #expect(frame.requestID == 3 && frame.opcode == .hello)
        guard case .error(let error) = reply else {
            Issue.record("versions \(versionMin)...\(versionMax) answered \(reply)")
            return
        }
        #expect(error.code == .unsupportedVersion)
        #expect(error.message.contains("1...2"), "the message lists the versions spoken: \(error.message)")
        #expect(try await raw.waitUntilClosed())
    }

    @Test func aSecondHelloIsInvalidRequestAndChangesNothing() async throws {
        let fixture = try Self.fixture()
        let raw = try await fixture.rawAuthenticated(token: "demo-query")
        // A second hello, even with a stronger token, does not change the roles.
        try await raw.send(.hello(HelloRequest(token: Array("demo-admin".utf8))), id: 2)
        let (frame, reply) = try await raw.nextReply()
        #expect(frame.requestID == 2 && frame.opcode == .hello && reply.errorCode == .invalidRequest)
        try await raw.send(.channelSet(WireChannelDefinition(name: "web", locations: ["L"])), id: 3)
        let (denied, deniedReply) = try await raw.nextReply()
        #expect(denied.requestID == 3 && deniedReply.errorCode == .forbidden, "still only the query role")
        // The connection still works with the roles it had.
        try await raw.send(.query(QueryRequest(queries: [.sku("A")])), id: 4)
        let (answered, answer) = try await raw.nextReply()
        #expect(answered.requestID == 4)
        if case .query = answer {} else { Issue.record("query after a second hello: \(answer)") }
        #expect(!raw.isClosed)
        await raw.close()
    }

    // MARK: - Roles

    /// One valid request per opcode (snapshotNow has no client call: a hand-made frame).
    static func requests(tag: String) throws -> [(Opcode, [UInt8])] {
        let reservation = WireReserveRequest(
            id: try ReservationID("R-\(tag)"), ttlMilliseconds: 60_000, mode: .allOrNothing,
            lines: [WireReservationLine(sku: "ROLE-SKU", target: .location("L"), quantity: 1)])
        let requests: [Request] = [
            .ping(PingRequest(nonce: 1)),
            .stats(prefix: "server."),
            .query(QueryRequest(queries: [.sku("ROLE-SKU")])),
            .channelShow(channel: nil),
            .reserve(reservation),
            .commit(try ReservationID("R-\(tag)")),
            .release(try ReservationID("R-\(tag)")),
            .ingest(IngestRequest(source: "src-\(tag)", events: [
                WireEvent(kind: .receive, sku: "ROLE-\(tag)", location: "L", quantity: 1, sequence: 1),
            ])),
            .rejectionLogRead(RejectionLogReadRequest(limit: 10)),
            .channelSet(WireChannelDefinition(name: "ch-\(tag)", locations: ["L"])),
            .channelRemove(channel: "ch-\(tag)"),
        ]
        return requests.map { ($0.opcode, Array(Wire.frame($0, id: 0).readableBytesView.dropFirst(10))) }
            + [(.snapshotNow, [])]
    }

    static let permitted: [String: Set<Opcode>] = [
        "demo-admin": [.ping, .stats, .query, .channelShow, .reserve, .commit, .release, .ingest, .rejectionLogRead,
                       .channelSet, .channelRemove, .snapshotNow],
        "demo-query": [.ping, .stats, .query, .channelShow],
        "demo-reserve": [.ping, .stats, .query, .channelShow, .reserve, .commit, .release],
        "demo-ingest": [.ping, .stats, .ingest, .rejectionLogRead],
        "test-none": [.ping, .stats],
    ]

    @Test(arguments: ["demo-admin", "demo-query", "demo-reserve", "demo-ingest", "test-none"])
    func eachRoleMaySendItsOpcodesAndIsForbiddenTheOthers(token: String) async throws {
        let fixture = try Self.fixture()
        let admin = try await fixture.connect()
        _ = try await admin.ingest(source: "seed", events: [WireEvent(kind: .receive, sku: "ROLE-SKU", location: "L", quantity: 5, sequence: 1)])
        let raw = try await fixture.rawAuthenticated(token: token)
        let allowed = Self.permitted[token]!
        var id: UInt32 = 100
        for (opcode, payload) in try Self.requests(tag: token) {
            id += 1
            try await raw.send(Wire.raw(opcode: opcode.rawValue, id: id, payload: payload))
            let (frame, reply) = try await raw.nextReply()
            #expect(frame.requestID == id && frame.opcode == opcode)
            if allowed.contains(opcode) {
                #expect(reply.errorCode != .forbidden, "\(token) may send \(opcode): \(reply)")
                if opcode == .snapshotNow { #expect(reply.errorCode == .notImplemented) }
                else { #expect(reply.errorCode == nil, "\(token) \(opcode): \(reply)") }
            } else {
                #expect(reply.errorCode == .forbidden, "\(token) may not send \(opcode): \(reply)")
                if case .error(let error) = reply { #expect(!error.message.isEmpty) }
            }
            #expect(!raw.isClosed, "\(opcode) keeps the connection open")
        }
        // Forbidden requests had no effect; permitted ones did.
        let answers = try await admin.query([.sku("ROLE-\(token)"), .sku("ROLE-SKU")])
        #expect(answers.answers[0].exists == allowed.contains(.ingest), "ingest ran only when permitted")
        #expect(answers.answers[1].sellable == 5, "the reservation was made and released, or never made")
        let stats = try await admin.statsByName(prefix: "reservations.")
        #expect(stats["reservations.granted"] == (allowed.contains(.reserve) ? 1 : 0))
        // The connection is still usable after every forbidden request.
        try await raw.send(.ping(PingRequest(nonce: 99)), id: 999)
        let (last, pong) = try await raw.nextReply()
        #expect(last.requestID == 999 && pong == .ping(PingReply(nonce: 99, serverTimeMilliseconds: 1_700_000_000_000)))
        await raw.close()
        await admin.close()
    }

    @Test func theClientSeesTheRolesItWasGranted() async throws {
        let fixture = try Self.fixture()
        for (token, roles) in [("demo-admin", Roles.all), ("demo-query", .query), ("demo-reserve", [.reserve, .query]),
                               ("demo-ingest", .ingest), ("test-none", [])] as [(String, Roles)] {
            let client = try await fixture.connect(token: token)
            #expect(client.hello.roles == roles, "\(token)")
            await client.close()
        }
    }
}
