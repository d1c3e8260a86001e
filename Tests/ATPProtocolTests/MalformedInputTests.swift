import ATPLedger
import ATPProtocol
import NIOCore
import Testing

/// Broken payloads get the error code docs/PROTOCOL.md §5 promises, and never a crash.
@Suite struct MalformedInputTests {
    static let limits = ProtocolLimits()

    static func decodeRequest(_ opcode: Opcode, _ payload: PayloadBuilder,
                              limits: ProtocolLimits = limits) throws(MessageDecodingError) -> Request {
        let frame = Frame(opcode: opcode, flags: [], requestID: 1, payload: ByteBuffer(bytes: payload.bytes))
        return try Request(decoding: frame, limits: limits)
    }

    static func code(_ body: () throws(MessageDecodingError) -> Void) -> ErrorCode? {
        do throws(MessageDecodingError) {
            try body()
            return nil
        } catch {
            #expect(!error.message.isEmpty)
            return error.code
        }
    }

    // MARK: - Truncation and trailing bytes, over every vector

    @Test func everyTruncatedPayloadIsMalformed() throws {
        for vector in try ProtocolDocument.vectors() {
            let frame = try singleFrame(vector.bytes)
            let payload = frame.payload.bytes
            for length in 0..<payload.count {
                let cut = Frame(opcode: frame.opcode, flags: frame.flags, requestID: frame.requestID,
                                payload: ByteBuffer(bytes: Array(payload[0..<length])))
                let code = Self.code { () throws(MessageDecodingError) in
                    if frame.flags.isEmpty { _ = try Request(decoding: cut, limits: Self.limits) } else {
                        _ = try Reply(decoding: cut)
                    }
                }
                if frame.opcode == .snapshotNow && frame.flags.isEmpty { continue }
                #expect(code == .malformedFrame, "\(vector.name) cut to \(length) bytes gave \(String(describing: code))")
            }
        }
    }

    @Test func everyPayloadWithATrailingByteIsMalformed() throws {
        for vector in try ProtocolDocument.vectors() {
            let frame = try singleFrame(vector.bytes)
            if frame.opcode == .snapshotNow && frame.flags.isEmpty { continue }
            let longer = Frame(opcode: frame.opcode, flags: frame.flags, requestID: frame.requestID,
                               payload: ByteBuffer(bytes: frame.payload.bytes + [0]))
            let code = Self.code { () throws(MessageDecodingError) in
                if frame.flags.isEmpty { _ = try Request(decoding: longer, limits: Self.limits) } else {
                    _ = try Reply(decoding: longer)
                }
            }
            #expect(code == .malformedFrame, "\(vector.name)")
        }
    }

    // MARK: - Direction and opcodes

    @Test func requestWithReplyFlagIsMalformed() {
        let frame = Frame(opcode: .ping, flags: .reply, requestID: 1, payload: ByteBuffer(bytes: PayloadBuilder().u64(1).bytes))
        #expect(throws: MessageDecodingError.unexpectedFlags(.reply)) { try Request(decoding: frame, limits: Self.limits) }
        let request = Frame(opcode: .ping, flags: [], requestID: 1, payload: ByteBuffer(bytes: PayloadBuilder().u64(1).bytes))
        #expect(throws: MessageDecodingError.unexpectedFlags([])) { try Reply(decoding: request) }
    }

    @Test func unknownOpcodeDoesNotClose() {
        let error = MessageDecodingError.unknownOpcode(Opcode(rawValue: 0x99))
        #expect(throws: error) { try Self.decodeRequest(Opcode(rawValue: 0x99), PayloadBuilder()) }
        #expect(error.code == .unknownOpcode && !error.closesConnection)
        #expect(throws: MessageDecodingError.unknownOpcode(.notice)) { try Self.decodeRequest(.notice, PayloadBuilder()) }
    }

    // MARK: - Names

    @Test func emptyNameInAQueryIsInvalidName() {
        let payload = PayloadBuilder().u8(0).u32(2).u8(2).name("A").u8(1).name("").name("L")
        #expect(throws: MessageDecodingError.invalidName(nameError([], .sku), item: 1)) {
            try Self.decodeRequest(.query, payload)
        }
    }

    @Test func tooLongNamesAreInvalidNames() {
        let sku65 = String(repeating: "s", count: 65)
        #expect(throws: MessageDecodingError.invalidName(
            nameError(Array(sku65.utf8), .sku), item: 0)) {
            try Self.decodeRequest(.query, PayloadBuilder().u8(0).u32(1).u8(2).name(sku65))
        }
        let channel33 = String(repeating: "c", count: 33)
        #expect(throws: MessageDecodingError.invalidName(
            nameError(Array(channel33.utf8), .channel), item: 0)) {
            try Self.decodeRequest(.query, PayloadBuilder().u8(0).u32(1).u8(3).name("S").name(channel33))
        }
        #expect(throws: MessageDecodingError.invalidName(
            nameError(Array(channel33.utf8), .channel), item: nil)) {
            try Self.decodeRequest(.channelRemove, PayloadBuilder().name(channel33))
        }
        let id65 = String(repeating: "r", count: 65)
        #expect(Self.code { () throws(MessageDecodingError) in _ = try Self.decodeRequest(.commit, PayloadBuilder().name(id65)) }
                == .invalidName)
    }

    @Test func nameLengthPastTheEndIsMalformed() {
        let payload = PayloadBuilder().u8(0).u32(1).u8(2).u8(200).raw(Array("SKU".utf8))
        #expect(throws: MessageDecodingError.truncated(field: "sku")) { try Self.decodeRequest(.query, payload) }
    }

    @Test(arguments: [[UInt8(0xFF)], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80]])
    func invalidUTF8(bytes: [UInt8]) {
        let notUTF8 = nameError(bytes, .sku)
        #expect(throws: MessageDecodingError.invalidName(notUTF8, item: 0)) {
            try Self.decodeRequest(.query, PayloadBuilder().u8(0).u32(1).u8(2).name(bytes: bytes))
        }
        // An ingest source must be valid; names inside events are left to the server's interning.
        #expect(throws: MessageDecodingError.invalidName(nameError(bytes, .source), item: nil)) {
            try Self.decodeRequest(.ingest, PayloadBuilder().name(bytes: bytes).u32(0))
        }
        // Text in replies must be UTF-8 too.
        let frame = Frame(opcode: .ping, flags: .errorReply, requestID: 1,
                          payload: ByteBuffer(bytes: PayloadBuilder().u16(5).u16(UInt16(bytes.count)).raw(bytes).bytes))
        #expect(throws: MessageDecodingError.invalidText(field: "message")) { try Reply(decoding: frame) }
    }

    @Test func invalidNamesInsideEventsRejectOnlyThoseEvents() throws {
        let events = [
            WireEvent(kind: .receive, sku: "", location: "DC", quantity: 1, sequence: 1),
            WireEvent(kind: .receive, sku: "OK", location: String(repeating: "x", count: 70), quantity: 1, sequence: 2),
        ]
        let built = IngestRequest(source: "erp", events: events)
        guard case .ingest(let decoded) = try Self.decodeRequest(.ingest, PayloadBuilder().raw(built.payload.bytes)) else {
            Issue.record("not an ingest")
            return
        }
        #expect(decoded.count == 2)
        decoded.withUnsafeNames { names in
            #expect(throws: InvalidNameError.self) { try validateName(names[decoded.events[0].sku], kind: .sku) }
            #expect(throws: InvalidNameError.self) { try validateName(names[decoded.events[1].location], kind: .location) }
        }
    }

    // MARK: - Counts

    @Test func countAboveBatchItemsMaxIsBatchTooLargeAndDoesNotClose() {
        let small = ProtocolLimits(batchItemsMax: 2)
        let events = (1...3).map { WireEvent(kind: .receive, sku: "S", location: "L", quantity: 1, sequence: UInt64($0)) }
        let payload = PayloadBuilder().raw(IngestRequest(source: "erp", events: events).payload.bytes)
        let error = MessageDecodingError.batchTooLarge(field: "event count", count: 3, batchItemsMax: 2)
        #expect(throws: error) { try Self.decodeRequest(.ingest, payload, limits: small) }
        #expect(error.code == .batchTooLarge && !error.closesConnection)
        #expect(throws: MessageDecodingError.batchTooLarge(field: "query count", count: 3, batchItemsMax: 2)) {
            try Self.decodeRequest(.query, PayloadBuilder().raw(
                QueryRequest(queries: [.sku("a"), .sku("b"), .sku("c")]).payload.bytes), limits: small)
        }
        let channel = PayloadBuilder().name("web").i64(0).u8(100).u32(3).name("a").name("b").name("c")
        #expect(Self.code { () throws(MessageDecodingError) in _ = try Self.decodeRequest(.channelSet, channel, limits: small) }
                == .batchTooLarge)
    }

    @Test func countLargerThanTheFrameIsMalformed() {
        let payload = PayloadBuilder().u8(0).u32(0xFFFF_FFFF).u8(2).name("SKU")
        #expect(throws: MessageDecodingError.countExceedsFrame(field: "query count", count: 0xFFFF_FFFF, bytesLeft: 5)) {
            try Self.decodeRequest(.query, payload)
        }
        let ingest = PayloadBuilder().name("erp").u32(2).raw([UInt8](repeating: 0, count: 40))
        #expect(Self.code { () throws(MessageDecodingError) in _ = try Self.decodeRequest(.ingest, ingest) } == .malformedFrame)
    }

    // MARK: - Layout codes and reserved bits

    @Test func unknownLayoutCodesAreMalformed() {
        #expect(throws: MessageDecodingError.unknownLayoutCode(field: "query kind", value: 4)) {
            try Self.decodeRequest(.query, PayloadBuilder().u8(0).u32(1).u8(4).name("S"))
        }
        let reserve = PayloadBuilder().name("o-1").i64(1000).u8(0).u32(1).name("S").u8(9).name("L").i64(1)
        #expect(throws: MessageDecodingError.unknownLayoutCode(field: "reservation target", value: 9)) {
            try Self.decodeRequest(.reserve, reserve)
        }
    }

    @Test func reservedBitsAreMalformed() {
        #expect(throws: MessageDecodingError.reservedBitsSet(field: "query options", value: 0x02)) {
            try Self.decodeRequest(.query, PayloadBuilder().u8(0x02).u32(0))
        }
    }

    @Test func unknownReservationModeIsInvalidRequest() {
        let reserve = PayloadBuilder().name("o-1").i64(1000).u8(7).u32(1).name("S").u8(1).name("L").i64(1)
        let error = MessageDecodingError.invalidValue(field: "mode", value: 7)
        #expect(throws: error) { try Self.decodeRequest(.reserve, reserve) }
        #expect(error.code == .invalidRequest && !error.closesConnection)
    }

    // MARK: - hello

    @Test func helloWithBadMagicIsMalformed() {
        let hello = PayloadBuilder().raw(Array("HTTP".utf8)).u16(1).u16(1).u16(0).name("")
        #expect(throws: MessageDecodingError.badMagic) { try Self.decodeRequest(.hello, hello) }
    }

    @Test func helloWithTooLongTokenIsUnauthenticated() {
        let token = [UInt8](repeating: 7, count: 1025)
        let hello = PayloadBuilder().raw(Array("ATP1".utf8)).u16(1).u16(1).u16(1025).raw(token).name("")
        let error = MessageDecodingError.tokenTooLong(bytes: 1025, tokenBytesMax: 1024)
        #expect(throws: error) { try Self.decodeRequest(.hello, hello) }
        #expect(error.code == .unauthenticated && error.closesConnection)
    }

    @Test func errorRepliesCarryTheDecodingErrorsCode() {
        let error = MessageDecodingError.truncated(field: "sku")
        let reply = ErrorReply(error)
        #expect(reply.code == .malformedFrame && reply.code.closesConnection)
        var buffer = ByteBuffer()
        Reply.error(reply).encode(opcode: .query, requestID: 42, into: &buffer)
        #expect(throws: Never.self) {
            let frame = try singleFrame(buffer.bytes)
            #expect(frame.flags == .errorReply && frame.requestID == 42)
            #expect(try Reply(decoding: frame) == .error(reply))
        }
    }
}
