import NIOCore

/// The `flags` byte of a frame header: bit 0 reply, bit 1 error (with reply); bits 2..7 reserved.
public struct FrameFlags: OptionSet, Hashable, Sendable {
    /// The wire byte.
    public var rawValue: UInt8
    /// Wraps a wire byte.
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The frame answers a request.
    public static let reply = FrameFlags(rawValue: 0x01)
    /// The reply is an error: its payload is an `ErrorReply`. Only valid together with `reply`.
    public static let error = FrameFlags(rawValue: 0x02)
    /// `reply | error`.
    public static let errorReply: FrameFlags = [.reply, .error]
    /// Bits that must be 0 in version 1.
    public static let reservedMask: UInt8 = 0xFC

    /// Whether the byte is one of the three valid values: request, reply, error reply.
    @inlinable public var isValid: Bool {
        rawValue & FrameFlags.reservedMask == 0 && !(contains(.error) && !contains(.reply))
    }
}

/// The fixed 10-byte head of every frame: length, opcode, flags, request id (docs/PROTOCOL.md §2).
public struct FrameHeader: Sendable, Equatable {
    /// Bytes after the length field: 6 + payload bytes.
    public var length: UInt32
    /// The operation.
    public var opcode: Opcode
    /// Request, reply or error reply.
    public var flags: FrameFlags
    /// Chosen by the client, echoed in the reply.
    public var requestID: UInt32

    /// Size of the header on the wire.
    public static let bytes = 10
    /// Smallest valid `length`: a frame with an empty payload.
    public static let lengthMin: UInt32 = 6

    /// A header; `length` is checked by the decoder, not here.
    public init(length: UInt32, opcode: Opcode, flags: FrameFlags, requestID: UInt32) {
        self.length = length
        self.opcode = opcode
        self.flags = flags
        self.requestID = requestID
    }

    /// Payload bytes that follow the header.
    @inlinable public var payloadBytes: Int { Int(length) - 6 }
    /// The whole frame's size on the wire, header included.
    @inlinable public var frameBytes: Int { Int(length) + 4 }
}

/// One decoded frame: its header fields and its payload, not yet interpreted.
///
/// `payload` is a slice of the buffer the frame arrived in (no copy); its readable bytes are exactly
/// the payload. Turn it into a message with `Request(decoding:limits:)` or `Reply(decoding:)`.
public struct Frame: Sendable, Equatable {
    /// The operation.
    public var opcode: Opcode
    /// Request, reply or error reply.
    public var flags: FrameFlags
    /// Chosen by the client, echoed in the reply.
    public var requestID: UInt32
    /// The payload bytes (readable bytes only).
    public var payload: ByteBuffer

    /// A frame from its parts.
    public init(opcode: Opcode, flags: FrameFlags, requestID: UInt32, payload: ByteBuffer) {
        self.opcode = opcode
        self.flags = flags
        self.requestID = requestID
        self.payload = payload
    }

    /// Size of the frame on the wire.
    public var frameBytes: Int { FrameHeader.bytes + payload.readableBytes }

    /// Writes the frame: header, then the payload's readable bytes. Cost: one copy of the payload.
    /// Precondition: the frame fits a `u32` length.
    public func encode(into buffer: inout ByteBuffer) {
        precondition(payload.readableBytes <= Int(UInt32.max) - 6, "payload too large for a frame")
        buffer.writeInteger(UInt32(6 + payload.readableBytes), endianness: .little)
        buffer.writeInteger(opcode.rawValue)
        buffer.writeInteger(flags.rawValue)
        buffer.writeInteger(requestID, endianness: .little)
        var payload = payload
        buffer.writeBuffer(&payload)
    }
}

extension ByteBuffer {
    /// Writes a frame header with a placeholder length and returns where the frame starts; pass it
    /// to `endFrame(startingAt:)` once the payload is written.
    @inlinable mutating func beginFrame(opcode: Opcode, flags: FrameFlags, requestID: UInt32) -> Int {
        let start = writerIndex
        // One capacity check and four stores instead of four ByteBuffer writes.
        writeWithUnsafeMutableBytes(minimumWritableBytes: FrameHeader.bytes) { header in
            header.storeBytes(of: UInt32(0), toByteOffset: 0, as: UInt32.self)
            header.storeBytes(of: opcode.rawValue, toByteOffset: 4, as: UInt8.self)
            header.storeBytes(of: flags.rawValue, toByteOffset: 5, as: UInt8.self)
            header.storeBytes(of: requestID.littleEndian, toByteOffset: 6, as: UInt32.self)
            return FrameHeader.bytes
        }
        return start
    }

    /// Fills in the length of the frame that starts at `start`.
    @inlinable mutating func endFrame(startingAt start: Int) {
        let length = writerIndex - start - 4
        precondition(length >= 6 && length <= Int(UInt32.max), "frame length out of range")
        setInteger(UInt32(length), at: start, endianness: .little)
    }
}
