import ATPLedger
import ATPProtocol
import NIOCore
import Testing

/// docs/PROTOCOL.md §8: a single-cell query with 16-byte names is at most 64 bytes each way.
@Suite struct CompactnessTests {
    static let sku = "SKU-000000001234"
    static let location = "STORE-BERLIN-001"

    @Test func namesAreSixteenBytes() {
        #expect(Self.sku.utf8.count == 16 && Self.location.utf8.count == 16)
    }

    @Test func singleCellQueryIsAtMost64Bytes() throws {
        var buffer = ByteBuffer()
        Request.query(QueryRequest(queries: [.cell(sku: Self.sku, location: Self.location)]))
            .encode(requestID: .max, into: &buffer)
        #expect(buffer.readableBytes <= 64)
        #expect(buffer.readableBytes == 50)
    }

    @Test func singleCellReplyIsAtMost64Bytes() throws {
        var buffer = ByteBuffer()
        Reply.query(QueryReply(answers: [WireQueryAnswer(exists: true, isShort: true, sellable: .max, projected: .max)]))
            .encode(opcode: .query, requestID: .max, into: &buffer)
        #expect(buffer.readableBytes <= 64)
        #expect(buffer.readableBytes == 32)
    }

    @Test func anEventWithSixteenByteNamesIs63Bytes() {
        let event = WireEvent(kind: .receive, sku: Self.sku, location: Self.location, quantity: 1, sequence: 1)
        let one = IngestRequest(source: "s", events: [event]).payload.readableBytes
        let two = IngestRequest(source: "s", events: [event, event]).payload.readableBytes
        #expect(two - one == 63)
    }

    @Test func decodedIngestEventsAreSmall() {
        #expect(MemoryLayout<IngestEvent>.stride == 56)
        #expect(MemoryLayout<QueryItem>.stride <= 12)
        #expect(MemoryLayout<NameRef>.size == 4)
    }
}
