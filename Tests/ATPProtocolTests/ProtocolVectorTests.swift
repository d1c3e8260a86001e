import ATPLedger
import ATPProtocol
import NIOCore
import Testing

/// Every hex vector in docs/PROTOCOL.md decodes to the value the test expects and re-encodes to the
/// same bytes. The vectors are read from the document itself, so the two cannot drift apart.
@Suite struct ProtocolVectorTests {
    @Test func documentHoldsExactlyTheExpectedVectors() throws {
        let names = try ProtocolDocument.vectors().map(\.name)
        #expect(Set(names).count == names.count, "duplicate vector names")
        #expect(Set(names) == Set(ExpectedVectors.all.keys))
    }

    @Test func everyOpcodeHasARequestAndAReplyVector() {
        for opcode in Opcode.allKnown where opcode != .notice {
            let vectors = ExpectedVectors.all.values.filter { $0.opcode == opcode }
            #expect(vectors.contains { if case .reply = $0.value { true } else { false } }, "no reply vector for \(opcode)")
            #expect(vectors.contains {
                switch $0.value {
                case .request, .requestError: true
                case .reply: false
                }
            }, "no request vector for \(opcode)")
        }
    }

    @Test(arguments: try ProtocolDocument.vectors().map(\.name))
    func vectorDecodesAndReencodes(name: String) throws {
        let vector = try #require(try ProtocolDocument.vectors().first { $0.name == name })
        let expected = try #require(ExpectedVectors.all[name])
        let frame = try singleFrame(vector.bytes)
        #expect(frame.opcode == expected.opcode)
        #expect(frame.requestID == expected.requestID)
        #expect(frame.frameBytes == vector.bytes.count)

        var raw = ByteBuffer()
        frame.encode(into: &raw)
        #expect(raw.bytes == vector.bytes, "raw frame re-encoding")

        var encoded = ByteBuffer()
        switch expected.value {
        case .request(let request):
            let decoded = try Request(decoding: frame, limits: ProtocolLimits())
            #expect(decoded == request)
            decoded.encode(requestID: frame.requestID, into: &encoded)
            var fromExpected = ByteBuffer()
            request.encode(requestID: frame.requestID, into: &fromExpected)
            #expect(fromExpected.bytes == vector.bytes, "encoding the expected value")
        case .reply(let reply):
            let decoded = try Reply(decoding: frame)
            #expect(decoded == reply)
            #expect(decoded.fits(frame.opcode))
            decoded.encode(opcode: frame.opcode, requestID: frame.requestID, into: &encoded)
        case .requestError(let error):
            #expect(throws: error) { try Request(decoding: frame, limits: ProtocolLimits()) }
            encoded = raw
        }
        #expect(encoded.bytes == vector.bytes, "decode then encode")
    }

    /// Batches are kept as payload bytes; rebuilding them from their string form must give the
    /// same bytes, so the string accessors lose nothing.
    @Test func batchesRoundTripThroughTheirStringForm() throws {
        for vector in try ProtocolDocument.vectors() {
            let frame = try singleFrame(vector.bytes)
            guard frame.flags.isEmpty, frame.opcode == .query || frame.opcode == .ingest else { continue }
            switch try Request(decoding: frame, limits: ProtocolLimits()) {
            case .query(let query):
                let rebuilt = QueryRequest(options: query.options, queries: query.queries)
                #expect(rebuilt.payload == frame.payload, "\(vector.name)")
            case .ingest(let ingest):
                #expect(ingest.wireEvents == ExpectedVectors.ingestEvents)
                #expect(ingest.sourceName == "wms-eu")
                let rebuilt = IngestRequest(source: ingest.sourceName, events: ingest.wireEvents)
                #expect(rebuilt.payload == frame.payload, "\(vector.name)")
            default:
                Issue.record("unexpected request in \(vector.name)")
            }
        }
    }

    @Test func vectorHeadingsStateTheirSizes() throws {
        // Each vector's heading states its size; §8 relies on two of them.
        let headings = try ProtocolDocument.text().split(separator: "\n").filter { $0.hasPrefix("#### `") }
        for vector in try ProtocolDocument.vectors() {
            let heading = headings.first { $0.hasPrefix("#### `\(vector.name)`: ") }
            #expect(heading?.hasSuffix(", \(vector.bytes.count) bytes") == true, "\(vector.name): \(String(describing: heading))")
        }
    }

    @Test func documentTablesMatchTheCode() throws {
        let text = try ProtocolDocument.text()
        for code in ErrorCode.allKnown {
            let row = "| \(code.rawValue) | `\(code)` | \(code.closesConnection ? "yes" : "no") |"
            #expect(text.contains(row), "error table row \(row)")
        }
        for opcode in Opcode.allKnown {
            let hex = String(opcode.rawValue, radix: 16)
            let row = "| `0x\(hex.count == 1 ? "0" + hex : hex)` | \(opcode) |"
            #expect(text.contains(row), "opcode table row \(row)")
        }
        let limits = ProtocolLimits()
        for (name, value) in [("frameBytesMax", "16,777,216"), ("batchItemsMax", "100,000"),
                              ("inFlightRequestsMax", "1,024"), ("connectionsMax", "10,000"), ("tokenBytesMax", "1,024"),
                              ("handshakeFrameBytesMax", "4,096")] {
            #expect(text.contains("| `\(name)` | \(value)"), "limit \(name)")
        }
        #expect(limits.frameBytesMax == 16_777_216 && limits.batchItemsMax == 100_000 && limits.inFlightRequestsMax == 1024
                && limits.connectionsMax == 10_000 && limits.tokenBytesMax == 1024 && limits.handshakeFrameBytesMax == 4096)
    }
}
