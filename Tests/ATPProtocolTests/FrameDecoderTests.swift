import ATPLedger
import ATPProtocol
import NIOCore
import Testing

/// The frame decoder fed its input whole, one byte at a time, and in random pieces gives the same
/// frames; it refuses an oversized frame from its first 4 bytes.
@Suite struct FrameDecoderTests {
    /// Every vector of the document, back to back: many messages per buffer.
    static func stream() throws -> (bytes: [UInt8], frames: [Frame]) {
        let vectors = try ProtocolDocument.vectors()
        return (vectors.flatMap(\.bytes), try vectors.map { try singleFrame($0.bytes) })
    }

    /// Decodes `bytes` delivered in pieces of the given sizes (the last piece takes the rest).
    static func decode(_ bytes: [UInt8], pieces: [Int]) throws -> [Frame] {
        var decoder = FrameDecoder()
        var buffer = ByteBuffer()
        var frames: [Frame] = []
        var offset = 0
        var pieceIndex = 0
        while offset < bytes.count {
            let size = pieceIndex < pieces.count ? pieces[pieceIndex] : bytes.count - offset
            pieceIndex += 1
            let end = min(bytes.count, offset + size)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            while let frame = try decoder.next(from: &buffer) { frames.append(frame) }
            buffer.discardReadBytes()
        }
        #expect(buffer.readableBytes == 0)
        #expect(decoder.state == .awaitingHeader)
        return frames
    }

    @Test func manyFramesInOneBuffer() throws {
        let (bytes, frames) = try Self.stream()
        #expect(try Self.decode(bytes, pieces: [bytes.count]) == frames)
    }

    @Test func oneByteAtATime() throws {
        let (bytes, frames) = try Self.stream()
        #expect(try Self.decode(bytes, pieces: Array(repeating: 1, count: bytes.count)) == frames)
    }

    @Test(arguments: [1, 2, 3, 0xA7B1, 0xDEAD_BEEF, 20_240_601])
    func randomSplits(seed: UInt64) throws {
        let (bytes, frames) = try Self.stream()
        var random = SplitMix64(seed: seed)
        var pieces: [Int] = []
        var total = 0
        while total < bytes.count {
            let size = Int.random(in: 0...40, using: &random)
            pieces.append(size)
            total += size
        }
        print("FrameDecoderTests.randomSplits seed \(seed): \(pieces.count) pieces")
        #expect(try Self.decode(bytes, pieces: pieces) == frames, "seed \(seed)")
    }

    @Test func framesDecodedFromPiecesReencodeToTheStream() throws {
        let (bytes, _) = try Self.stream()
        var random = SplitMix64(seed: 7)
        let pieces = (0..<bytes.count).map { _ in Int.random(in: 1...9, using: &random) }
        var out = ByteBuffer()
        for frame in try Self.decode(bytes, pieces: pieces) { frame.encode(into: &out) }
        #expect(out.bytes == bytes)
    }

    @Test func oversizedLengthIsRefusedFromTheFirstFourBytes() throws {
        var decoder = FrameDecoder(frameBytesMax: 4096)
        // length 4093 → 4097 bytes: one too many. Only the length field has arrived.
        var buffer = ByteBuffer(bytes: [0xFD, 0x0F, 0x00, 0x00])
        #expect(throws: FrameDecodingError.frameTooLarge(frameBytes: 4097, frameBytesMax: 4096)) {
            try decoder.next(from: &buffer)
        }
        #expect(buffer.readableBytes == 4, "nothing consumed")
        #expect(decoder.state == .failed(.frameTooLarge(frameBytes: 4097, frameBytesMax: 4096)))
        // Terminal: more bytes do not help.
        buffer.writeBytes([0x02, 0x00, 0x01, 0x00, 0x00, 0x00])
        #expect(throws: FrameDecodingError.self) { try decoder.next(from: &buffer) }
        #expect(FrameDecodingError.frameTooLarge(frameBytes: 4097, frameBytesMax: 4096).code == .frameTooLarge)
    }

    @Test func largestAllowedFrameIsAccepted() throws {
        var decoder = FrameDecoder(frameBytesMax: 4096)
        let payload = [UInt8](repeating: 0xAB, count: 4096 - 10)
        var buffer = ByteBuffer(bytes: frameBytes(opcode: .ping, payload: payload))
        let frame = try #require(try decoder.next(from: &buffer))
        #expect(frame.payload.readableBytes == 4086)
    }

    @Test func hugeLengthFromANonProtocolClientIsRefused() throws {
        var decoder = FrameDecoder()
        var buffer = ByteBuffer(bytes: Array("GET / HTTP/1.1\r\n".utf8))
        #expect(throws: FrameDecodingError.frameTooLarge(frameBytes: 0x2054_4547 + 4, frameBytesMax: 16 << 20)) {
            try decoder.next(from: &buffer)
        }
    }

    @Test func lengthBelowTheHeaderIsMalformed() throws {
        var decoder = FrameDecoder()
        var buffer = ByteBuffer(bytes: [0x05, 0x00, 0x00, 0x00])
        #expect(throws: FrameDecodingError.lengthTooSmall(length: 5)) { try decoder.next(from: &buffer) }
        #expect(FrameDecodingError.lengthTooSmall(length: 5).code == .malformedFrame)
    }

    @Test(arguments: [UInt8(0x02), 0x04, 0x80, 0x05, 0xFF])
    func invalidFlagsAreMalformed(flags: UInt8) throws {
        var decoder = FrameDecoder()
        var buffer = ByteBuffer(bytes: [0x06, 0x00, 0x00, 0x00, 0x02, flags, 0x01, 0x00, 0x00, 0x00])
        #expect(throws: FrameDecodingError.invalidFlags(flags)) { try decoder.next(from: &buffer) }
        #expect(FrameDecodingError.invalidFlags(flags).code.closesConnection)
    }

    @Test func partialHeaderWaits() throws {
        var decoder = FrameDecoder()
        var buffer = ByteBuffer(bytes: [0x0E, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02])
        #expect(try decoder.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 7, "a partial header is not consumed")
        #expect(decoder.state == .awaitingHeader)
        buffer.writeBytes([0x00, 0x00, 0x00, 0xEF])
        #expect(try decoder.next(from: &buffer) == nil)
        if case .awaitingPayload(let header) = decoder.state {
            #expect(header.payloadBytes == 8)
            #expect(header.requestID == 2)
        } else {
            Issue.record("expected awaitingPayload, got \(decoder.state)")
        }
    }

    @Test func unknownOpcodeKeepsTheStreamInStep() throws {
        let unknown = frameBytes(opcode: Opcode(rawValue: 0x77), requestID: 5, payload: [1, 2, 3])
        let ping = frameBytes(opcode: .ping, requestID: 6, payload: PayloadBuilder().u64(9).bytes)
        let frames = try Self.decode(unknown + ping, pieces: [unknown.count + ping.count])
        #expect(frames.count == 2)
        let error = MessageDecodingError.unknownOpcode(Opcode(rawValue: 0x77))
        #expect(throws: error) { try Request(decoding: frames[0], limits: ProtocolLimits()) }
        #expect(!error.closesConnection)
        #expect(try Request(decoding: frames[1], limits: ProtocolLimits()) == .ping(PingRequest(nonce: 9)))
    }

    @Test func handshakeLimitThenFullLimit() throws {
        let limits = ProtocolLimits()
        var decoder = FrameDecoder.forHandshake(limits: limits)
        #expect(decoder.frameBytesMax == 4096)
        // The longest hello fits the handshake limit.
        var buffer = ByteBuffer()
        Request.hello(HelloRequest(token: [UInt8](repeating: 1, count: limits.tokenBytesMax),
                                   clientName: String(repeating: "c", count: 64))).encode(requestID: 1, into: &buffer)
        #expect(buffer.readableBytes == limits.handshakeFrameBytesNeeded)
        #expect(try decoder.next(from: &buffer) != nil)
        // After hello the server raises the limit; a 1 MiB query frame now passes.
        decoder.frameBytesMax = limits.frameBytesMax
        let big = frameBytes(opcode: .query, payload: [UInt8](repeating: 0, count: 1 << 20))
        buffer.writeBytes(big)
        #expect(try decoder.next(from: &buffer)?.payload.readableBytes == 1 << 20)
    }

    @Test func largeFrameBeforeHelloIsRefused() throws {
        var decoder = FrameDecoder.forHandshake(limits: ProtocolLimits())
        var buffer = ByteBuffer(bytes: frameBytes(opcode: .hello, payload: [UInt8](repeating: 0, count: 5000)))
        let refused = FrameDecodingError.frameTooLarge(frameBytes: 5010, frameBytesMax: 4096, beforeHello: true)
        #expect(throws: refused) { try decoder.next(from: &buffer) }
        // The message names the limit in force before hello, not frameBytesMax.
        #expect(refused.message == "frame of 5010 bytes exceeds handshakeFrameBytesMax 4096, the limit until hello succeeds")
    }
}
