import ATPLedger
import ATPProtocol
import NIOCore
import Testing

/// The ingest batch: flags decide the layout, per-event structural checks, conversion to ledger
/// events, and name resolution without copies.
@Suite struct IngestTests {
    static func decoded(_ events: [WireEvent]) throws -> IngestRequest {
        let built = IngestRequest(source: "wms", events: events)
        return try IngestRequest(decodingPayload: ByteBuffer(bytes: built.payload.bytes), limits: ProtocolLimits())
    }

    @Test func unknownKindsStillLeaveTheBatchReadable() throws {
        let events = [
            WireEvent(kindCode: 200, sku: "A", location: "L", quantity: 1, sequence: 1, toLocation: "M",
                      countQuarantine: 3, correlation: "c"),
            WireEvent(kind: .receive, sku: "B", location: "L", quantity: 2, sequence: 2),
        ]
        let request = try Self.decoded(events)
        #expect(request.wireEvents == events)
        #expect(request.events[0].structuralRejection == .unknownEventKind)
        #expect(request.events[1].structuralRejection == nil)
        #expect(request.events[0].stockEvent(sku: SKUID(0), location: LocationID(0), source: SourceID(0)) == nil)
    }

    @Test func flagsThatDoNotFitTheKindAreMalformed() throws {
        let cases: [(WireEvent, RejectionReason?)] = [
            (WireEvent(kind: .transferOut, sku: "A", location: "L", quantity: 1, sequence: 1), .malformed),
            (WireEvent(kind: .transferOut, sku: "A", location: "L", quantity: 1, sequence: 1, toLocation: "M"), nil),
            (WireEvent(kind: .receive, sku: "A", location: "L", quantity: 1, sequence: 1, toLocation: "M"), .malformed),
            (WireEvent(kind: .receive, sku: "A", location: "L", quantity: 1, sequence: 1, correlation: "o"), .malformed),
            (WireEvent(kind: .ship, sku: "A", location: "L", quantity: 1, sequence: 1, correlation: "o"), nil),
            (WireEvent(kind: .ship, sku: "A", location: "L", quantity: 1, sequence: 1, countDamaged: 1), .malformed),
            (WireEvent(kind: .count, sku: "A", location: "L", quantity: 1, sequence: 1, countDamaged: 1,
                       countQuarantine: 2), nil),
            (WireEvent(kind: .count, sku: "A", location: "L", quantity: 1, sequence: 1, flags: .intoQuarantine), .malformed),
            (WireEvent(kind: .receive, sku: "A", location: "L", quantity: 1, sequence: 1,
                       flags: [.intoQuarantine, .closesInbound]), nil),
            (WireEvent(kind: .receive, sku: "A", location: "L", quantity: 1, sequence: 1,
                       flags: EventFlags(rawValue: 0x40)), .malformed),
        ]
        let request = try Self.decoded(cases.map(\.0))
        for (index, (_, expected)) in cases.enumerated() {
            #expect(request.events[index].structuralRejection == expected, "case \(index)")
        }
    }

    @Test func convertsToLedgerEvents() throws {
        let events = [
            WireEvent(kind: .count, sku: "A", location: "L", quantity: 12, sequence: 5, eventMilliseconds: 99,
                      countDamaged: 1, countQuarantine: 2),
            WireEvent(kind: .adjust, sku: "A", location: "L", quantity: -3, sequence: 6, code: Bucket.inbound.rawValue,
                      reasonCode: 42),
            WireEvent(kind: .transferOut, sku: "A", location: "L", quantity: 4, sequence: 7, toLocation: "M"),
            WireEvent(kind: .disposition, sku: "A", location: "L", quantity: 1, sequence: 8,
                      code: DispositionOutcome.vendor.rawValue),
        ]
        let request = try Self.decoded(events)
        let count = try #require(request.events[0].stockEvent(sku: SKUID(1), location: LocationID(2), source: SourceID(3)))
        #expect(count.kind == .count && count.quantity == 12 && count.sequence == 5 && count.eventMilliseconds == 99)
        #expect(count.flags == [.countsDamaged, .countsQuarantine])
        #expect(count.countDamaged == 1 && count.countQuarantine == 2)
        #expect(count.sku == SKUID(1) && count.location == LocationID(2) && count.source == SourceID(3))
        let adjust = try #require(request.events[1].stockEvent(sku: SKUID(1), location: LocationID(2), source: SourceID(3)))
        #expect(adjust.bucket == .inbound && adjust.reasonCode == 42 && adjust.quantity == -3)
        let transfer = try #require(request.events[2].stockEvent(sku: SKUID(1), location: LocationID(2),
                                                                toLocation: LocationID(9), source: SourceID(3)))
        #expect(transfer.toLocation == LocationID(9))
        let disposition = try #require(request.events[3].stockEvent(sku: SKUID(1), location: LocationID(2),
                                                                   source: SourceID(3)))
        #expect(disposition.outcome == .vendor && disposition.bucketCode == 0)
    }

    @Test func namesResolveFromThePayload() throws {
        let request = try Self.decoded([
            WireEvent(kind: .ship, sku: "SKU-ÄÖÜ-1", location: "STORE-01", quantity: 1, sequence: 1, correlation: "order-1"),
        ])
        let event = request.events[0]
        request.withUnsafeNames { names in
            #expect(Array(names[event.sku]) == Array("SKU-ÄÖÜ-1".utf8))
            #expect(names.string(event.location) == "STORE-01")
            #expect(names[event.toLocation].isEmpty)
            #expect(throws: Never.self) { _ = try ReservationID(bytes: names[event.correlation]) }
        }
        #expect(request.sourceName == "wms")
    }

    @Test func emptyBatchIsValid() throws {
        let request = try Self.decoded([])
        #expect(request.count == 0)
    }

    @Test func replyFromLedgerResult() {
        let outcomes: [EventOutcome] = [.applied, .rejected(.deltaZero), .duplicate, .applied]
        // The engine saw request events 0, 2, 3, 4 (event 1 was rejected early by the server).
        let map = [0, 2, 3, 4]
        let reply = IngestReply(outcomes: outcomes, indexMap: { map[$0] },
                                earlyRejections: [IngestRejection(index: 1, reason: .invalidSKUName)])
        #expect(reply.appliedCount == 2 && reply.duplicateCount == 1)
        #expect(reply.rejections == [IngestRejection(index: 1, reason: .invalidSKUName),
                                     IngestRejection(index: 2, reason: .deltaZero)])
        #expect(reply.rejections[0].reason == .invalidSKUName)
        #expect(IngestRejection(index: 0, reasonCode: 999).reason == nil)
    }

    @Test func logEventFromLedgerEvent() {
        var event = StockEvent(kind: .count, sku: SKUID(1), location: LocationID(2), quantity: 7, source: SourceID(0),
                               sequence: 11, eventMilliseconds: 5)
        event.flags = [.countsQuarantine]
        event.countQuarantine = 3
        let wire = WireEvent(event, sku: "A", location: "L", toLocation: "ignored", correlation: nil)
        #expect(wire == WireEvent(kind: .count, sku: "A", location: "L", quantity: 7, sequence: 11, eventMilliseconds: 5,
                                  countQuarantine: 3))
        #expect(wire.wireFlags == .countsQuarantine)
    }
}

/// Rejection-log entries from the ledger, named through a catalog.
@Suite struct RejectionLogConversionTests {
    @Test func ledgerEntryBecomesReadable() throws {
        let catalog = Catalog()
        var event = StockEvent(kind: .transferOut, sku: try catalog.sku("SKU-1"), location: try catalog.location("DC"),
                               quantity: 3, source: try catalog.source("wms"), sequence: 9, eventMilliseconds: 4)
        event.toLocation = try catalog.location("STORE")
        let entry = RejectedEvent(logSequence: 5, atMilliseconds: 6, reason: .transferToSameLocation, event: event)
        let wire = WireRejectedEvent(entry, catalog: catalog)
        #expect(wire == WireRejectedEvent(logSequence: 5, atMilliseconds: 6, reason: .transferToSameLocation,
                                          event: LoggedEvent(source: "wms", event: WireEvent(
                                              kind: .transferOut, sku: "SKU-1", location: "DC", quantity: 3, sequence: 9,
                                              eventMilliseconds: 4, toLocation: "STORE"))))
        let bare = WireRejectedEvent(RejectedEvent(atMilliseconds: 1, reason: .invalidSKUName, event: nil, detail: "x"),
                                     catalog: catalog)
        #expect(bare.event == nil && bare.detail == "x" && bare.reason == .invalidSKUName)
    }
}
