import NIOCore

/// Why the frame decoder refused the byte stream. Every case closes the connection: the server
/// sends the matching notice (`ErrorReply(error)`, opcode `notice`, request id 0) and closes.
public enum FrameDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The length field says the frame is `frameBytes` long (length field included), more than
    /// `frameBytesMax`. Detected from the first 4 bytes, before the body arrives. `beforeHello`: the
    /// limit in force was `handshakeFrameBytesMax` (the message names that limit).
    case frameTooLarge(frameBytes: Int, frameBytesMax: Int, beforeHello: Bool = false)
    /// The length field is below 6, the size of the rest of the header.
    case lengthTooSmall(length: UInt32)
    /// The flags byte has a reserved bit set, or `error` without `reply`.
    case invalidFlags(UInt8)

    /// The error code the notice carries: `frameTooLarge` or `malformedFrame`.
    public var code: ErrorCode {
        switch self {
        case .frameTooLarge: .frameTooLarge
        case .lengthTooSmall, .invalidFlags: .malformedFrame
        }
    }

    /// A sentence for the notice.
    public var message: String {
        switch self {
        case .frameTooLarge(let bytes, let max, let beforeHello):
            beforeHello ? "frame of \(bytes) bytes exceeds handshakeFrameBytesMax \(max), the limit until hello succeeds"
                : "frame of \(bytes) bytes exceeds frameBytesMax \(max)"
        case .lengthTooSmall(let length): "frame length \(length) is below the minimum of 6"
        case .invalidFlags(let flags): "frame flags 0x\(String(flags, radix: 16)) are not 0x00, 0x01 or 0x03"
        }
    }

    /// "code: message".
    public var description: String { "\(code): \(message)" }
}

/// Cuts a byte stream into frames: an explicit state machine that peeks the 4-byte length before
/// it consumes anything, and refuses an oversized frame as soon as the length is known.
///
/// Feed it whatever bytes have arrived, call `next(from:)` until it returns nil, keep the leftover
/// bytes for the next read. It needs no channel; a NIO handler can call it from `decode(buffer:)`.
///
/// States:
/// - `awaitingHeader`: fewer than 10 header bytes consumed. As soon as 4 bytes are there the length
///   is checked (too small or too large: `failed`); at 10 bytes the header is consumed.
/// - `awaitingPayload(header)`: the header is consumed; waits for `header.payloadBytes` bytes, then
///   returns the frame (a slice of the input, no copy) and goes back to `awaitingHeader`.
/// - `failed(error)`: terminal. Every later call throws the same error and consumes nothing.
public struct FrameDecoder: Sendable {
    /// Where the decoder is in the stream.
    public enum State: Sendable, Equatable {
        /// Waiting for the 10 header bytes of the next frame (none consumed yet).
        case awaitingHeader
        /// The header is consumed; waiting for its payload.
        case awaitingPayload(FrameHeader)
        /// The stream was refused; the connection must close.
        case failed(FrameDecodingError)
    }

    /// The current state.
    public private(set) var state: State = .awaitingHeader
    /// Largest frame accepted, length field included. May be changed between calls; a server
    /// raises it from `handshakeFrameBytesMax` to `frameBytesMax` once `hello` has succeeded.
    public var frameBytesMax: Int {
        didSet {
            precondition(frameBytesMax >= FrameHeader.bytes, "frameBytesMax must hold a header")
            isHandshakeLimit = false
        }
    }
    /// Whether `frameBytesMax` is a server's `handshakeFrameBytesMax` (only the error message differs).
    public var isHandshakeLimit = false

    /// A decoder that enforces `limits.frameBytesMax` (clients; servers after `hello`).
    public init(limits: ProtocolLimits = ProtocolLimits()) {
        self.init(frameBytesMax: limits.frameBytesMax)
    }

    /// A server's decoder for a new connection: it accepts frames up to
    /// `limits.handshakeFrameBytesMax` until the server sets `frameBytesMax` to
    /// `limits.frameBytesMax` after a successful `hello`.
    public static func forHandshake(limits: ProtocolLimits) -> FrameDecoder {
        var decoder = FrameDecoder(frameBytesMax: limits.handshakeFrameBytesMax)
        decoder.isHandshakeLimit = true
        return decoder
    }

    /// A decoder that accepts frames of at most `frameBytesMax` bytes (at least the 10-byte header).
    public init(frameBytesMax: Int) {
        precondition(frameBytesMax >= FrameHeader.bytes, "frameBytesMax must hold a header")
        self.frameBytesMax = frameBytesMax
    }

    /// Returns the next complete frame and consumes its bytes, or returns nil (consuming at most a
    /// header) when more bytes are needed. Throws, and stays failed, when the stream is refused.
    /// Cost: O(1); the payload is a slice of `buffer`, not a copy.
    public mutating func next(from buffer: inout ByteBuffer) throws(FrameDecodingError) -> Frame? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .awaitingHeader:
                guard let header = try readHeader(from: &buffer) else { return nil }
                state = .awaitingPayload(header)
            case .awaitingPayload(let header):
                guard let payload = buffer.readSlice(length: header.payloadBytes) else { return nil }
                state = .awaitingHeader
                return Frame(opcode: header.opcode, flags: header.flags, requestID: header.requestID, payload: payload)
            }
        }
    }

    /// Peeks the length (checking it with only 4 bytes present), then consumes the header once all
    /// 10 bytes are there.
    private mutating func readHeader(from buffer: inout ByteBuffer) throws(FrameDecodingError) -> FrameHeader? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return nil
        }
        if length < FrameHeader.lengthMin { try fail(.lengthTooSmall(length: length)) }
        if Int(length) + 4 > frameBytesMax {
            try fail(.frameTooLarge(frameBytes: Int(length) + 4, frameBytesMax: frameBytesMax, beforeHello: isHandshakeLimit))
        }
        guard buffer.readableBytes >= FrameHeader.bytes else { return nil }
        let start = buffer.readerIndex
        let flags = FrameFlags(rawValue: buffer.getInteger(at: start + 5, as: UInt8.self)!)
        if !flags.isValid { try fail(.invalidFlags(flags.rawValue)) }
        let opcode = Opcode(rawValue: buffer.getInteger(at: start + 4, as: UInt8.self)!)
        let requestID = buffer.getInteger(at: start + 6, endianness: .little, as: UInt32.self)!
        buffer.moveReaderIndex(forwardBy: FrameHeader.bytes)
        return FrameHeader(length: length, opcode: opcode, flags: flags, requestID: requestID)
    }

    private mutating func fail(_ error: FrameDecodingError) throws(FrameDecodingError) -> Never {
        state = .failed(error)
        throw error
    }
}
