#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file written through a 256 KiB buffer to `<path>.tmp`, renamed to `path` by `commit()` (after
/// an fsync) and removed by `discard()` or at deinit when not committed: a report file is either
/// complete or absent.
final class BufferedFileOutput {
    /// The final path.
    let path: String
    private let temporaryPath: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    private static let flushBytes = 1 << 18
    private var isFinished = false

    /// Creates `<path>.tmp` (replacing a stale one). Throws `ReconcileError.file`.
    init(path: String) throws(ReconcileError) {
        self.path = path
        temporaryPath = path + ".tmp"
        descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .file(path: temporaryPath, "cannot create: \(String(cString: strerror(errno)))") }
        buffer.reserveCapacity(Self.flushBytes + 4096)
    }

    deinit { if !isFinished { discard() } }

    /// Appends text.
    @inline(__always)
    func text(_ string: StaticString) {
        string.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }

    /// Appends a string's UTF-8.
    func text(_ string: String) { buffer.append(contentsOf: string.utf8) }

    /// Appends raw bytes.
    @inline(__always)
    func bytes(_ bytes: UnsafeRawBufferPointer) { buffer.append(contentsOf: bytes) }

    /// Appends one byte.
    @inline(__always)
    func byte(_ byte: UInt8) { buffer.append(byte) }

    /// Appends a decimal integer.
    func integer(_ value: Int64) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 20 digits, reversed
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[count] = UInt8(48 + magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            for index in stride(from: count - 1, through: 0, by: -1) { buffer.append(raw[index]) }
        }
    }

    /// Appends a CSV field: as is, or quoted with doubled quotes when it holds a comma, a quote, a
    /// line break or leading/trailing blanks (which a reader would trim).
    func csvField(_ field: UnsafeRawBufferPointer) {
        var needsQuotes = false
        for byte in field where byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"") || byte == 10 || byte == 13 {
            needsQuotes = true
            break
        }
        if let first = field.first, let last = field.last,
           first == UInt8(ascii: " ") || first == 9 || last == UInt8(ascii: " ") || last == 9 {
            needsQuotes = true
        }
        guard needsQuotes else { return buffer.append(contentsOf: field) }
        buffer.append(UInt8(ascii: "\""))
        for byte in field {
            if byte == UInt8(ascii: "\"") { buffer.append(byte) }
            buffer.append(byte)
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// `csvField` for a string.
    func csvField(_ field: String) {
        var copy = field
        copy.withUTF8 { csvField(UnsafeRawBufferPointer($0)) }
    }

    /// Appends a JSON string literal (quotes, backslashes and control characters escaped).
    func jsonString(_ value: UnsafeRawBufferPointer) {
        buffer.append(UInt8(ascii: "\""))
        for byte in value {
            switch byte {
            case UInt8(ascii: "\""): buffer.append(contentsOf: [92, 34])
            case 92: buffer.append(contentsOf: [92, 92])
            case 10: buffer.append(contentsOf: [92, UInt8(ascii: "n")])
            case 13: buffer.append(contentsOf: [92, UInt8(ascii: "r")])
            case 9: buffer.append(contentsOf: [92, UInt8(ascii: "t")])
            case 0..<32:
                let hex = Array("0123456789abcdef".utf8)
                buffer.append(contentsOf: [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
            default: buffer.append(byte)
            }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// `jsonString` for a string.
    func jsonString(_ value: String) {
        var copy = value
        copy.withUTF8 { jsonString(UnsafeRawBufferPointer($0)) }
    }

    /// Writes the buffer out when it is full. Call after each record.
    @inline(__always)
    func endRecord() throws(ReconcileError) {
        if buffer.count >= Self.flushBytes { try flush() }
    }

    private func flush() throws(ReconcileError) {
        var offset = 0
        let failure: Int32? = buffer.withUnsafeBytes { raw in
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return written < 0 ? errno : EIO
                }
            }
            return nil
        }
        if let failure { throw .file(path: temporaryPath, "write failed: \(String(cString: strerror(failure)))") }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, fsyncs, closes and renames the file into place. Throws `ReconcileError.file`
    /// (the temporary file is then removed).
    func commit() throws(ReconcileError) {
        precondition(!isFinished, "commit after the file was finished")
        do throws(ReconcileError) {
            try flush()
            if fsync(descriptor) != 0 { throw .file(path: temporaryPath, "fsync failed: \(String(cString: strerror(errno)))") }
            close(descriptor)
            descriptor = -1
            if rename(temporaryPath, path) != 0 { throw .file(path: path, "rename failed: \(String(cString: strerror(errno)))") }
            isFinished = true
        } catch {
            discard()
            throw error
        }
    }

    /// Closes and removes the temporary file.
    func discard() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(temporaryPath)
        isFinished = true
    }
}
