import ATPClient
import ATPLedger
import ATPOperations
import ATPProtocol
import ATPServer
import Testing

/// /metrics over a real socket: scraped before and after real operations on the protocol port, the
/// right series move by the right amounts.
@Suite struct MetricsEndpointTests {
    static func receive(_ sku: String, _ location: String, _ quantity: Int64, _ sequence: UInt64) -> WireEvent {
        WireEvent(kind: .receive, sku: sku, location: location, quantity: quantity, sequence: sequence)
    }

    @Test func eventsReservationsAndSizesMoveWithOperations() async throws {
        let fixture = try OperationsFixture()
        let before = try fixture.scrape()
        #expect(before.types["atp_events_applied_total"] == "counter")
        #expect(before.types["atp_cells"] == "gauge")
        #expect(before.types["atp_query_duration_seconds"] == "histogram")
        #expect(before.count("atp_events_applied_total", ["kind": "receive"]) == 0)

        let admin = try await fixture.connect()
        let ingest = try await admin.ingest(source: "wms", events: [
            Self.receive("SKU-1", "DC1", 10, 1), Self.receive("SKU-2", "DC1", 5, 2),
            Self.receive("SKU-1", "DC1", 10, 1),  // a duplicate
            WireEvent(kind: .ship, sku: "SKU-1", location: "DC1", quantity: 0, sequence: 3),  // rejected: q = 0
        ])
        #expect(ingest.appliedCount == 2)
        let reserve = WireReserveRequest(id: try ReservationID("R-1"), ttlMilliseconds: 60_000, mode: .allOrNothing,
                                         lines: [WireReservationLine(sku: "SKU-1", target: .location("DC1"), quantity: 3)])
        _ = try await admin.reserve(reserve)
        _ = try await admin.commit(try ReservationID("R-1"))
        let refused = WireReserveRequest(id: try ReservationID("R-2"), ttlMilliseconds: 60_000, mode: .allOrNothing,
                                         lines: [WireReservationLine(sku: "SKU-2", target: .location("DC1"), quantity: 99)])
        _ = try await admin.reserve(refused)

        let after = try fixture.scrape()
        #expect(after.count("atp_events_applied_total", ["kind": "receive"]) == 2)
        #expect(after.count("atp_events_duplicates_total") == 1)
        #expect(after.count("atp_events_rejected_total", ["reason": "quantityNotPositive"]) == 1)
        #expect(after.count("atp_reservations_total", ["outcome": "granted"]) == 1)
        #expect(after.count("atp_reservations_total", ["outcome": "committed"]) == 1)
        #expect(after.count("atp_reservations_total", ["outcome": "refused"]) == 1)
        #expect(after.value("atp_cells") == 2)
        #expect(after.value("atp_skus") == 2)
        #expect(after.value("atp_locations") == 1)
        #expect(after.value("atp_holds") == 1)
        #expect(after.value("atp_connections_open") == 1)
        #expect(after.count("atp_frames_sent_total", ["opcode": "ingest", "outcome": "ok"]) == 1)
        #expect(after.count("atp_frames_sent_total", ["opcode": "reserve", "outcome": "ok"]) == 2)
        #expect(after.value("atp_ready") == 1)
        #expect(after.value("atp_shard_inbox_depth", ["worker": "1"]) == 0)
        #expect((after.value("atp_shard_apply_lag_seconds", ["worker": "0"]) ?? -1) >= 0)

        // A counter already exported keeps counting from where it was, scrape after scrape.
        _ = try await admin.ingest(source: "wms", events: [Self.receive("SKU-3", "DC2", 1, 4)])
        let again = try fixture.scrape()
        #expect(again.count("atp_events_applied_total", ["kind": "receive"]) == 3)
        #expect(again.value("atp_cells") == 3)
        await admin.close()
    }

    @Test func queryLatencyAndFramesAreCountedPerRequest() async throws {
        let fixture = try OperationsFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [Self.receive("SKU-1", "DC1", 10, 1)])
        let before = try fixture.scrape()
        for _ in 0..<5 { _ = try await client.query([.cell(sku: "SKU-1", location: "DC1")]) }
        _ = try await client.query([.sku("SKU-1"), .sku("SKU-1")])
        _ = try await client.query([.sku("SKU-1"), .cell(sku: "SKU-1", location: "DC1")])
        // A role the token lacks: an error frame, counted with its code.
        let ingester = try await fixture.connect(token: "demo-ingest")
        await #expect(throws: (any Error).self) { _ = try await ingester.query([.sku("SKU-1")]) }
        let after = try fixture.scrape()

        func delta(_ name: String, _ labels: [String: String]) -> Double {
            after.count(name, labels) - before.count(name, labels)
        }
        #expect(delta("atp_query_duration_seconds_count", ["kind": "cell"]) == 5)
        #expect(delta("atp_query_duration_seconds_count", ["kind": "sku"]) == 1)
        #expect(delta("atp_query_duration_seconds_count", ["kind": "mixed"]) == 1)
        #expect(delta("atp_query_duration_seconds_bucket", ["kind": "cell", "le": "+Inf"]) == 5)
        #expect(delta("atp_query_duration_seconds_sum", ["kind": "cell"]) > 0)
        #expect(delta("atp_query_items_total", [:]) == 9)
        #expect(delta("atp_frames_sent_total", ["opcode": "query", "outcome": "ok"]) == 7)
        #expect(delta("atp_frames_sent_total", ["opcode": "query", "outcome": "forbidden"]) == 1)
        #expect(delta("atp_frames_received_total", [:]) >= 9)  // 7 queries, hello, the refused query
        // Buckets are cumulative and end at the count.
        let bounds = ["1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                      "0.025", "0.05", "0.1", "+Inf"]
        var previous = 0.0
        for bound in bounds {
            let value = after.count("atp_query_duration_seconds_bucket", ["kind": "cell", "le": bound])
            #expect(value >= previous, "bucket le=\(bound) below the one before")
            previous = value
        }
        #expect(previous == after.count("atp_query_duration_seconds_count", ["kind": "cell"]))
        await client.close()
        await ingester.close()
    }

    @Test func sourceFreshnessIsSecondsSinceTheSourcesLastAppliedEvent() async throws {
        let fixture = try OperationsFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [Self.receive("SKU-1", "DC1", 1, 1)])
        fixture.engine.advanceClock(byMilliseconds: 3_000)
        _ = try await client.ingest(source: "pos", events: [Self.receive("SKU-2", "S1", 1, 1)])
        fixture.engine.advanceClock(byMilliseconds: 2_000)
        // A duplicate from wms applies nothing: wms stays 5 s old.
        _ = try await client.ingest(source: "wms", events: [Self.receive("SKU-1", "DC1", 1, 1)])
        let exposition = try fixture.scrape()
        #expect(exposition.value("atp_source_last_event_age_seconds", ["source": "wms"]) == 5)
        #expect(exposition.value("atp_source_last_event_age_seconds", ["source": "pos"]) == 2)
        await client.close()
    }

    @Test func collectorsExtendTheScrape() async throws {
        let fixture = try OperationsFixture()
        fixture.metrics.addCollector { metrics in
            metrics.setGauge(.snapshotAgeSeconds, to: 42)
            metrics.setCounter(MetricName("atp_test_total", help: "A test counter."), to: 7)
        }
        let exposition = try fixture.scrape()
        #expect(exposition.value("atp_snapshot_age_seconds") == 42)
        #expect(exposition.value("atp_test_total") == 7)
        #expect(exposition.count("atp_test_total") == 7)
        #expect(try fixture.scrape().value("atp_test_total") == 7)  // unchanged source, unchanged counter
    }
}
