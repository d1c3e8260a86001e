import ATPClient
import ATPLedger
import ATPProtocol
import Testing

/// Broken frames over a raw socket (docs/PROTOCOL.md §2, §5): each gets the documented error —
/// a notice when the header itself is unusable, an error reply on the frame's opcode and id
/// otherwise — and the connection closes exactly when the code says so. Another connection on the
/// same server is unaffected: it is served throughout and sees the ledger unchanged.
@Suite struct MalformedFrameTests {
    /// One broken input and the answer it must get.
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        /// Sent after a successful `hello` unless `beforeHello`.
        var bytes: [UInt8]
        var beforeHello = false
        /// The answer: a notice (opcode 0, id 0) or an error reply on this opcode and id.
        var opcode: Opcode
        var requestID: UInt32
        var code: ErrorCode
        /// A failed `hello` closes whatever its code (PROTOCOL §3).
        var closesAnyway = false
        var testDescription: String { name }

        /// Whether the server must close after answering.
        var closes: Bool { code.closesConnection || closesAnyway }

        static func notice(_ name: String, _ bytes: [UInt8], _ code: ErrorCode, beforeHello: Bool = false) -> Case {
            Case(name: name, bytes: bytes, beforeHello: beforeHello, opcode: .notice, requestID: 0, code: code)
        }

        /// `broken`, which closes although its code does not (a failed `hello`).
        static func closing(_ broken: Case) -> Case {
            var closing = broken
            closing.closesAnyway = true
            return closing
        }

        static func reply(_ name: String, _ opcode: Opcode, id: UInt32, payload: [UInt8], flags: UInt8 = 0,
                          _ code: ErrorCode, beforeHello: Bool = false) -> Case {
            Case(name: name, bytes: Wire.raw(opcode: opcode.rawValue, flags: flags, id: id, payload: payload),
                 beforeHello: beforeHello, opcode: opcode, requestID: id, code: code)
        }
    }

    static let ping8: [UInt8] = Wire.le(UInt64(0x0102_0304_0506_0708))
    /// Not UTF-8: a lone continuation byte, an overlong "/", a UTF-16 surrogate, a code point past U+10FFFF.
    static let notUTF8: [[UInt8]] = [[0x41, 0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80]]

    static func helloPayload(magic: [UInt8] = Array("ATP1".utf8), token: String = "demo-admin",
                             clientName: [UInt8] = Array("raw".utf8)) -> [UInt8] {
        magic + Wire.le(UInt16(1)) + Wire.le(UInt16(1)) + Wire.le(UInt16(token.utf8.count)) + Array(token.utf8)
            + Wire.name(clientName)
    }

    static func reservePayload(target: UInt8, sku: [UInt8] = Array("M-1".utf8)) -> [UInt8] {
        Wire.name("res-1") + Wire.le(Int64(60_000)) + [0] + Wire.le(UInt32(1))
            + Wire.name(sku) + [target] + Wire.name("L") + Wire.le(Int64(1))
    }

    static func queryPayload(options: UInt8 = 0, count: UInt32 = 1, kind: UInt8 = 2,
                             sku: [UInt8] = Array("M-1".utf8)) -> [UInt8] {
        [options] + Wire.le(count) + [kind] + Wire.name(sku)
    }

    static let cases: [Case] = [
        // The header cannot be trusted: a notice, then close.
        .notice("length 0", Wire.raw(opcode: 0x02, id: 5, payload: ping8, length: 0), .malformedFrame),
        .notice("length 5, below the header", Wire.raw(opcode: 0x02, id: 5, payload: ping8, length: 5), .malformedFrame),
        .notice("length over frameBytesMax, header only", Wire.header(frameBytes: 16 * 1024 * 1024 + 1, opcode: 0x30, id: 6),
                .frameTooLarge),
        .notice("length u32 max", Wire.le(UInt32.max) + [0x30, 0], .frameTooLarge),
        .notice("reserved flag bit 2", Wire.raw(opcode: 0x02, flags: 0x04, id: 7, payload: ping8), .malformedFrame),
        .notice("reserved flag bit 7", Wire.raw(opcode: 0x02, flags: 0x80, id: 7, payload: ping8), .malformedFrame),
        .notice("error flag without reply flag", Wire.raw(opcode: 0x02, flags: 0x02, id: 7, payload: ping8), .malformedFrame),
        .notice("reserved flag before hello", Wire.raw(opcode: 0x01, flags: 0x10, id: 1, payload: helloPayload()),
                .malformedFrame, beforeHello: true),
        .notice("length below the header before hello", Wire.raw(opcode: 0x01, id: 1, length: 3), .malformedFrame,
                beforeHello: true),

        // The frame is whole but its payload breaks its layout: an error reply, then close.
        .reply("request with the reply flag", .ping, id: 11, payload: ping8, flags: 0x01, .malformedFrame),
        .reply("request with reply and error flags", .ping, id: 12, payload: ping8, flags: 0x03, .malformedFrame),
        .reply("truncated ping", .ping, id: 13, payload: Array(ping8.prefix(4)), .malformedFrame),
        .reply("ping with a byte left over", .ping, id: 14, payload: ping8 + [0], .malformedFrame),
        .reply("query count larger than the frame holds", .query, id: 15, payload: queryPayload(count: 1000),
               .malformedFrame),
        .reply("query name running past the frame", .query, id: 16,
               payload: [0] + Wire.le(UInt32(1)) + [2, 40] + Array("M-1".utf8), .malformedFrame),
        .reply("unknown query kind", .query, id: 17, payload: queryPayload(kind: 9), .malformedFrame),
        .reply("reserved query option bit", .query, id: 18, payload: queryPayload(options: 0x80), .malformedFrame),
        .reply("unknown reservation target", .reserve, id: 19, payload: reservePayload(target: 7), .malformedFrame),
        .reply("ingest event truncated", .ingest, id: 20,
               payload: Wire.name("wms") + Wire.le(UInt32(1)) + [1, 0, 0] + Wire.le(UInt16(0)) + Wire.le(UInt64(1)),
               .malformedFrame),
        .reply("stats with a byte left over", .stats, id: 21, payload: Wire.name("") + [7], .malformedFrame),
        .reply("hello with a bad magic", .hello, id: 1, payload: helloPayload(magic: Array("ATP2".utf8)),
               .malformedFrame, beforeHello: true),
        .reply("truncated hello", .hello, id: 1, payload: Array(helloPayload().prefix(9)), .malformedFrame,
               beforeHello: true),

        // Errors that leave the connection open (the frame's length still says where the next starts).
        .reply("unknown opcode", Opcode(rawValue: 0x77), id: 30, payload: [1, 2, 3], .unknownOpcode),
        .reply("unknown opcode without payload", Opcode(rawValue: 0xFF), id: 31, payload: [], .unknownOpcode),
        .reply("the notice opcode from a client", .notice, id: 32, payload: [], .unknownOpcode),
        .reply("lone continuation byte in a query name", .query, id: 40, payload: queryPayload(sku: notUTF8[0]),
               .invalidName),
        .reply("overlong UTF-8 in a query name", .query, id: 41, payload: queryPayload(sku: notUTF8[1]), .invalidName),
        .reply("surrogate in a reservation SKU", .reserve, id: 42, payload: reservePayload(target: 1, sku: notUTF8[2]),
               .invalidName),
        .reply("code point past U+10FFFF in a channel name", .channelRemove, id: 43, payload: Wire.name(notUTF8[3]),
               .invalidName),
        .reply("bad UTF-8 in an ingest source", .ingest, id: 44, payload: Wire.name(notUTF8[0]) + Wire.le(UInt32(0)),
               .invalidName),
        .reply("empty reservation id", .commit, id: 45, payload: Wire.name(""), .invalidName),
        .reply("SKU name of 65 bytes", .query, id: 46, payload: queryPayload(sku: [UInt8](repeating: 0x61, count: 65)),
               .invalidName),
        .closing(.reply("hello with a client name that is not UTF-8", .hello, id: 1,
                        payload: helloPayload(clientName: notUTF8[1]), .invalidName, beforeHello: true)),
        .closing(.reply("hello with a client name of 65 bytes", .hello, id: 1,
                        payload: helloPayload(clientName: [UInt8](repeating: 0x63, count: 65)), .invalidName,
                        beforeHello: true)),
    ]

    /// What the bystander connection sees of the ledger: answers, cells and event counters.
    static func observe(_ client: ATPConnection) async throws -> (QueryReply, [String: Int64], [WireChannelDefinition]) {
        (try await client.query([.sku("M-1"), .sku("M-2"), .cell(sku: "M-1", location: "L")], includeCells: true),
         try await client.statsByName(prefix: "events."), try await client.channels())
    }

    @Test(arguments: cases)
    func theDocumentedErrorThenCloseOrNotAndTheOtherConnectionIsUnaffected(_ broken: Case) async throws {
        let fixture = try ServerFixture()
        let bystander = try await fixture.connect()
        _ = try await bystander.ingest(source: "wms", events: [
            WireEvent(kind: .receive, sku: "M-1", location: "L", quantity: 30, sequence: 1),
            WireEvent(kind: .receive, sku: "M-2", location: "L", quantity: 5, sequence: 2),
        ])
        try await bystander.setChannel(WireChannelDefinition(name: "web", locations: ["L"]))
        let before = try await Self.observe(bystander)

        let raw = broken.beforeHello ? try await fixture.raw() : try await fixture.rawAuthenticated()
        try await raw.send(broken.bytes)
        let (frame, reply) = try await raw.nextReply()
        #expect(reply.errorCode == broken.code, "answered \(reply)")
        #expect(frame.opcode == broken.opcode)
        #expect(frame.requestID == broken.requestID)
        #expect(frame.flags == [.reply, .error])

        if broken.closes {
            #expect(try await raw.waitUntilClosed(), "the server closes after \(broken.code)")
            #expect(try await raw.nextFrame(timeoutSeconds: 1) == nil, "nothing follows the error")
        } else {
            // The connection goes on: a hello where one is still due, then a ping.
            if broken.beforeHello {
                guard case .hello = try await raw.hello(token: "demo-admin", id: 2) else {
                    Issue.record("hello after \(broken.code) refused")
                    return
                }
            }
            try await raw.send(.ping(PingRequest(nonce: 77)), id: 99)
            let (pong, answer) = try await raw.nextReply()
            #expect(pong.requestID == 99)
            #expect(answer == .ping(PingReply(nonce: 77, serverTimeMilliseconds: 1_700_000_000_000)))
            await raw.close()
        }

        // The bystander is served and sees nothing changed.
        #expect(try await bystander.ping(nonce: 5) == 1_700_000_000_000)
        let after = try await Self.observe(bystander)
        #expect(after.0 == before.0)
        #expect(after.1 == before.1)
        #expect(after.2 == before.2)
        await bystander.close()
    }

    /// Frames may arrive in pieces: a request sent one byte per segment is answered once, as a whole.
    @Test func aRequestArrivingOneByteAtATimeIsServed() async throws {
        let fixture = try ServerFixture()
        let raw = try await fixture.rawAuthenticated()
        let bytes = Wire.bytes(.query(QueryRequest(queries: [.sku("ONE-BY-ONE")])), id: 0xABCD)
            + Wire.bytes(.ping(PingRequest(nonce: 3)), id: 0xABCE)
        for byte in bytes { try await raw.send([byte]) }
        let (first, query) = try await raw.nextReply()
        #expect(first.requestID == 0xABCD || first.requestID == 0xABCE)
        let (second, _) = try await raw.nextReply()
        #expect(Set([first.requestID, second.requestID]) == [0xABCD, 0xABCE])
        if first.requestID == 0xABCD {
            guard case .query(let answer) = query else {
                Issue.record("query answered with \(query)")
                return
            }
            #expect(answer.answers.count == 1)
        }
        #expect(!raw.isClosed)
        await raw.close()
    }

    /// Pipelined queries followed, in the same write, by a frame whose length field is below 6 or
    /// above the frame limit: the connection closes with a notice, and the queries that were read
    /// but never started are not left counted in `server.requests.inFlight` (issue 14, item 3).
    @Test(arguments: [UInt32(3), UInt32(64 << 20)])
    func queriesCutOffByABadLengthAreNotLeftInFlight(length: UInt32) async throws {
        let fixture = try ServerFixture()
        let observer = try await fixture.connect()
        let raw = try await fixture.rawAuthenticated()
        var bytes: [UInt8] = []
        for n in 0..<8 { bytes += Wire.bytes(.query(QueryRequest(queries: [.sku("SKU-\(n)")])), id: UInt32(100 + n)) }
        bytes += Wire.raw(opcode: Opcode.ping.rawValue, id: 999, length: length)
        try await raw.send(bytes)
        #expect(try await eventually { raw.isClosed })
        #expect(try await eventually { try await observer.requestsInFlightBesidesThisOne() == 0 },
                "requests still counted in flight after the connection closed")
        await raw.close()
        await observer.close()
    }

    /// A client that half-closes after its requests (issue 14, item 4: `hello`, `ping`, shutdown of
    /// its sending side) gets every reply, a ping's and a query's through the engine alike, and then
    /// the server closes; a partial frame left at the end is dropped, never applied.
    @Test(arguments: 0..<10)
    func aHalfClosedClientGetsEveryReplyThenTheServerCloses(attempt: Int) async throws {
        let fixture = try ServerFixture()
        let raw = try await fixture.raw()
        let hello = HelloRequest(versionMin: 1, versionMax: 1, token: Array("demo-admin".utf8), clientName: "half-close")
        var bytes = Wire.bytes(.hello(hello), id: 20)
            + Wire.bytes(.ping(PingRequest(nonce: 7)), id: 21)
            + Wire.bytes(.query(QueryRequest(queries: [.sku("HALF-1")])), id: 22)
            + Wire.bytes(.reserve(WireReserveRequest(id: try ReservationID("half-close"), ttlMilliseconds: 60_000,
                                                     mode: .allOrNothing,
                                                     lines: [WireReservationLine(sku: "HALF-1", target: .location("L"),
                                                                                 quantity: 1)])), id: 23)
        let partial = Wire.bytes(.ping(PingRequest(nonce: 8)), id: 24)
        bytes += partial.prefix(partial.count - 3)
        try await raw.sendThenCloseOutput(bytes)
        var answered: Set<UInt32> = []
        for _ in 0..<4 { answered.insert(try await raw.nextReply(timeoutSeconds: 5).frame.requestID) }
        #expect(answered == [20, 21, 22, 23])
        #expect(try await eventually { raw.isClosed }, "the server closes once everything is answered")
        let observer = try await fixture.connect()
        #expect(try await observer.requestsInFlightBesidesThisOne() == 0)
        await observer.close()
        await raw.close()
    }
}
