@testable import ATPClient
import ATPLedger
import ATPProtocol
import ATPServer
import Testing

/// A thread-per-core server (`threadPerCore`): the engine's cores are the event loops; a request
/// whose shards are on the connection's own core runs inline during the read, the others travel to
/// their core. Both paths must answer alike, and ordering across cores must hold.
@Suite struct ThreadPerCoreTests {
    static func fixture() throws -> ServerFixture {
        try ServerFixture { $0.threadPerCore = true }
    }

    /// Two connections (one per loop: connections are spread round robin), every SKU queried on
    /// each: answers equal the engine's own, and some went inline while others travelled.
    @Test func queriesAnswerAlikeInlineAndForwarded() async throws {
        let fixture = try Self.fixture()
        let admin = try await fixture.connect()
        let skus = (0..<24).map { "SKU-\($0)" }
        _ = try await admin.ingest(source: "wms", events: skus.enumerated().map { index, sku in
            WireEvent(kind: .receive, sku: sku, location: index % 2 == 0 ? "S1" : "S2", quantity: Int64(index + 1),
                      sequence: UInt64(index + 1))
        })
        let other = try await fixture.connect()
        let expected = fixture.engine.query(skus.map { .sku(try! fixture.engine.catalog.sku($0)) }).answers.map(\.sellable)
        for client in [admin, other] {
            // One request per SKU, all in flight at once (pipelined), then a batch of all of them.
            let single = try await withThrowingTaskGroup(of: (Int, Int64).self) { group in
                for (index, sku) in skus.enumerated() {
                    group.addTask { (index, try await client.query([.sku(sku)]).answers[0].sellable) }
                }
                var answers = [Int64](repeating: -1, count: skus.count)
                for try await (index, sellable) in group { answers[index] = sellable }
                return answers
            }
            #expect(single == expected)
            #expect(try await client.query(skus.map { .sku($0) }).answers.map(\.sellable) == expected)
        }
        let inline = try await admin.stat("server.requests.inline") ?? 0
        let answered = try await admin.stat("server.requests.answered") ?? 0
        #expect(inline >= 24, "each connection answered its own core's SKUs inline (\(inline) of \(answered))")
        #expect(inline < answered, "the other core's SKUs were forwarded")
        await admin.close()
        await other.close()
    }

    /// With a port per core, `hello` (version 2) maps every shard to its core and each core to its
    /// port; a client that sends each SKU to its owner's port has every query answered inline,
    /// where it is read. A version-1 hello gets no map, and the main port still serves everything.
    @Test func aShardAwareClientSendsEachSKUToItsCoresPort() async throws {
        let fixture = try ServerFixture {
            $0.threadPerCore = true
            $0.ledger.workerCount = 2
            $0.corePortBase = 0
        }
        let ports = fixture.server.corePorts
        #expect(ports.count == 2 && !ports.contains(fixture.port))
        let main = try await fixture.connect()
        let map = try #require(main.hello.shardMap)
        #expect(main.hello.version == 2 && map.placement == .nameHash)
        #expect(map.shardCount == fixture.engine.configuration.shardCount)
        #expect(map.owners.map { Int($0.port) } == ports && map.owners.allSatisfy { $0.host.isEmpty })
        let skus = (0..<40).map { "AWARE-\($0)" }
        for sku in skus {
            #expect(map.owner(ofSKUNamed: sku) == fixture.engine.coreIndex(of: try fixture.engine.catalog.sku(sku)))
        }
        _ = try await main.ingest(source: "wms", events: skus.enumerated().map { index, sku in
            WireEvent(kind: .receive, sku: sku, location: "L", quantity: Int64(index + 1), sequence: UInt64(index + 1))
        })
        // Two connections in a row to each core's port: each is served by that core (accepting on
        // the whole group would hand them to the loops round robin instead).
        var perCore: [ATPConnection] = []
        var spare: [ATPConnection] = []
        for (core, port) in ports.enumerated() {
            for round in 0..<2 {
                let connection = try await ATPConnection.connect(port: port, token: "demo-admin")
                #expect(connection.hello.shardMap?.connectionOwner == core, "port \(port) is served by core \(core)")
                if round == 0 { perCore.append(connection) } else { spare.append(connection) }
            }
        }
        let inlineBefore = try await main.stat("server.requests.inline") ?? 0
        for (index, sku) in skus.enumerated() {
            let owner = try #require(map.owner(ofSKUNamed: sku))
            let answer = try await perCore[owner].query([.cell(sku: sku, location: "L")]).answers[0]
            #expect(answer.sellable == Int64(index + 1))
        }
        let inlineAfter = try await main.stat("server.requests.inline") ?? 0
        #expect(inlineAfter - inlineBefore >= Int64(skus.count), "every query ran where it was read")

        let raw = try await fixture.raw()
        try await raw.send(.hello(HelloRequest(versionMin: 1, versionMax: 1, token: Array("demo-admin".utf8))), id: 1)
        guard case .hello(let versionOne) = try await raw.nextReply().1 else {
            Issue.record("a version-1 hello was not answered with a hello reply")
            return
        }
        #expect(versionOne.version == 1 && versionOne.shardMap == nil)
        await raw.close()
        for connection in perCore + spare + [main] { await connection.close() }
    }

    /// The Swift client's shard-aware mode: a connection per core, each request on its SKU's owner
    /// (queries split by owner and put back in order, reservations on their first line's owner,
    /// commit where the reserve went); everything it sends runs inline. Against a server without
    /// ports per core the same client sends everything over its one connection.
    @Test func theShardAwareClientRunsEveryRequestWhereItIsRead() async throws {
        let fixture = try ServerFixture {
            $0.threadPerCore = true
            $0.ledger.workerCount = 2
            $0.corePortBase = 0
        }
        let client = try await ATPShardAwareClient.connect(port: fixture.port, token: "demo-admin")
        #expect(client.isShardAware && client.owners.count == 2)
        let skus = (0..<30).map { "ROUTED-\($0)" }
        _ = try await client.first.ingest(source: "wms", events: skus.enumerated().map { index, sku in
            WireEvent(kind: .receive, sku: sku, location: "L", quantity: Int64(100 + index), sequence: UInt64(index + 1))
        })
        #expect(Set(skus.map { client.owner(ofSKU: $0) }).count == 2, "the SKUs sit on both cores")
        let inlineBefore = try await client.first.stat("server.requests.inline") ?? 0
        let answers = try await client.query(skus.map { .cell(sku: $0, location: "L") })
        #expect(answers.answers.map(\.sellable) == skus.indices.map { Int64(100 + $0) }, "answers in the batch's order")
        let inlineAfterQuery = try await client.first.stat("server.requests.inline") ?? 0
        #expect(inlineAfterQuery - inlineBefore == 2, "the batch went as two parts, each answered where it was read")
        for (index, sku) in skus.prefix(6).enumerated() {
            let id = try ReservationID("routed-\(index)")
            let held = try await client.reserve(WireReserveRequest(id: id, ttlMilliseconds: 60_000, mode: .allOrNothing,
                                                                   lines: [WireReservationLine(sku: sku, target: .location("L"), quantity: 2)]))
            #expect(held.state == .held)
            #expect(try await client.commit(id).state == .committed)
        }
        await client.close()

        let plain = try ServerFixture { $0.threadPerCore = false }
        let fallback = try await ATPShardAwareClient.connect(port: plain.port, token: "demo-admin")
        #expect(!fallback.isShardAware)
        _ = try await fallback.first.ingest(source: "wms", events: [WireEvent(kind: .receive, sku: "X", location: "L", quantity: 3, sequence: 1)])
        #expect(try await fallback.query([.cell(sku: "X", location: "L")]).answers[0].sellable == 3)
        await fallback.close()
    }

    /// Without thread-per-core the map has one owner per worker and no ports: send anywhere.
    @Test func withoutAPortPerCoreTheMapSaysSendAnywhere() async throws {
        let fixture = try ServerFixture {
            $0.threadPerCore = false
            $0.ledger.workerCount = 2
        }
        let client = try await fixture.connect()
        let map = try #require(client.hello.shardMap)
        #expect(map.owners.count == 2 && map.owners.allSatisfy { $0.port == 0 } && map.connectionOwner == nil)
        await client.close()
        #expect(throws: ConfigurationError.self) {
            var configuration = ServerConfiguration()
            configuration.corePortBase = 7600
            try configuration.validate()
        }
    }

    /// A multi-core reservation committed, then at once a shipment naming it on the other core's
    /// SKU: the shipment finds the committed units (the commit reached every part first).
    @Test func aShipmentRightAfterAMultiCoreCommitFindsIt() async throws {
        let fixture = try Self.fixture()
        let client = try await fixture.connect()
        let skus = (0..<8).map { "M-\($0)" }
        _ = try await client.ingest(source: "wms", events: skus.enumerated().map { index, sku in
            WireEvent(kind: .receive, sku: sku, location: "L", quantity: 1_000, sequence: UInt64(index + 1))
        })
        let catalog = fixture.engine.catalog
        let cores = Dictionary(grouping: skus) { fixture.engine.coreIndex(of: try! catalog.sku($0)) }
        #expect(cores.count == 2)
        let lines = cores.values.map { WireReservationLine(sku: $0[0], target: .location("L"), quantity: 3) }
        for round in 0..<20 {
            let id = try ReservationID("order-\(round)")
            let held = try await client.reserve(WireReserveRequest(id: id, ttlMilliseconds: 60_000, mode: .allOrNothing,
                                                                   lines: lines))
            #expect(held.state == .held)
            #expect(try await client.commit(id).state == .committed)
            let shipped = try await client.ingest(source: "ship", events: lines.enumerated().map { index, line in
                WireEvent(kind: .ship, sku: line.sku, location: "L", quantity: 3, sequence: UInt64(round * 10 + index + 1),
                          correlation: id.description)
            })
            #expect(shipped.appliedCount == UInt32(lines.count))
            let cells = try await client.query(lines.map { .cell(sku: $0.sku, location: "L") }, includeCells: true)
            #expect(cells.answers.allSatisfy { $0.cells.first?.committed == 0 }, "round \(round): \(cells.answers)")
        }
        await client.close()
    }

    /// Reservation operations homed on the connection's own core are answered during the read;
    /// the others travel. Every reservation is homed at its SKU's core (one SKU: one core), so the
    /// other connection's reserves, commits and releases are all forwarded. Pipelined from both
    /// connections, every reply is right, every unit is accounted for, and nothing stays counted
    /// in flight.
    @Test func reservationsAnswerAlikeInlineAndForwarded() async throws {
        let fixture = try Self.fixture()
        let first = try await fixture.connect()
        let second = try await fixture.connect()
        _ = try await first.ingest(source: "wms", events: [WireEvent(kind: .receive, sku: "R-1", location: "L",
                                                                     quantity: 100, sequence: 1)])
        let ids = try (0..<40).map { try ReservationID("o-\($0)") }
        let line = WireReservationLine(sku: "R-1", target: .location("L"), quantity: 2)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, id) in ids.enumerated() {
                let client = index % 2 == 0 ? first : second
                group.addTask {
                    let reply = try await client.reserve(WireReserveRequest(id: id, ttlMilliseconds: 60_000,
                                                                            mode: .allOrNothing, lines: [line]))
                    #expect(reply.state == .held && reply.lines[0].granted == 2, "\(id): \(reply)")
                    let settled = index % 2 == 0 ? try await client.commit(id) : try await client.release(id)
                    #expect(settled.state == (index % 2 == 0 ? .committed : .released), "\(id): \(settled)")
                }
            }
            try await group.waitForAll()
        }
        let skuCore = fixture.engine.coreIndex(of: fixture.engine.catalog.existingSKU("R-1")!)
        #expect(Set(ids.map { fixture.engine.coreIndex(ofReservation: $0) }) == [skuCore])
        let cell = try await first.query([.cell(sku: "R-1", location: "L")], includeCells: true).answers[0]
        #expect(cell.sellable == 60 && cell.cells.first?.committed == 40 && cell.cells.first?.reserved == 0)
        // A replay and an unknown id, inline or not, answer alike.
        for client in [first, second] {
            #expect(try await client.commit(ids[0]).replayed)
            #expect(try await client.release(try ReservationID("nobody")).result == .unknownReservation)
        }
        let stats = try await first.statsByName(prefix: "server.requests.")
        let inline = stats["server.requests.inline"] ?? 0
        #expect(inline >= 40, "the operations homed on each connection's core ran inline (\(inline))")
        #expect(try await first.requestsInFlightBesidesThisOne() == 0)
        await first.close()
        await second.close()
    }

    /// Reservations expire on the cores' loops when the (manual) clock moves.
    @Test func reservationsExpireOnTheLoops() async throws {
        let fixture = try Self.fixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [WireEvent(kind: .receive, sku: "E-1", location: "L",
                                                                      quantity: 5, sequence: 1)])
        let id = try ReservationID("soon")
        _ = try await client.reserve(WireReserveRequest(id: id, ttlMilliseconds: 1_000, mode: .allOrNothing,
                                                        lines: [WireReservationLine(sku: "E-1", target: .location("L"), quantity: 5)]))
        #expect(try await client.query([.cell(sku: "E-1", location: "L")]).answers[0].sellable == 0)
        fixture.engine.advanceClock(byMilliseconds: 1_001)
        #expect(try await eventually {
            try await client.query([.cell(sku: "E-1", location: "L")]).answers[0].sellable == 5
        })
        #expect(try await client.release(id).state == .expired)
        await client.close()
    }
}

/// The shard-aware client's memory of where its reservations went stays bounded, however many it
/// reserves and releases.
@Suite struct ReservationHomesTests {
    @Test func releasedAndEvictedIdsDoNotAccumulate() throws {
        let homes = ReservationHomes(capacity: 8)
        for n in 0..<1_000 {
            let id = try ReservationID("r-\(n)")
            homes.set(id, owner: n % 2)
            if n % 3 != 0 { homes.remove(id) }
            #expect(homes.orderCount <= 16, "after \(n): \(homes.orderCount) ids kept in order")
        }
        let last = try ReservationID("r-999")
        #expect(homes.owner(of: last) == 1)
        #expect(homes.owner(of: try ReservationID("r-0")) == nil, "the oldest were forgotten")
    }
}
