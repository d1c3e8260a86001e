import ATPClient
import Foundation
import ATPLedger
import ATPProtocol
import Testing

/// Every operation of docs/PROTOCOL.md §7 end to end: a real server on loopback, the Swift client
/// (or hand-made frames where the client has no call), answers checked field by field.
@Suite struct OperationsTests {
    static let startMilliseconds: Int64 = 1_700_000_000_000

    static func receive(_ sku: String, _ location: String, _ quantity: Int64, _ sequence: UInt64) -> WireEvent {
        WireEvent(kind: .receive, sku: sku, location: location, quantity: quantity, sequence: sequence)
    }

    static func id(_ string: String) throws -> ReservationID { try ReservationID(string) }

    // MARK: - hello, ping

    @Test func helloAnnouncesVersionRolesClockAndLimits() async throws {
        let fixture = try ServerFixture {
            $0.limits.frameBytesMax = 1 << 20
            $0.limits.batchItemsMax = 5000
            $0.limits.inFlightRequestsMax = 77
        }
        let admin = try await fixture.connect()
        #expect(admin.hello.version == 2)
        #expect(admin.hello.roles == .all)
        #expect(admin.hello.serverTimeMilliseconds == Self.startMilliseconds)
        #expect(admin.hello.frameBytesMax == 1 << 20)
        #expect(admin.hello.batchItemsMax == 5000)
        #expect(admin.hello.inFlightRequestsMax == 77)
        let reserver = try await fixture.connect(token: "demo-reserve")
        #expect(reserver.hello.roles == [.reserve, .query])
        let ingester = try await fixture.connect(token: "demo-ingest")
        #expect(ingester.hello.roles == .ingest)

        // A client that speaks 0...9 gets the highest version both sides speak: 2.
        let raw = try await fixture.raw()
        let reply = try await raw.hello(token: "demo-query", versionMin: 0, versionMax: 9, id: 0xDEAD_BEEF)
        guard case .hello(let hello) = reply else {
            Issue.record("hello answered with \(reply)")
            return
        }
        #expect(hello.version == 2)
        #expect(hello.roles == .query)
        await raw.close()
        await admin.close()
        await reserver.close()
        await ingester.close()
    }

    @Test func pingEchoesTheNonceAndTheServerClock() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect(token: "demo-ingest")
        #expect(try await client.ping(nonce: 0) == Self.startMilliseconds)
        fixture.engine.advanceClock(byMilliseconds: 5_000)
        #expect(try await client.ping(nonce: .max) == Self.startMilliseconds + 5_000)

        let raw = try await fixture.rawAuthenticated(token: "demo-query")
        try await raw.send(.ping(PingRequest(nonce: 0x0123_4567_89AB_CDEF)), id: 42)
        let (frame, reply) = try await raw.nextReply()
        #expect(frame.requestID == 42)
        #expect(frame.opcode == .ping)
        #expect(frame.flags == .reply)
        #expect(reply == .ping(PingReply(nonce: 0x0123_4567_89AB_CDEF, serverTimeMilliseconds: Self.startMilliseconds + 5_000)))
        await raw.close()
        await client.close()
    }

    // MARK: - query

    @Test func queryAnswersCellsSkusAndChannelsWithAndWithoutCells() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        let seeded = try await admin.ingest(source: "wms", events: [
            Self.receive("SKU-1", "DC1", 20, 1),
            Self.receive("SKU-1", "S1", 6, 2),
            Self.receive("SKU-1", "S2", 3, 3),
            WireEvent(kind: .transferOut, sku: "SKU-1", location: "DC1", quantity: 5, sequence: 4, toLocation: "S1"),
            WireEvent(kind: .damage, sku: "SKU-1", location: "S2", quantity: 1, sequence: 5),
        ])
        #expect(seeded.appliedCount == 5 && seeded.rejections.isEmpty)
        try await admin.setChannel(WireChannelDefinition(name: "web", bufferUnits: 3, capPercent: 50, locations: ["DC1", "S1"]))

        // DC1: onHand 15 → sellable 15. S1: 6 sellable, 5 inbound. S2: 3 onHand, 1 damaged → 2.
        let queries: [WireQuery] = [
            .cell(sku: "SKU-1", location: "DC1"), .cell(sku: "SKU-1", location: "S1"), .sku("SKU-1"),
            .channel(sku: "SKU-1", channel: "web"),
        ]
        let plain = try await admin.query(queries)
        #expect(plain.options == [])
        #expect(plain.answers.map(\.exists) == [true, true, true, true])
        #expect(plain.answers.map(\.sellable) == [15, 6, 23, 9], "web: floor((15 + 6 - 3) * 50 / 100) = 9")
        #expect(plain.answers.map(\.projected) == [15, 11, 28, 11], "web projected: floor((15 + 11 - 3) / 2)")
        #expect(plain.answers.allSatisfy { $0.cells.isEmpty }, "no cells without includeCells")
        #expect(plain.answers.allSatisfy { !$0.isShort })

        let detailed = try await admin.query(queries, includeCells: true)
        #expect(detailed.options == .includeCells)
        #expect(detailed.answers.map(\.sellable) == plain.answers.map(\.sellable))
        #expect(detailed.answers[0].cells == [WireCell(location: "DC1", onHand: 15)])
        #expect(detailed.answers[1].cells == [WireCell(location: "S1", onHand: 6, inbound: 5)])
        #expect(detailed.answers[2].cells.map(\.location) == ["DC1", "S1", "S2"])
        #expect(detailed.answers[2].cells[2] == WireCell(location: "S2", onHand: 3, damaged: 1))
        #expect(detailed.answers[3].cells.map(\.location) == ["DC1", "S1"], "channel cells in priority order")
        for answer in detailed.answers {
            for cell in answer.cells { #expect(cell.exists) }
        }
        await admin.close()
    }

    @Test func statsSayWhenTheServerStarted() async throws {
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        let started = try #require(try await admin.stat("server.startMilliseconds"))
        #expect(started >= before - 1 && started <= Int64(Date().timeIntervalSince1970 * 1000) + 1)
        await admin.close()
    }

    @Test func queryOfUnknownNamesAnswersNotExistingNotAnError() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        _ = try await admin.ingest(source: "wms", events: [Self.receive("SKU-1", "S1", 4, 1)])
        let answers = try await admin.query([
            .cell(sku: "NOPE", location: "S1"), .cell(sku: "SKU-1", location: "NOWHERE"), .sku("NOPE"),
            .channel(sku: "SKU-1", channel: "no-channel"), .channel(sku: "NOPE", channel: "no-channel"),
            .cell(sku: "SKU-1", location: "S1"),
        ], includeCells: true)
        #expect(answers.answers.map(\.exists) == [false, false, false, false, false, true],
                "a query naming an unknown channel answers not existing, whatever the SKU")
        #expect(answers.answers.map(\.sellable) == [0, 0, 0, 0, 0, 4])
        #expect(answers.answers[0].cells == [WireCell(location: "S1", exists: false)])
        #expect(answers.answers[1].cells == [WireCell(location: "NOWHERE", exists: false)],
                "an unknown location is echoed back, not existing")
        #expect(answers.answers[2].cells.isEmpty, "an unknown SKU has no cells")
        #expect(answers.answers[3].cells.isEmpty, "an unknown channel has no cells")
        await admin.close()
    }

    @Test func queryBatchesAnswerInOrderAndMayBeEmpty() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        let events = (1...300).map { Self.receive("B-\($0)", "L\($0 % 7)", Int64($0), UInt64($0)) }
        #expect(try await admin.ingest(source: "wms", events: events).appliedCount == 300)
        // 600 items: every SKU as a cell and as a SKU, shuffled across shards and workers.
        var queries: [WireQuery] = []
        for n in (1...300).reversed() {
            queries.append(.cell(sku: "B-\(n)", location: "L\(n % 7)"))
            queries.append(.sku("B-\(n)"))
        }
        let reply = try await admin.query(queries)
        #expect(reply.answers.count == 600)
        for (index, n) in (1...300).reversed().enumerated() {
            #expect(reply.answers[2 * index].sellable == Int64(n))
            #expect(reply.answers[2 * index + 1].sellable == Int64(n))
        }
        let empty = try await admin.query([])
        #expect(empty.answers.isEmpty)
        let emptyWithCells = try await admin.query([], includeCells: true)
        #expect(emptyWithCells.answers.isEmpty && emptyWithCells.options == .includeCells)
        await admin.close()
    }

    // MARK: - reserve, commit, release

    @Test func reserveCommitReleaseFollowTheWorkedExample() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect(token: "demo-reserve")
        let ingest = try await fixture.connect(token: "demo-ingest")
        _ = try await ingest.ingest(source: "wms", events: [Self.receive("SKU-1", "S1", 10, 1)])
        let line = { (quantity: Int64) in [WireReservationLine(sku: "SKU-1", target: .location("S1"), quantity: quantity)] }

        let r1 = try await admin.reserve(WireReserveRequest(id: Self.id("R1"), ttlMilliseconds: 60_000,
                                                             mode: .allOrNothing, lines: line(4)))
        #expect(r1.result == .ok && r1.state == .held && !r1.replayed)
        #expect(r1.expiresAtMilliseconds == Self.startMilliseconds + 60_000)
        #expect(r1.lines == [WireLineGrant(requested: 4, granted: 4, allocations: [WireLineAllocation(location: "S1", quantity: 4)])])

        let r2 = try await admin.reserve(WireReserveRequest(id: Self.id("R2"), ttlMilliseconds: 60_000,
                                                             mode: .allOrNothing, lines: line(8)))
        #expect(r2.result == .ok && r2.state == .refused, "refusing is an answer, not an error")
        #expect(r2.lines.map(\.granted) == [0] && r2.expiresAtMilliseconds == 0)

        let r3 = try await admin.reserve(WireReserveRequest(id: Self.id("R3"), ttlMilliseconds: 60_000,
                                                             mode: .partial, lines: line(8)))
        #expect(r3.state == .held && r3.lines.map(\.granted) == [6] && r3.lines.map(\.requested) == [8])

        // Replays repeat the first answer, whatever the new request says.
        let r1Again = try await admin.reserve(WireReserveRequest(id: Self.id("R1"), ttlMilliseconds: 5,
                                                                  mode: .partial, lines: line(1)))
        #expect(r1Again.replayed && r1Again.state == .held && r1Again.lines == r1.lines)
        let r2Again = try await admin.reserve(WireReserveRequest(id: Self.id("R2"), ttlMilliseconds: 60_000,
                                                                  mode: .allOrNothing, lines: line(1)))
        #expect(r2Again.replayed && r2Again.state == .refused)

        let c1 = try await admin.commit(Self.id("R1"))
        #expect(c1.result == .ok && c1.state == .committed && !c1.replayed && c1.expiresAtMilliseconds == 0)
        let c1Again = try await admin.commit(Self.id("R1"))
        #expect(c1Again.result == .ok && c1Again.state == .committed && c1Again.replayed)
        let cells = try await admin.query([.cell(sku: "SKU-1", location: "S1")], includeCells: true)
        let cell = try #require(cells.answers[0].cells.first)
        #expect(cell.reserved == 6 && cell.committed == 4)
        #expect(cells.answers[0].sellable == 0)

        let release3 = try await admin.release(Self.id("R3"))
        #expect(release3.result == .ok && release3.state == .released)
        let release3Again = try await admin.release(Self.id("R3"))
        #expect(release3Again.state == .released && release3Again.replayed)
        let commit3 = try await admin.commit(Self.id("R3"))
        #expect(commit3.result == .notHeld && commit3.state == .released)
        let commit2 = try await admin.commit(Self.id("R2"))
        #expect(commit2.result == .notHeld && commit2.state == .refused)

        let unknownCommit = try await admin.commit(Self.id("NEVER"))
        #expect(unknownCommit.result == .unknownReservation && unknownCommit.state == .refused && unknownCommit.lines.isEmpty)
        let unknownRelease = try await admin.release(Self.id("NEVER"))
        #expect(unknownRelease.result == .unknownReservation && unknownRelease.state == .refused)

        let release1 = try await admin.release(Self.id("R1"))
        #expect(release1.state == .released)
        #expect(try await admin.query([.cell(sku: "SKU-1", location: "S1")]).answers[0].sellable == 10)
        await admin.close()
        await ingest.close()
    }

    @Test func reservationsExpireOnTheServerClockAndThroughChannels() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        _ = try await admin.ingest(source: "wms", events: [Self.receive("SKU-1", "S1", 6, 1), Self.receive("SKU-1", "S2", 3, 2)])
        try await admin.setChannel(WireChannelDefinition(name: "store", locations: ["S1", "S2"]))
        let split = try await admin.reserve(WireReserveRequest(
            id: Self.id("CH-1"), ttlMilliseconds: 1_000, mode: .allOrNothing,
            lines: [WireReservationLine(sku: "SKU-1", target: .channel("store", allowSplit: true), quantity: 8)]))
        #expect(split.state == .held)
        #expect(split.lines.first?.allocations == [WireLineAllocation(location: "S1", quantity: 6),
                                                   WireLineAllocation(location: "S2", quantity: 2)])
        let noSplit = try await admin.reserve(WireReserveRequest(
            id: Self.id("CH-2"), ttlMilliseconds: 1_000, mode: .allOrNothing,
            lines: [WireReservationLine(sku: "SKU-1", target: .channel("store", allowSplit: false), quantity: 2)]))
        #expect(noSplit.state == .refused, "no single location has 2 left")

        fixture.engine.advanceClock(byMilliseconds: 1_000)
        let late = try await admin.commit(Self.id("CH-1"))
        #expect(late.result == .notHeld && late.state == .expired)
        #expect(try await eventually { try await admin.query([.sku("SKU-1")]).answers[0].sellable == 9 },
                "expired units return to their cells")
        await admin.close()
    }

    @Test func invalidReservationRequestsAreInvalidRequestErrorsAndKeepTheConnection() async throws {
        let fixture = try ServerFixture { $0.ledger.reservationLinesMax = 3 }
        let admin = try await fixture.connect()
        _ = try await admin.ingest(source: "wms", events: [Self.receive("SKU-1", "S1", 10, 1)])
        let line = WireReservationLine(sku: "SKU-1", target: .location("S1"), quantity: 1)
        let invalid: [WireReserveRequest] = [
            WireReserveRequest(id: try Self.id("BAD-TTL"), ttlMilliseconds: 0, mode: .allOrNothing, lines: [line]),
            WireReserveRequest(id: try Self.id("BAD-TTL2"), ttlMilliseconds: 8 * 24 * 3600 * 1000, mode: .allOrNothing, lines: [line]),
            WireReserveRequest(id: try Self.id("BAD-QTY"), ttlMilliseconds: 1000, mode: .allOrNothing,
                               lines: [WireReservationLine(sku: "SKU-1", target: .location("S1"), quantity: 0)]),
            WireReserveRequest(id: try Self.id("BAD-QTY2"), ttlMilliseconds: 1000, mode: .partial,
                               lines: [WireReservationLine(sku: "SKU-1", target: .location("S1"), quantity: 2_000_000_000)]),
            WireReserveRequest(id: try Self.id("BAD-LINES"), ttlMilliseconds: 1000, mode: .allOrNothing,
                               lines: Array(repeating: line, count: 4)),
            WireReserveRequest(id: try Self.id("NO-LINES"), ttlMilliseconds: 1000, mode: .allOrNothing, lines: []),
        ]
        for request in invalid {
            do {
                let reply = try await admin.reserve(request)
                Issue.record("\(request.id) answered \(reply), expected invalidRequest")
            } catch let error as ATPClientError {
                #expect(error.serverCode == .invalidRequest, "\(request.id): \(error)")
            }
            // Not recorded: the id stays unknown.
            #expect(try await admin.commit(request.id).result == .unknownReservation)
        }
        // An unknown mode code does not change the layout: invalidRequest too (hand-made frame).
        let raw = try await fixture.rawAuthenticated()
        var payload = Wire.name("BAD-MODE") + Wire.le(Int64(1000)) + [7] + Wire.le(UInt32(1))
        payload += Wire.name("SKU-1") + [1] + Wire.name("S1") + Wire.le(Int64(1))
        try await raw.send(Wire.raw(opcode: Opcode.reserve.rawValue, id: 9, payload: payload))
        let (frame, reply) = try await raw.nextReply()
        #expect(frame.requestID == 9 && frame.flags == .errorReply && reply.errorCode == .invalidRequest)
        try await raw.send(.ping(PingRequest(nonce: 1)), id: 10)
        #expect(try await raw.nextReply().frame.requestID == 10, "the connection stays open")
        #expect(try await admin.query([.cell(sku: "SKU-1", location: "S1")]).answers[0].sellable == 10, "nothing held")
        await raw.close()
        await admin.close()
    }

    // MARK: - ingest and the rejection log

    @Test func ingestReportsAppliedDuplicatesAndRejectionsWithIndices() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect(token: "demo-ingest")
        let first = try await client.ingest(source: "wms-eu", events: [
            Self.receive("SKU-1", "S1", 10, 100),
            WireEvent(kind: .receive, sku: "SKU-1", location: "S1", quantity: 0, sequence: 101),
            Self.receive("SKU-1", "S2", 5, 102),
            WireEvent(kind: .adjust, sku: "SKU-1", location: "S1", quantity: 3, sequence: 103,
                      code: Bucket.committed.rawValue),
            WireEvent(kind: .transferOut, sku: "SKU-1", location: "S1", quantity: 1, sequence: 104, toLocation: "S1"),
        ])
        #expect(first.appliedCount == 2)
        #expect(first.duplicateCount == 0)
        #expect(first.rejections == [IngestRejection(index: 1, reason: .quantityNotPositive),
                                     IngestRejection(index: 3, reason: .bucketNotAllowed),
                                     IngestRejection(index: 4, reason: .transferToSameLocation)])

        // The same frame again: applied events come back as duplicates, rejected ones are rejected again.
        let resent = try await client.ingest(source: "wms-eu", events: [
            Self.receive("SKU-1", "S1", 10, 100), Self.receive("SKU-1", "S2", 5, 102),
            Self.receive("SKU-1", "S3", 1, 105),
        ])
        #expect(resent.appliedCount == 1 && resent.duplicateCount == 2 && resent.rejections.isEmpty)
        // Another source has its own sequences.
        let other = try await client.ingest(source: "wms-us", events: [Self.receive("SKU-1", "S1", 1, 100)])
        #expect(other.appliedCount == 1)
        let empty = try await client.ingest(source: "wms-eu", events: [])
        #expect(empty == IngestReply(appliedCount: 0, duplicateCount: 0, rejections: []))

        let reader = try await fixture.connect(token: "demo-query")
        #expect(try await reader.query([.sku("SKU-1")]).answers[0].sellable == 17)
        await reader.close()
        await client.close()
    }

    @Test func eventsWithInvalidNamesAreRejectedOneByOneAndLogged() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        let long = String(repeating: "x", count: 65)
        let reply = try await client.ingest(source: "feed", events: [
            Self.receive("", "S1", 1, 1),
            Self.receive("GOOD-1", "S1", 1, 2),
            Self.receive("SKU-2", long, 1, 3),
            WireEvent(kind: .transferOut, sku: "SKU-3", location: "S1", quantity: 1, sequence: 4, toLocation: ""),
            WireEvent(kind: .ship, sku: "SKU-4", location: "S1", quantity: 1, sequence: 5, correlation: ""),
            WireEvent(kindCode: 99, sku: "SKU-5", location: "S1", quantity: 1, sequence: 6),
            WireEvent(kind: .receive, sku: "SKU-6", location: "S1", quantity: 1, sequence: 7, toLocation: "S2"),
            Self.receive(long, "S1", 1, 8),
            Self.receive("GOOD-2", "S1", 2, 9),
        ])
        #expect(reply.appliedCount == 2)
        #expect(reply.rejections == [
            IngestRejection(index: 0, reason: .invalidSKUName), IngestRejection(index: 2, reason: .invalidLocationName),
            IngestRejection(index: 3, reason: .invalidLocationName), IngestRejection(index: 4, reason: .invalidCorrelation),
            IngestRejection(index: 5, reason: .unknownEventKind), IngestRejection(index: 6, reason: .malformed),
            IngestRejection(index: 7, reason: .invalidSKUName),
        ])
        let answers = try await client.query([.sku("GOOD-1"), .sku("GOOD-2"), .sku("SKU-2"), .sku("SKU-3")])
        #expect(answers.answers.map(\.sellable) == [1, 2, 0, 0])

        let page = try await client.rejections()
        #expect(page.entries.count == 7)
        #expect(page.newestSequence == 7 && page.oldestKeptSequence == 1 && page.droppedCount == 0)
        #expect(page.entries.map(\.logSequence) == Array(1...7))
        let reasons = page.entries.compactMap(\.reason).map(\.rawValue).sorted()
        #expect(reasons == [RejectionReason.invalidSKUName, .invalidLocationName, .invalidLocationName, .invalidCorrelation,
                            .unknownEventKind, .malformed, .invalidSKUName].map(\.rawValue).sorted())
        for entry in page.entries where entry.reason == .invalidLocationName || entry.reason == .invalidSKUName {
            #expect(!entry.detail.isEmpty, "the log says which name was wrong: \(entry)")
            #expect(entry.atMilliseconds == Self.startMilliseconds)
        }
        #expect(page.entries.contains { $0.detail.contains(long) }, "the long name is shown in the detail")

        // The whole source invalid: every event rejected with invalidName before anything runs.
        do {
            _ = try await client.ingest(source: "", events: [Self.receive("A", "B", 1, 1)])
            Issue.record("an empty source must be refused")
        } catch let error as ATPClientError {
            #expect(error.serverCode == .invalidName)
        }
        let stats = try await client.statsByName(prefix: "events.rejected")
        #expect(stats["events.rejected.invalidSKUName"] == 2)
        #expect(stats["events.rejected.invalidLocationName"] == 2)
        await client.close()
    }

    @Test func rejectionLogReadPagesAndReportsDrops() async throws {
        let fixture = try ServerFixture { $0.ledger.rejectionLogCapacity = 20 }
        let client = try await fixture.connect(token: "demo-ingest")
        let empty = try await client.rejections()
        #expect(empty.entries.isEmpty && empty.newestSequence == 0 && empty.droppedCount == 0)

        // 25 rejected events (quantity 0), 5 more than the log keeps.
        let events = (1...25).map { WireEvent(kind: .receive, sku: "SKU-\($0)", location: "S1", quantity: 0, sequence: UInt64($0)) }
        let reply = try await client.ingest(source: "wms", events: events)
        #expect(reply.rejections.count == 25)
        #expect(reply.rejections.map(\.index) == Array(0..<25))

        var seen: [UInt64] = []
        var after: UInt64 = 0
        var pages = 0
        while pages < 10 {
            let page = try await client.rejections(afterSequence: after, limit: 8)
            #expect(page.oldestKeptSequence == 6 && page.newestSequence == 25 && page.droppedCount == 5)
            guard let last = page.entries.last else { break }
            #expect(page.entries.count <= 8)
            #expect(page.entries.allSatisfy { $0.logSequence > after })
            seen += page.entries.map(\.logSequence)
            after = last.logSequence
            pages += 1
        }
        #expect(seen == Array(6...25))
        #expect(pages == 3)
        // The logged events read back with their names and fields. Workers log concurrently, so the
        // log's order across shards need not be the batch's order: find the entry by its event.
        let page = try await client.rejections(afterSequence: 0, limit: 100)
        #expect(page.entries.count == 20)
        for entry in page.entries {
            #expect(entry.reason == .quantityNotPositive)
            #expect(entry.event?.source == "wms")
            let sequence = try #require(entry.event?.event.sequence)
            #expect(entry.event?.event == WireEvent(kind: .receive, sku: "SKU-\(sequence)", location: "S1", quantity: 0,
                                                    sequence: sequence))
        }
        let beyond = try await client.rejections(afterSequence: 1_000, limit: 100)
        #expect(beyond.entries.isEmpty)
        await client.close()
    }

    // MARK: - channels

    @Test func channelSetShowRemove() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        let web = WireChannelDefinition(name: "web", bufferUnits: 5, capPercent: 80, locations: ["DC-1", "STORE-01"])
        let market = WireChannelDefinition(name: "market", locations: ["STORE-01"])
        try await admin.nameLocations(["DC-1", "STORE-01"])
        try await admin.setChannel(web)
        try await admin.setChannel(market)
        #expect(try await admin.channels("web") == [web])
        #expect(Set(try await admin.channels().map(\.name)) == ["web", "market"])
        let replaced = WireChannelDefinition(name: "web", bufferUnits: 0, capPercent: 100, locations: ["STORE-01"])
        try await admin.setChannel(replaced)
        #expect(try await admin.channels("web") == [replaced], "the last definition wins")

        try await admin.removeChannel("web")
        for attempt in ["remove", "show"] {
            do {
                if attempt == "remove" { try await admin.removeChannel("web") } else { _ = try await admin.channels("web") }
                Issue.record("\(attempt) of a removed channel must answer notFound")
            } catch let error as ATPClientError {
                #expect(error.serverCode == .notFound, "\(attempt): \(error)")
            }
        }
        #expect(try await admin.channels() == [market])

        // Invalid definitions: invalidRequest; an invalid name: invalidName. The connection stays.
        let invalid: [(WireChannelDefinition, ErrorCode)] = [
            (WireChannelDefinition(name: "none", locations: []), .invalidRequest),
            (WireChannelDefinition(name: "twice", locations: ["A", "A"]), .invalidRequest),
            (WireChannelDefinition(name: "cap", capPercent: 0, locations: ["A"]), .invalidRequest),
            (WireChannelDefinition(name: "cap2", capPercent: 101, locations: ["A"]), .invalidRequest),
            (WireChannelDefinition(name: "buffer", bufferUnits: -1, locations: ["A"]), .invalidRequest),
            (WireChannelDefinition(name: String(repeating: "c", count: 33), locations: ["A"]), .invalidName),
            (WireChannelDefinition(name: "loc", locations: [""]), .invalidName),
        ]
        for (definition, code) in invalid {
            do {
                try await admin.setChannel(definition)
                Issue.record("\(definition.name) must be refused with \(code)")
            } catch let error as ATPClientError {
                #expect(error.serverCode == code, "\(definition.name): \(error)")
            }
        }
        #expect(try await admin.channels().map(\.name) == ["market"])
        await admin.close()
    }

    // MARK: - stats, snapshotNow

    @Test func statsChangeAsOperationsHappen() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        let before = try await admin.statsByName()
        for name in ["events.applied", "events.duplicates", "events.rejected", "cells.count", "names.skus", "channels.count",
                     "reservations.granted", "queries.answered", "server.connections.open", "server.connections.accepted",
                     "server.frames.received", "server.requests.answered", "server.errors.sent", "server.reads.paused",
                     "server.inbox.fullRetries"] {
            #expect(before[name] != nil, "stats lists \(name)")
        }
        #expect(before["server.connections.open"] == 1)
        #expect(before["events.applied"] == 0)

        let other = try await fixture.connect(token: "demo-query")
        _ = try await admin.ingest(source: "wms", events: [
            Self.receive("SKU-1", "S1", 10, 1), Self.receive("SKU-2", "S1", 10, 2),
            Self.receive("SKU-2", "S1", 10, 2), WireEvent(kind: .receive, sku: "SKU-3", location: "S1", quantity: 0, sequence: 3),
        ])
        _ = try await admin.query([.sku("SKU-1"), .sku("SKU-2"), .sku("SKU-9")])
        _ = try await admin.reserve(WireReserveRequest(id: Self.id("S-1"), ttlMilliseconds: 1000, mode: .allOrNothing,
                                                        lines: [WireReservationLine(sku: "SKU-1", target: .location("S1"), quantity: 1)]))
        try await admin.setChannel(WireChannelDefinition(name: "web", locations: ["S1"]))
        _ = try? await other.ingest(source: "x", events: [])  // forbidden: an error sent

        let after = try await admin.statsByName()
        #expect(after["events.applied"] == 2)
        #expect(after["events.duplicates"] == 1)
        #expect(after["events.rejected"] == 1)
        #expect(after["events.rejected.quantityNotPositive"] == 1)
        #expect(after["events.applied.receive"] == 2)
        #expect(after["cells.count"] == 2)
        #expect(after["names.skus"].map { $0 >= 2 } == true)
        #expect(after["channels.count"] == 1)
        #expect(after["reservations.granted"] == 1 && after["reservations.held"] == 1)
        #expect(after["queries.answered"].map { $0 >= 3 } == true)
        #expect(after["server.connections.open"] == 2)
        #expect(after["server.connections.accepted"].map { $0 >= 2 } == true)
        #expect(after["server.frames.received"].map { $0 >= (before["server.frames.received"] ?? 0) + 6 } == true)
        #expect(after["server.requests.answered"].map { $0 >= (before["server.requests.answered"] ?? 0) + 5 } == true)
        #expect(after["server.errors.sent"].map { $0 >= (before["server.errors.sent"] ?? 0) + 1 } == true)

        // The prefix filters.
        let serverOnly = try await admin.stats(prefix: "server.")
        #expect(!serverOnly.isEmpty && serverOnly.allSatisfy { $0.name.hasPrefix("server.") })
        #expect(try await admin.stats(prefix: "no-such-prefix").isEmpty)

        await other.close()
        #expect(try await eventually { try await admin.stat("server.connections.open") == 1 }, "a closed connection is counted out")
        await admin.close()
    }

    /// Without a data directory (no snapshot hook) snapshotNow is answered notImplemented and the
    /// connection stays open (a payload is malformed: tested with the vectors).
    @Test func snapshotNowIsNotImplementedWithoutADataDirectory() async throws {
        let fixture = try ServerFixture()
        let raw = try await fixture.rawAuthenticated()
        try await raw.send(Wire.raw(opcode: Opcode.snapshotNow.rawValue, id: 15))
        for id: UInt32 in [15] {
            let (frame, reply) = try await raw.nextReply()
            #expect(frame.requestID == id && frame.opcode == .snapshotNow && frame.flags == .errorReply)
            #expect(reply.errorCode == .notImplemented)
        }
        try await raw.send(.ping(PingRequest(nonce: 3)), id: 17)
        #expect(try await raw.nextReply().frame.requestID == 17)
        await raw.close()
    }
}
