import ATPLedger

/// Why a frame's payload could not be turned into a message. `code` is the error code to answer
/// with (docs/PROTOCOL.md §5); `closesConnection` says whether the server closes afterwards.
public enum MessageDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A field runs past the end of the payload. `malformedFrame`.
    case truncated(field: String)
    /// Bytes are left after the last field. `malformedFrame`.
    case trailingBytes(count: Int)
    /// A `hello` that does not start with "ATP1". `malformedFrame`.
    case badMagic
    /// A reserved bit is set in a flags or options byte. `malformedFrame`.
    case reservedBitsSet(field: String, value: UInt8)
    /// An unknown code that decides the layout (query kind, reservation target, statistic type, ...).
    /// `malformedFrame`.
    case unknownLayoutCode(field: String, value: UInt8)
    /// A count that the rest of the frame cannot hold even with the smallest items. `malformedFrame`.
    case countExceedsFrame(field: String, count: Int, bytesLeft: Int)
    /// Text that must be UTF-8 is not (messages, details, names in replies). `malformedFrame`.
    case invalidText(field: String)
    /// The frame's flags do not fit its direction (a request with the reply bit, say). `malformedFrame`.
    case unexpectedFlags(FrameFlags)
    /// A count above `batchItemsMax`. `batchTooLarge`; nothing was executed.
    case batchTooLarge(field: String, count: Int, batchItemsMax: Int)
    /// A name that is empty, too long for its kind or not UTF-8. `invalidName`. `item` is the index
    /// of the batch item that holds it, when there is one.
    case invalidName(InvalidNameError, item: Int?)
    /// A name-like field that is not a ledger name (the `hello` client name, the `stats` prefix, the
    /// "every channel" name of `channelShow`): too long for `field` or not UTF-8. `invalidName`.
    case invalidField(field: String, InvalidNameError.Problem)
    /// A value out of range that does not change the layout. `invalidRequest`.
    case invalidValue(field: String, value: Int64)
    /// A `hello` token longer than `tokenBytesMax`. `unauthenticated`.
    case tokenTooLong(bytes: Int, tokenBytesMax: Int)
    /// An opcode this codec does not know. `unknownOpcode`.
    case unknownOpcode(Opcode)
    /// A reserved opcode (`snapshotNow`). `notImplemented`.
    case notImplemented(Opcode)

    /// The error code to answer with.
    public var code: ErrorCode {
        switch self {
        case .truncated, .trailingBytes, .badMagic, .reservedBitsSet, .unknownLayoutCode, .countExceedsFrame,
             .invalidText, .unexpectedFlags: .malformedFrame
        case .batchTooLarge: .batchTooLarge
        case .invalidName, .invalidField: .invalidName
        case .invalidValue: .invalidRequest
        case .tokenTooLong: .unauthenticated
        case .unknownOpcode: .unknownOpcode
        case .notImplemented: .notImplemented
        }
    }

    /// Whether the server closes the connection after answering.
    public var closesConnection: Bool { code.closesConnection }

    /// A sentence for the error reply.
    public var message: String {
        switch self {
        case .truncated(let field): "payload ends inside \(field)"
        case .trailingBytes(let count): "\(count) bytes left after the last field"
        case .badMagic: "hello must start with the magic \"ATP1\""
        case .reservedBitsSet(let field, let value): "\(field) 0x\(String(value, radix: 16)) has reserved bits set"
        case .unknownLayoutCode(let field, let value): "unknown \(field) \(value)"
        case .countExceedsFrame(let field, let count, let left):
            "\(field) \(count) cannot fit in the \(left) bytes left in the frame"
        case .invalidText(let field): "\(field) is not valid UTF-8"
        case .unexpectedFlags(let flags): "flags 0x\(String(flags.rawValue, radix: 16)) do not fit this frame's direction"
        case .batchTooLarge(let field, let count, let max): "\(field) \(count) exceeds batchItemsMax \(max); split the batch"
        case .invalidName(let error, let item): item.map { "item \($0): \(error)" } ?? "\(error)"
        case .invalidField(let field, let problem): problem.sentence(about: field)
        case .invalidValue(let field, let value): "\(field) \(value) is out of range"
        case .tokenTooLong(let bytes, let max): "token of \(bytes) bytes exceeds tokenBytesMax \(max)"
        case .unknownOpcode(let opcode): "unknown \(opcode)"
        case .notImplemented(let opcode): "\(opcode) is reserved and not implemented by this server"
        }
    }

    /// "code: message".
    public var description: String { "\(code): \(message)" }
}

extension InvalidNameError.Problem {
    /// "<subject> is not valid UTF-8", "<subject> is 65 bytes long; the maximum is 64", ...
    func sentence(about subject: String) -> String {
        switch self {
        case .empty: "\(subject) is empty"
        case .tooLong(let bytes, let bytesMax): "\(subject) is \(bytes) bytes long; the maximum is \(bytesMax)"
        case .notUTF8: "\(subject) is not valid UTF-8"
        case .tableFull: "the \(subject) table is full"
        }
    }
}
