import ATPClient
import ATPLedger
import ATPProtocol
import Testing

@Suite struct EndToEndSmokeTests {
    @Test func ingestQueryReserveCommitOverTCP() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        let ingest = try await admin.ingest(source: "wms", events: [
            WireEvent(kind: .receive, sku: "SKU-1", location: "S1", quantity: 10, sequence: 1),
            WireEvent(kind: .receive, sku: "SKU-1", location: "S2", quantity: 5, sequence: 2),
            WireEvent(kind: .receive, sku: "SKU-1", location: "S1", quantity: 0, sequence: 3),
        ])
        #expect(ingest.appliedCount == 2)
        #expect(ingest.rejections.map(\.index) == [2])
        #expect(ingest.rejections.first?.reason == .quantityNotPositive)

        let answers = try await admin.query([.cell(sku: "SKU-1", location: "S1"), .sku("SKU-1"), .sku("NOPE")],
                                            includeCells: true)
        #expect(answers.answers.map(\.sellable) == [10, 15, 0])
        #expect(answers.answers[2].exists == false)
        #expect(answers.answers[1].cells.map(\.location) == ["S1", "S2"])

        let id = try ReservationID("ORDER-1")
        let held = try await admin.reserve(WireReserveRequest(
            id: id, ttlMilliseconds: 60_000, mode: .allOrNothing,
            lines: [WireReservationLine(sku: "SKU-1", target: .location("S1"), quantity: 4)]))
        #expect(held.state == .held)
        #expect(held.lines.first?.granted == 4)
        let committed = try await admin.commit(id)
        #expect(committed.state == .committed)
        let after = try await admin.query([.cell(sku: "SKU-1", location: "S1")], includeCells: true)
        #expect(after.answers[0].sellable == 6)
        #expect(after.answers[0].cells.first?.committed == 4)
        await admin.close()
    }

    @Test func wrongTokenIsRefusedAndRolesAreEnforced() async throws {
        let fixture = try ServerFixture()
        await #expect(throws: ATPClientError.self) { _ = try await fixture.connect(token: "nope") }
        let reader = try await fixture.connect(token: "demo-query")
        do {
            _ = try await reader.ingest(source: "x", events: [WireEvent(kind: .receive, sku: "A", location: "B", quantity: 1, sequence: 1)])
            Issue.record("ingest with a query-only token must be refused")
        } catch let error as ATPClientError {
            #expect(error.serverCode == .forbidden)
        }
        #expect(try await reader.ping(nonce: 7) > 0)
        await reader.close()
    }
}
