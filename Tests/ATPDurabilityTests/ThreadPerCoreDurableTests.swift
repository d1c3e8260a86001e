import ATPClient
import ATPDurability
import ATPLedger
import ATPProtocol
import ATPServer
import ATPTestSupport
import Testing

/// A thread-per-core server over a journal: reservations homed on a connection's own core run
/// inline during the read, but their replies wait for the journal like every other; what was
/// acknowledged is there after a restart.
@Suite struct ThreadPerCoreDurableTests {
    /// Starts a thread-per-core server (2 cores) over a durable ledger in `directory`.
    static func start(_ directory: TemporaryDirectory, clock: EngineClock)
        throws -> (ledger: DurableLedger, server: ATPServer, port: Int)
    {
        var configuration = TestServer.configuration()
        configuration.threadPerCore = true
        configuration.ledger = RecoveryTests.ledgerConfiguration()
        var durability = DurabilityConfiguration(dataDirectory: directory.path)
        durability.snapshotIntervalSeconds = 0
        let loops = ServerEventLoops(count: configuration.ledger.workerCount)
        let ledger = try DurableLedger.open(configuration: configuration.ledger, durability: durability, clock: clock,
                                            hosts: loops.coreHosts)
        let server = try ATPServer(configuration: configuration, engine: ledger.engine, eventLoops: loops)
        try server.start()
        return (ledger, server, server.port!)
    }

    /// Reservations from two connections (one per loop), pipelined, ids homed on both cores, on
    /// SKUs of both cores; then commits and releases. Every reply is right, some were executed
    /// inline, and a restart finds the same records and cells.
    @Test func inlineReservationsAreDurableAndRecovered() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = EngineClock.manual()
        var before: EngineState
        do {
            let (ledger, server, port) = try Self.start(directory, clock: clock)
            let first = try await ATPConnection.connect(port: port, token: "demo-admin")
            let second = try await ATPConnection.connect(port: port, token: "demo-admin")
            let skus = (0..<8).map { "T-\($0)" }
            _ = try await first.ingest(source: "wms", events: skus.enumerated().map { index, sku in
                WireEvent(kind: .receive, sku: sku, location: "L", quantity: 100, sequence: UInt64(index + 1))
            })
            let skuCores = Set(skus.map { ledger.engine.coreIndex(of: ledger.engine.catalog.existingSKU($0)!) })
            #expect(skuCores == [0, 1], "the SKUs, hence the reservations' homes, are on both cores")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<64 {
                    let client = index % 2 == 0 ? first : second
                    group.addTask {
                        let reply = try await client.reserve(WireReserveRequest(
                            id: try ReservationID("r-\(index)"), ttlMilliseconds: 600_000, mode: .allOrNothing,
                            lines: [WireReservationLine(sku: skus[index % skus.count], target: .location("L"), quantity: 1)]))
                        #expect(reply.state == .held && reply.lines[0].granted == 1, "r-\(index): \(reply)")
                    }
                }
                try await group.waitForAll()
            }
            for index in 0..<64 where index % 4 != 3 {
                let client = index % 3 == 0 ? first : second
                let id = try ReservationID("r-\(index)")
                let reply = index % 2 == 0 ? try await client.commit(id) : try await client.release(id)
                #expect(reply.state == (index % 2 == 0 ? .committed : .released), "r-\(index): \(reply)")
            }
            // A replay of a settled id is answered at once, inline, with the first answer.
            #expect(try await first.commit(try ReservationID("r-0")).replayed)
            let inline = try await first.stats(prefix: "server.requests.inline").first.map { entry -> UInt64 in
                if case .unsigned(let value) = entry.value { return value }
                return 0
            } ?? 0
            #expect(inline > 0, "some reservation operations ran on their connection's own core")
            await first.close()
            await second.close()
            before = EngineState(ledger.engine)
            #expect(before.reservations.count == 64)
            // As atpd stops: connections drained, the ledger closed, then the engine and the loops.
            server.shutdown(beforeStoppingEngine: { try? ledger.close(finalSnapshot: false) })
        }
        let reopened = try DurableLedger.open(configuration: RecoveryTests.ledgerConfiguration(),
                                              durability: DurabilityConfiguration(dataDirectory: directory.path),
                                              clock: clock)
        #expect(EngineState(reopened.engine) == before)
        try reopened.close(finalSnapshot: false)
    }
}
