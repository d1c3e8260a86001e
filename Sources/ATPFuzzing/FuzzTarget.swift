import ATPJournal
import ATPProtocol
import ATPSnapshot
import NIOCore
import Synchronization

/// The coverage-guided fuzz targets (issue 14): each takes any bytes and must neither crash nor
/// break its property. tools/fuzz.sh runs them under libFuzzer (`swift build --sanitize fuzzer`,
/// tools/fuzz/Package.swift); `FuzzTargetTests` runs them over their seed corpus and a few thousand
/// mutations in every `swift test`.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// Bytes a client sends: the frame decoder (the first byte picks the handshake or the
    /// authenticated decoder) and every request decoder. A request that decodes is re-encoded; the
    /// encoding must decode, and re-encode to the same bytes (a fixed point).
    case requests
    /// Bytes a server sends, as the Swift client reads them: frames and every reply decoder, with
    /// the same fixed-point property.
    case replies
    /// A journal segment file as recovery reads it (`JournalReader`, in memory): damage must be
    /// reported, never trusted.
    case journal
    /// Snapshot entries: the first byte picks the entry kind, the second the format version, then a
    /// `u16` key length, the key, and the value.
    case snapshotEntries

    /// Runs the target on `input`. Traps (a crash for libFuzzer) when a property fails.
    public func run(_ input: UnsafeRawBufferPointer) {
        switch self {
        case .requests: Self.requests(input)
        case .replies: Self.replies(input)
        case .journal: Self.journal(input)
        case .snapshotEntries: Self.snapshotEntries(input)
        }
    }

    /// Small limits so that the fuzzer reaches the limit checks (batches, frames) with small inputs.
    static let limits: ProtocolLimits = {
        var limits = ProtocolLimits()
        limits.frameBytesMax = 64 << 10
        limits.batchItemsMax = 64
        return limits
    }()

    static func requests(_ input: UnsafeRawBufferPointer) {
        guard let selector = input.first else { return }
        let decoder = selector & 1 == 0 ? FrameDecoder(limits: limits) : FrameDecoder.forHandshake(limits: limits)
        checkFixedPoints(UnsafeRawBufferPointer(rebasing: input.dropFirst()), decoder: decoder, what: "request",
                         decode: { try? Request(decoding: $0, limits: limits) },
                         encode: { request, frame, buffer in request.encode(requestID: frame.requestID, into: &buffer) })
    }

    static func replies(_ input: UnsafeRawBufferPointer) {
        checkFixedPoints(input, decoder: FrameDecoder(limits: limits), what: "reply",
                         decode: { try? Reply(decoding: $0) },
                         encode: { reply, frame, buffer in
                             reply.encode(opcode: frame.opcode, requestID: frame.requestID, into: &buffer)
                         })
    }

    /// Decodes every frame of `input` as a message; each message that decodes is encoded, and that
    /// encoding must frame (default limits), decode with `decode` again, and encode to the same bytes.
    private static func checkFixedPoints<Message>(
        _ input: UnsafeRawBufferPointer, decoder: FrameDecoder, what: String, decode: (Frame) -> Message?,
        encode: (Message, Frame, inout ByteBuffer) -> Void
    ) {
        var decoder = decoder
        var buffer = ByteBuffer(bytes: input)
        while let frame = nextFrame(&decoder, &buffer) {
            guard let message = decode(frame) else { continue }
            var first = ByteBuffer()
            encode(message, frame, &first)
            var check = FrameDecoder(limits: ProtocolLimits())
            var copy = first
            guard let again = nextFrame(&check, &copy), let decoded = decode(again)
            else { preconditionFailure("a decoded \(what)'s encoding does not decode: \(message)") }
            var second = ByteBuffer()
            encode(decoded, again, &second)
            precondition(first == second, "\(what) encoding is not a fixed point: \(message)")
        }
    }

    /// The next frame, or nil at the end of the bytes or at the first framing error.
    private static func nextFrame(_ decoder: inout FrameDecoder, _ buffer: inout ByteBuffer) -> Frame? {
        do {
            return try decoder.next(from: &buffer)
        } catch {
            return nil
        }
    }

    static func journal(_ input: UnsafeRawBufferPointer) {
        let file = MemorySegmentFile(bytes: Array(input))
        guard let reader = try? JournalReader.open(directory: MemorySegmentFile.directory, streamIndex: 0,
                                                   fileOperations: file.operations),
              let cursor = try? reader.records() else { return }
        var records = 0
        while let record = try? cursor.next() {
            records += 1
            precondition(record.payload.count <= input.count, "a record larger than its file")
        }
        precondition(records <= input.count / 8, "more records than the file can hold")
    }

    static func snapshotEntries(_ input: UnsafeRawBufferPointer) {
        guard input.count >= 4 else { return }
        let selector = input[0]
        let version = UInt32(input[1] % 6)
        let keyBytes = min(Int(input[2]) | Int(input[3]) << 8, input.count - 4)
        let key = UnsafeRawBufferPointer(rebasing: input[4 ..< 4 + keyBytes])
        let value = UnsafeRawBufferPointer(rebasing: input[(4 + keyBytes)...])
        _ = try? SnapshotEntryDecoding.decode(selector: selector, key: key, value: value, version: version)
    }
}

/// One journal segment file held in memory, behind `JournalFileOperations` (read-only: any write
/// is refused).
final class MemorySegmentFile: Sendable {
    static let directory = "/fuzz/journal"
    static let name = "segment-00000000000000000001.journal"
    let bytes: [UInt8]

    init(bytes: [UInt8]) { self.bytes = bytes }

    var operations: JournalFileOperations {
        let bytes = self.bytes
        let refused: JournalErrno = JournalErrno(30)  // EROFS
        return JournalFileOperations(
            open: { path, _, _ throws(JournalErrno) in
                guard path == Self.directory + "/" + Self.name else { throw JournalErrno(2) }
                return 3
            },
            close: { _ throws(JournalErrno) in },
            write: { _, _ throws(JournalErrno) in throw refused },
            read: { _, buffer, offset throws(JournalErrno) in
                guard offset >= 0, offset < Int64(bytes.count) else { return 0 }
                let count = min(buffer.count, bytes.count - Int(offset))
                bytes.withUnsafeBytes { source in
                    buffer.baseAddress!.copyMemory(from: source.baseAddress! + Int(offset), byteCount: count)
                }
                return count
            },
            fileSize: { _ throws(JournalErrno) in Int64(bytes.count) },
            synchronizeData: { _ throws(JournalErrno) in throw refused },
            synchronize: { _ throws(JournalErrno) in throw refused },
            truncate: { _, _ throws(JournalErrno) in throw refused },
            rename: { _, _ throws(JournalErrno) in throw refused },
            removeFile: { _ throws(JournalErrno) in throw refused },
            makeDirectory: { _, _ throws(JournalErrno) in throw refused },
            listDirectory: { path throws(JournalErrno) in
                guard path == Self.directory else { throw JournalErrno(2) }
                return [Self.name]
            },
            lockExclusive: { _ throws(JournalErrno) in throw refused })
    }
}
