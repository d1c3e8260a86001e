import ATPClient
import ATPLedger
import ATPProtocol
import Testing

/// Issue 14 item 7: bad input must not grow the name tables. An event the ledger refuses whatever
/// its state leaves no SKU, location or source behind, and a channel cannot name a location no
/// event has named (a typo would have created a permanent location).
@Suite struct NameInterningTests {
    static func names(_ client: ATPConnection) async throws -> [String: Int64] {
        let stats = try await client.statsByName(prefix: "")
        return ["bytes": stats["names.bytes"] ?? -1, "skus": stats["names.skus"] ?? -1,
                "locations": stats["names.locations"] ?? -1, "channels": stats["channels.count"] ?? -1]
    }

    @Test func refusedEventsAndChannelsCreateNoNames() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        _ = try await admin.ingest(source: "wms", events: [WireEvent(kind: .receive, sku: "OLD", location: "HERE",
                                                                    quantity: 5, sequence: 1)])
        let before = try await Self.names(admin)

        // Each refused for a reason that does not depend on the ledger's state, from a new source.
        let refused = try await admin.ingest(source: "bad-feed", events: [
            WireEvent(kind: .receive, sku: "NEW-1", location: "NEW-L1", quantity: 0, sequence: 1),
            WireEvent(kind: .adjust, sku: "NEW-2", location: "NEW-L2", quantity: 3, sequence: 2,
                      code: Bucket.committed.rawValue),
            WireEvent(kind: .transferOut, sku: "NEW-3", location: "NEW-L3", quantity: 1, sequence: 3, toLocation: "NEW-L3"),
            WireEvent(kind: .count, sku: "NEW-4", location: "NEW-L4", quantity: -1, sequence: 4),
            WireEvent(kind: .ship, sku: "NEW-5", location: "NEW-L5", quantity: 2_000_000_000, sequence: 5),
        ])
        #expect(refused.appliedCount == 0)
        #expect(refused.rejections.map(\.reason) == [.quantityNotPositive, .bucketNotAllowed, .transferToSameLocation,
                                                       .valueNegative, .quantityTooLarge])
        #expect(try await Self.names(admin) == before, "a refused event created a name")
        // The rejection log still shows each event as it was sent.
        let log = try await admin.rejections(afterSequence: 0, limit: 10)
        #expect(log.entries.compactMap { $0.event?.event.sku } == ["NEW-1", "NEW-2", "NEW-3", "NEW-4", "NEW-5"])
        #expect(log.entries.allSatisfy { $0.event?.source == "bad-feed" })
        #expect(try await admin.stat("events.rejected.quantityNotPositive") == 1, "early rejections are counted")

        // A good event in the same batch as a refused one creates its own names only.
        let mixed = try await admin.ingest(source: "bad-feed", events: [
            WireEvent(kind: .receive, sku: "NEW-6", location: "NEW-L6", quantity: 0, sequence: 6),
            WireEvent(kind: .receive, sku: "GOOD", location: "HERE", quantity: 2, sequence: 7),
        ])
        #expect(mixed.appliedCount == 1)
        let afterGood = try await Self.names(admin)
        #expect(afterGood["skus"] == before["skus"]! + 1 && afterGood["locations"] == before["locations"])
        #expect(try await admin.query([.sku("NEW-6")]).answers.first?.exists == false)

        // A channel naming a location no event has named: refused, nothing created; known ones work.
        do {
            try await admin.setChannel(WireChannelDefinition(name: "web", locations: ["HERE", "HEER"]))
            Issue.record("a channel with an unknown location was accepted")
        } catch let error as ATPClientError {
            #expect(error.serverCode == .notFound)
            #expect("\(error)".contains("\"HEER\""), "\(error)")
        }
        #expect(try await Self.names(admin) == afterGood, "a refused channel created a name")
        try await admin.setChannel(WireChannelDefinition(name: "web", locations: ["HERE"]))
        #expect(try await admin.channels("web").first?.locations == ["HERE"])
        await admin.close()
    }
}
