import ATPLedger
import ATPProtocol
import Foundation
import NIOCore

/// One hex vector from docs/PROTOCOL.md §10.
struct HexVector {
    var name: String
    var bytes: [UInt8]
}

enum ProtocolDocument {
    /// docs/PROTOCOL.md, found relative to this file so the test reads the document itself.
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/PROTOCOL.md")

    static func text() throws -> String { try String(contentsOf: url, encoding: .utf8) }

    /// Every ```` ```hex NAME ```` block: the hex pairs before any `#` on each line.
    static func vectors() throws -> [HexVector] {
        var vectors: [HexVector] = []
        var current: HexVector?
        for line in try text().split(separator: "\n", omittingEmptySubsequences: false) {
            if var vector = current {
                if line.hasPrefix("```") {
                    vectors.append(vector)
                    current = nil
                    continue
                }
                let data = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                for pair in data.split(separator: " ") {
                    guard pair.count == 2, let byte = UInt8(pair, radix: 16) else {
                        throw VectorParseError(vector: vector.name, token: String(pair))
                    }
                    vector.bytes.append(byte)
                }
                current = vector
            } else if line.hasPrefix("```hex ") {
                current = HexVector(name: String(line.dropFirst("```hex ".count)).trimmingCharacters(in: .whitespaces),
                                    bytes: [])
            }
        }
        return vectors
    }
}

struct VectorParseError: Error, CustomStringConvertible {
    var vector: String
    var token: String
    var description: String { "vector \(vector): cannot parse \"\(token)\"" }
}

extension ByteBuffer {
    init(bytes: [UInt8]) {
        self = ByteBufferAllocator().buffer(capacity: bytes.count)
        writeBytes(bytes)
    }
    var bytes: [UInt8] { getBytes(at: readerIndex, length: readableBytes) ?? [] }
}

/// Decodes exactly one frame from `bytes` (throws when there is not exactly one).
func singleFrame(_ bytes: [UInt8], limits: ProtocolLimits = ProtocolLimits()) throws -> Frame {
    var decoder = FrameDecoder(limits: limits)
    var buffer = ByteBuffer(bytes: bytes)
    guard let frame = try decoder.next(from: &buffer), buffer.readableBytes == 0 else {
        throw VectorParseError(vector: "?", token: "not exactly one frame")
    }
    return frame
}

/// A frame's bytes from its parts.
func frameBytes(opcode: Opcode, flags: FrameFlags = [], requestID: UInt32 = 1, payload: [UInt8]) -> [UInt8] {
    var buffer = ByteBuffer()
    Frame(opcode: opcode, flags: flags, requestID: requestID, payload: ByteBuffer(bytes: payload)).encode(into: &buffer)
    return buffer.bytes
}

/// A payload builder for hand-made (often broken) messages; each call returns a longer copy.
struct PayloadBuilder {
    var bytes: [UInt8] = []
    func u8(_ value: UInt8) -> Self { raw([value]) }
    func u16(_ value: UInt16) -> Self { integer(value) }
    func u32(_ value: UInt32) -> Self { integer(value) }
    func u64(_ value: UInt64) -> Self { integer(value) }
    func i64(_ value: Int64) -> Self { integer(value) }
    func name(_ text: String) -> Self { name(bytes: Array(text.utf8)) }
    func name(bytes name: [UInt8]) -> Self { raw([UInt8(name.count)] + name) }
    func raw(_ more: [UInt8]) -> Self {
        var copy = self
        copy.bytes += more
        return copy
    }
    private func integer<T: FixedWidthInteger>(_ value: T) -> Self {
        raw(withUnsafeBytes(of: value.littleEndian) { Array($0) })
    }
}


func rid(_ text: String) -> ReservationID { try! ReservationID(text) }

/// The error `validateName` gives for `bytes` (InvalidNameError has no public initializer).
func nameError(_ bytes: [UInt8], _ kind: NameKind) -> InvalidNameError {
    let result: Result<Void, InvalidNameError> = bytes.withUnsafeBytes { raw in
        do throws(InvalidNameError) {
            try validateName(raw, kind: kind)
            return .success(())
        } catch {
            return .failure(error)
        }
    }
    guard case .failure(let error) = result else { fatalError("\(bytes) is a valid \(kind) name") }
    return error
}
