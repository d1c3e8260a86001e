import ATPClient
import ATPLedger
import ATPOperations
import ATPProtocol
import ATPServer
import Testing

/// Every metric family issue 7 asks for is exported, and the ones a test can drive move when the
/// matching operation happens (scraped over a real socket before and after).
@Suite struct MetricFamiliesTests {
    /// The families atpd exports today (the journal and snapshot families join with durability).
    static let exported: [(MetricName, String)] = [
        (.eventsApplied, "counter"), (.eventsRejected, "counter"), (.eventsDuplicates, "counter"),
        (.exceptionUnits, "counter"), (.sourceLastEventAgeSeconds, "gauge"), (.reservations, "counter"),
        (.reservationsHeld, "gauge"), (.holds, "gauge"), (.queryItems, "counter"),
        (.queryDurationSeconds, "histogram"), (.cells, "gauge"), (.cellsShort, "gauge"), (.cellBytes, "gauge"),
        (.nameBytes, "gauge"), (.skus, "gauge"), (.locations, "gauge"), (.channels, "gauge"),
        (.inboxDepth, "gauge"), (.applyLagSeconds, "gauge"), (.startTimeSeconds, "gauge"), (.ready, "gauge"),
        (.connectionsOpen, "gauge"), (.connectionsAccepted, "counter"), (.connectionsRefused, "counter"),
        (.framesReceived, "counter"), (.framesSent, "counter"), (.requestsInFlight, "gauge"),
        (.readPauses, "counter"), (.inboxFullRetries, "counter"), (.inboundBufferedBytes, "gauge"),
        (.scrapeDurationSeconds, "gauge"),
    ]

    static func event(_ kind: StockEventKind, _ sku: String, _ quantity: Int64, _ sequence: UInt64) -> WireEvent {
        WireEvent(kind: kind, sku: sku, location: "DC1", quantity: quantity, sequence: sequence)
    }

    static func reserve(_ id: String, _ sku: String, _ quantity: Int64, ttlMilliseconds: Int64 = 60_000,
                        mode: ReservationMode = .allOrNothing) throws -> WireReserveRequest {
        WireReserveRequest(id: try ReservationID(id), ttlMilliseconds: ttlMilliseconds, mode: mode,
                           lines: [WireReservationLine(sku: sku, target: .location("DC1"), quantity: quantity)])
    }

    @Test func everyFamilyIsExportedWithItsType() async throws {
        let fixture = try OperationsFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [Self.event(.receive, "SKU-1", 1, 1)])
        let exposition = try fixture.scrape()
        for (metric, type) in Self.exported {
            #expect(exposition.types[metric.name] == type, "\(metric.name) is exported as a \(type)")
        }
        #expect((exposition.value("atp_start_time_seconds") ?? 0) > 1_600_000_000)
        #expect((exposition.value("atp_scrape_duration_seconds") ?? 0) > 0)
        await client.close()
    }

    @Test func reservationOutcomesAndShortCellsMove() async throws {
        let fixture = try OperationsFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [
            Self.event(.receive, "SKU-1", 10, 1), Self.event(.receive, "SKU-2", 10, 2)])
        let before = try fixture.scrape()
        #expect(before.value("atp_cells_short") == 0)

        _ = try await client.reserve(try Self.reserve("R-expires", "SKU-1", 1, ttlMilliseconds: 1_000))
        _ = try await client.reserve(try Self.reserve("R-released", "SKU-1", 1))
        _ = try await client.release(try ReservationID("R-released"))
        let partial = try await client.reserve(try Self.reserve("R-partial", "SKU-2", 50, mode: .partial))
        #expect(partial.lines.first?.granted == 10)
        // 8 of SKU-1's 10 units are claimed (1 expiring, 7 held); shipping 5 leaves onHand 5 < 8.
        _ = try await client.reserve(try Self.reserve("R-held", "SKU-1", 7))
        _ = try await client.ingest(source: "wms", events: [Self.event(.ship, "SKU-1", 5, 3)])
        fixture.engine.advanceClock(byMilliseconds: 2_000)
        fixture.engine.waitUntilIdle()
        let after = try fixture.scrape()

        func delta(_ labels: [String: String]) -> Double {
            after.count("atp_reservations_total", labels) - before.count("atp_reservations_total", labels)
        }
        #expect(delta(["outcome": "granted"]) == 3)
        #expect(delta(["outcome": "partial"]) == 1)
        #expect(delta(["outcome": "released"]) == 1)
        #expect(delta(["outcome": "expired"]) == 1)
        #expect(delta(["outcome": "refused"]) == 0)
        #expect(after.value("atp_cells_short") == 1)
        #expect(after.value("atp_reservations_held") == 2)  // R-partial and R-held
        #expect(after.count("atp_events_applied_total", ["kind": "ship"]) == 1)
        await client.close()
    }

    @Test func connectionsAndFramesMove() async throws {
        let fixture = try OperationsFixture { $0.limits.connectionsMax = 1 }
        let before = try fixture.scrape()
        let first = try await fixture.connect()
        _ = try await first.ping()
        // One connection more than connectionsMax: the server sends the notice tooManyConnections
        // and closes (read over a plain socket: the server speaks first, then hangs up).
        let notice = try HTTPAnswer.exchangeBytes(port: fixture.port, request: [])
        #expect(notice.count > 10 && notice[4] == Opcode.notice.rawValue)
        let after = try fixture.scrape()
        #expect(after.count("atp_connections_accepted_total") - before.count("atp_connections_accepted_total") >= 1)
        #expect(after.count("atp_connections_refused_total") - before.count("atp_connections_refused_total") == 1)
        #expect(after.count("atp_frames_received_total") - before.count("atp_frames_received_total") >= 2)
        #expect(after.count("atp_frames_sent_total", ["opcode": "hello", "outcome": "ok"]) == 1)
        #expect(after.count("atp_frames_sent_total", ["opcode": "ping", "outcome": "ok"]) == 1)
        #expect(after.value("atp_connections_open") == 1)
        await first.close()
    }
}
