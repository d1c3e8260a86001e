import ATPClient
import ATPLedger
import ATPProtocol
import Testing

/// The places where a client written from docs/PROTOCOL.md and docs/SEMANTICS.md alone had to guess
/// or found the server disagreeing (issue 17), each pinned to what the documents now say.
@Suite struct ProtocolDocumentTests {
    /// One event in wire form with raw name bytes (WireEvent takes Strings, so cannot carry bad UTF-8).
    static func event(kind: UInt8, flags: UInt8 = 0, code: UInt8 = 0, quantity: Int64, sequence: UInt64,
                      sku: [UInt8] = Array("SKU-1".utf8), location: [UInt8] = Array("L1".utf8),
                      optional: [UInt8] = []) -> [UInt8] {
        [kind, flags, code] + Wire.le(UInt16(0)) + Wire.le(sequence) + Wire.le(quantity) + Wire.le(Int64(0))
            + Wire.name(sku) + Wire.name(location) + optional
    }

    static func ingestFrame(_ events: [[UInt8]], id: UInt32, source: [UInt8] = Array("feed".utf8)) -> [UInt8] {
        Wire.raw(opcode: Opcode.ingest.rawValue, id: id,
                 payload: Wire.name(source) + Wire.le(UInt32(events.count)) + events.flatMap { $0 })
    }

    /// PROTOCOL §7.3: a SKU query's cells come in ascending location-name order, not in the order
    /// the locations were first used.
    @Test func aSKUQuerysCellsComeInAscendingLocationNameOrder() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        // First use: Z1, then A2, then M3, then "A" (a prefix of A2 sorts first), then "a" (after "Z1").
        let order = ["Z1", "A2", "M3", "A", "a"]
        _ = try await client.ingest(source: "feed", events: order.enumerated().map { index, location in
            WireEvent(kind: .receive, sku: "SKU-ORDER", location: location, quantity: 5, sequence: UInt64(index + 1))
        })
        let reply = try await client.query([.sku("SKU-ORDER"), .cell(sku: "SKU-ORDER", location: "M3")], includeCells: true)
        #expect(reply.answers[0].cells.map(\.location) == ["A", "A2", "M3", "Z1", "a"])
        #expect(reply.answers[0].sellable == 25)
        #expect(reply.answers[1].cells.map(\.location) == ["M3"])
        await client.close()
    }

    /// PROTOCOL §7.6 / SEMANTICS §5: one order of checks on the wire: kind, flags (15, including
    /// `hasCorrelation` on a kind other than ship), names (11, 12), correlation (17), then the
    /// shard's checks starting with the quantity.
    @Test func eachEventGetsTheFirstFailingCheckInTheDocumentedOrder() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.raw()
        _ = try await client.hello(token: "demo-admin")
        let bad: [UInt8] = [0xC0, 0xAF]
        let cases: [(String, [UInt8], RejectionReason)] = [
            ("unknown kind 12 with a reserved flag", Self.event(kind: 12, flags: 0x40, quantity: 0, sequence: 1),
             .unknownEventKind),
            ("receive, countsDamaged 1, q 0", Self.event(kind: 1, flags: 0x04, quantity: 0, sequence: 2,
                                                          optional: Wire.le(Int32(1))), .malformed),
            ("receive, reserved flag 0x40, q 0", Self.event(kind: 1, flags: 0x40, quantity: 0, sequence: 3), .malformed),
            ("ship, intoQuarantine, q 0", Self.event(kind: 2, flags: 0x01, quantity: 0, sequence: 4), .malformed),
            ("transferOut without toLocation, q 0", Self.event(kind: 3, quantity: 0, sequence: 5), .malformed),
            ("count -1, intoQuarantine", Self.event(kind: 5, flags: 0x01, quantity: -1, sequence: 6), .malformed),
            ("receive with a correlation", Self.event(kind: 1, flags: 0x20, quantity: 1, sequence: 7,
                                                      optional: Wire.name("order-1")), .malformed),
            ("receive, bad SKU name, q 0", Self.event(kind: 1, quantity: 0, sequence: 8, sku: bad), .invalidSKUName),
            ("receive, bad location, q 0", Self.event(kind: 1, quantity: 0, sequence: 9, location: []),
             .invalidLocationName),
            ("transferOut, bad toLocation, q 0", Self.event(kind: 3, flags: 0x10, quantity: 0, sequence: 10,
                                                            optional: Wire.name(bad)), .invalidLocationName),
            ("ship, bad correlation, q 0", Self.event(kind: 2, flags: 0x20, quantity: 0, sequence: 11,
                                                      optional: Wire.name([])), .invalidCorrelation),
            ("count -2,000,000,000: the sign first", Self.event(kind: 5, quantity: -2_000_000_000, sequence: 12),
             .valueNegative),
            ("count 2,000,000,000", Self.event(kind: 5, quantity: 2_000_000_000, sequence: 13), .quantityTooLarge),
            ("adjust 0 of committed (bucket 3)", Self.event(kind: 4, code: 3, quantity: 0, sequence: 14), .deltaZero),
        ]
        try await client.send(Self.ingestFrame(cases.map(\.1), id: 7))
        let (_, reply) = try await client.nextReply()
        guard case .ingest(let answer) = reply else {
            Issue.record("ingest answered with \(reply)")
            return
        }
        #expect(answer.appliedCount == 0 && answer.duplicateCount == 0)
        for (index, (name, _, reason)) in cases.enumerated() {
            #expect(answer.rejections.first { $0.index == UInt32(index) }?.reason == reason, "\(name)")
        }
        await client.close()
    }

    /// PROTOCOL §7.7: an event refused before it became a ledger event is logged with `hasEvent` 1
    /// and the event as received (an invalid name escaped); the detail says what was wrong.
    @Test func eventsRefusedByTheDecoderAreLoggedAsReceived() async throws {
        let fixture = try ServerFixture()
        let raw = try await fixture.raw()
        _ = try await raw.hello(token: "demo-admin")
        try await raw.send(Self.ingestFrame([
            Self.event(kind: 1, quantity: 3, sequence: 41, sku: [0x53, 0xC0, 0xAF]),
            Self.event(kind: 9, flags: 0x01, quantity: 2, sequence: 42),
            Self.event(kind: 2, flags: 0x20, quantity: 1, sequence: 43, optional: Wire.name([])),
            Self.event(kind: 1, quantity: 0, sequence: 44),
        ], id: 9))
        _ = try await raw.nextReply()
        await raw.close()

        let client = try await fixture.connect()
        // The decoder's rejections and the shard's are logged by different threads: in any order.
        let log = try await client.rejections()
        let entries = log.entries.sorted { ($0.event?.event.sequence ?? 0) < ($1.event?.event.sequence ?? 0) }
        #expect(entries.map(\.reason) == [.invalidSKUName, .malformed, .invalidCorrelation, .quantityNotPositive])
        let received = entries.map(\.event)
        #expect(received.allSatisfy { $0?.source == "feed" })
        #expect(received[0]?.event == WireEvent(kind: .receive, sku: "S\\xC0\\xAF", location: "L1", quantity: 3,
                                                sequence: 41))
        #expect(entries[0].detail.contains("S\\xC0\\xAF"))
        #expect(received[1]?.event == WireEvent(kind: .damage, sku: "SKU-1", location: "L1", quantity: 2, sequence: 42,
                                                flags: .intoQuarantine))
        #expect(received[2]?.event == WireEvent(kind: .ship, sku: "SKU-1", location: "L1", quantity: 1, sequence: 43,
                                                correlation: ""))
        #expect(received[3]?.event.sequence == 44, "the shard's rejections carry their event as before")
        await client.close()
    }

    /// PROTOCOL §3, §5: a `hello` that fails for any reason closes the connection, and the message
    /// names the field ("client name"), not a kind of ledger name.
    @Test func aHelloWithAClientNameThatIsNotUTF8IsRefusedAndCloses() async throws {
        let fixture = try ServerFixture()
        let raw = try await fixture.raw()
        try await raw.send(Wire.raw(opcode: Opcode.hello.rawValue, id: 1,
                                    payload: MalformedFrameTests.helloPayload(clientName: [0x41, 0x80])))
        let (frame, reply) = try await raw.nextReply()
        #expect(frame.opcode == .hello && frame.requestID == 1)
        guard case .error(let error) = reply else {
            Issue.record("hello answered with \(reply)")
            return
        }
        #expect(error.code == .invalidName)
        #expect(error.message == "client name is not valid UTF-8")
        #expect(try await raw.waitUntilClosed())
    }

    /// A stats prefix longer than 64 bytes: `invalidName` that names the prefix; the connection stays.
    @Test func aStatsPrefixTooLongNamesThePrefix() async throws {
        let fixture = try ServerFixture()
        let raw = try await fixture.rawAuthenticated()
        try await raw.send(Wire.raw(opcode: Opcode.stats.rawValue, id: 3,
                                    payload: Wire.name(String(repeating: "s", count: 65))))
        let (_, reply) = try await raw.nextReply()
        guard case .error(let error) = reply else {
            Issue.record("stats answered with \(reply)")
            return
        }
        #expect(error.code == .invalidName)
        #expect(error.message == "stats prefix is 65 bytes long; the maximum is 64")
        try await raw.send(.ping(PingRequest(nonce: 1)), id: 4)
        #expect(try await raw.nextReply().frame.requestID == 4)
        await raw.close()
    }

    /// PROTOCOL §5's order: `notImplemented` (the server does not offer the opcode) comes before the
    /// payload is looked at, so a stray payload byte does not turn it into `malformedFrame`.
    @Test func snapshotNowWithAPayloadOnAServerWithoutADataDirectoryIsNotImplemented() async throws {
        let fixture = try ServerFixture()
        let raw = try await fixture.rawAuthenticated()
        try await raw.send(Wire.raw(opcode: Opcode.snapshotNow.rawValue, id: 5, payload: [0]))
        let (frame, reply) = try await raw.nextReply()
        #expect(frame.requestID == 5)
        #expect(reply.errorCode == .notImplemented)
        try await raw.send(.ping(PingRequest(nonce: 2)), id: 6)
        #expect(try await raw.nextReply().frame.requestID == 6, "notImplemented leaves the connection open")
        await raw.close()
    }

    /// PROTOCOL §6: the size error before `hello` names the limit in force, handshakeFrameBytesMax.
    @Test func anOversizedFrameBeforeHelloNamesTheHandshakeLimit() async throws {
        let fixture = try ServerFixture()
        let raw = try await fixture.raw()
        try await raw.send(Wire.header(frameBytes: 5_000, opcode: Opcode.hello.rawValue, id: 1))
        let (frame, reply) = try await raw.nextReply()
        #expect(frame.opcode == .notice)
        guard case .error(let error) = reply else {
            Issue.record("answered with \(reply)")
            return
        }
        #expect(error.code == .frameTooLarge)
        #expect(error.message == "frame of 5000 bytes exceeds handshakeFrameBytesMax 4096, the limit until hello succeeds")
        #expect(try await raw.waitUntilClosed())
    }

    /// PROTOCOL §7.4, written down: a line granted nothing has no allocations, and a `notHeld`
    /// commit answers with the reservation's original lines.
    @Test func reservationRepliesCarryTheirLinesAsDocumented() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "feed", events: [
            WireEvent(kind: .receive, sku: "R-1", location: "L1", quantity: 2, sequence: 1),
        ])
        let id = try ReservationID("order-17")
        let partial = try await client.reserve(WireReserveRequest(id: id, ttlMilliseconds: 60_000, mode: .partial, lines: [
            WireReservationLine(sku: "R-1", target: .location("L1"), quantity: 5),
            WireReservationLine(sku: "R-NONE", target: .location("L1"), quantity: 1),
        ]))
        #expect(partial.state == .held)
        #expect(partial.lines == [
            WireLineGrant(requested: 5, granted: 2, allocations: [WireLineAllocation(location: "L1", quantity: 2)]),
            WireLineGrant(requested: 1, granted: 0, allocations: []),
        ])
        _ = try await client.release(id)
        let commit = try await client.commit(id)
        #expect(commit.result == .notHeld && commit.state == .released)
        #expect(commit.lines == partial.lines, "notHeld carries the original lines")
        await client.close()
    }
}
