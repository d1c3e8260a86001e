#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPLedger

/// One record of an ERP CSV file, as `ERPFileReader` hands it out: its line number and its
/// fields' bytes (unquoted, unquoted fields trimmed). The bytes live in the reader's buffer and are
/// valid only until the next call to `next()`.
struct ERPRecord {
    /// The line the record starts on (1 = the file's first line).
    var line: Int
    /// Fields found (may exceed the fields kept, `fieldsKeptMax`).
    var fieldCount: Int
    /// Why the record cannot be split into fields (quoting, encoding), or nil.
    var problem: BadRow.Problem?
    fileprivate var base: UnsafeRawPointer
    fileprivate var spans: UnsafeMutableBufferPointer<FieldSpan>

    /// The bytes of field `index` (< min(fieldCount, fields kept)).
    @inline(__always)
    func field(_ index: Int) -> UnsafeRawBufferPointer {
        let span = spans[index]
        return UnsafeRawBufferPointer(start: base + span.start, count: span.count)
    }

    /// Field `index` as text (for the header and messages).
    func text(_ index: Int) -> String { String(decoding: field(index), as: UTF8.self) }
}

struct FieldSpan {
    var start: Int
    var count: Int
}

/// Reads an ERP CSV file in chunks, record by record, in bounded memory (one chunk plus the
/// longest row allowed), whatever the file's size.
///
/// Records end at `\n` outside quotes (a `\r` before it is dropped); a quoted field may hold commas,
/// doubled quotes and line breaks (the record keeps the number of its first line). UTF-8 only: a
/// leading byte order mark is skipped, a UTF-16/UTF-32 one is refused, and a record that is not
/// valid UTF-8 comes back with an `encoding` problem. A record longer than `rowBytesMax` is
/// reported once (`rowTooLong`) and skipped up to the next line break. Blank lines are skipped.
///
/// Unsafe code: `buffer` is allocated once (`chunkBytes + rowBytesMax` bytes) and freed at deinit;
/// `start <= end <= buffer.count` always; records and fields are spans inside `start..<end`.
final class ERPFileReader {
    let path: String
    /// Size of the file at open, in bytes.
    let fileBytes: Int
    private let descriptor: Int32
    private let buffer: UnsafeMutableRawBufferPointer
    private let chunkBytes: Int
    private let rowBytesMax: Int
    private var start = 0
    private var end = 0
    private var bytesBeforeBuffer = 0
    private var isAtEndOfFile = false
    private var isSkippingLongRow = false
    private var isFirstChunk = true
    private var nextLine = 1
    private let spans: UnsafeMutableBufferPointer<FieldSpan>

    /// The most fields kept per record (`ERPRecord.fieldCount` still counts them all).
    let fieldsKeptMax: Int

    /// Opens `path`. Throws `ReconcileError.file` when it cannot be opened or is a directory.
    init(path: String, chunkBytes: Int, rowBytesMax: Int, fieldsKeptMax: Int = 1024) throws(ReconcileError) {
        precondition(chunkBytes >= 4096 && rowBytesMax >= 64 && fieldsKeptMax >= 1)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .file(path: path, "cannot open: \(String(cString: strerror(errno)))") }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) != S_IFDIR else {
            close(descriptor)
            throw .file(path: path, "cannot read: it is a directory")
        }
        self.path = path
        self.descriptor = descriptor
        fileBytes = Int(status.st_size)
        self.chunkBytes = chunkBytes
        self.rowBytesMax = rowBytesMax
        self.fieldsKeptMax = fieldsKeptMax
        buffer = .allocate(byteCount: chunkBytes + rowBytesMax, alignment: 16)
        spans = .allocate(capacity: fieldsKeptMax)
    }

    deinit {
        close(descriptor)
        buffer.deallocate()
        spans.deallocate()
    }

    /// Bytes of the file consumed so far (for progress).
    var bytesConsumed: Int { bytesBeforeBuffer + start }

    /// The next record, a `rowTooLong` record (problem set, no fields), or nil at the end of the
    /// file. Throws `ReconcileError.file` on a read error, `.encoding` for a UTF-16/32 file.
    func next() throws(ReconcileError) -> ERPRecord? {
        while true {
            if isSkippingLongRow {
                if let newline = find(UInt8(ascii: "\n"), from: start, to: end) {
                    start = newline + 1
                    nextLine += 1
                    isSkippingLongRow = false
                } else {
                    start = end
                    if isAtEndOfFile { return nil }
                    try refill()
                }
                continue
            }
            if start == end {
                if isAtEndOfFile { return nil }
                try refill()
                continue
            }
            guard let (recordEnd, lineBreaks, unclosedQuote) = recordEnd() else {
                if end - start >= rowBytesMax {
                    let line = nextLine
                    isSkippingLongRow = true
                    return ERPRecord(line: line, fieldCount: 0, problem: Self.tooLong(rowBytesMax),
                                     base: UnsafeRawPointer(buffer.baseAddress!), spans: spans)
                }
                try refill()
                continue
            }
            let line = nextLine
            let recordStart = start
            nextLine += 1 + lineBreaks
            start = min(recordEnd + 1, end)
            var contentEnd = recordEnd
            if contentEnd > recordStart && buffer[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
            if isBlank(recordStart, contentEnd) { continue }
            var record = ERPRecord(line: line, fieldCount: 0, problem: nil,
                                   base: UnsafeRawPointer(buffer.baseAddress!), spans: spans)
            if contentEnd - recordStart > rowBytesMax {
                record.problem = Self.tooLong(rowBytesMax)
            } else if unclosedQuote {
                record.problem = .init(.malformedRow, "a quoted field is not closed before the end of the file")
            } else if !isValidText(recordStart, contentEnd) {
                record.problem = .init(.encoding, "the row is not valid UTF-8 (the file must be UTF-8)")
            } else {
                split(recordStart, contentEnd, into: &record)
            }
            return record
        }
    }

    private static func tooLong(_ rowBytesMax: Int) -> BadRow.Problem {
        .init(.rowTooLong, "the row is longer than \(rowBytesMax) bytes (an unclosed quote?); skipped to the next line")
    }

    /// The end of the record at `start` (index of its `\n`, or `end` at the end of the file), the
    /// line breaks inside quotes, and whether a quote was left open; nil when the record continues
    /// past the buffered bytes.
    private func recordEnd() -> (Int, Int, Bool)? {
        guard let newline = find(UInt8(ascii: "\n"), from: start, to: end) else {
            return isAtEndOfFile ? scanQuoted(to: end, atEndOfFile: true) : nil
        }
        if find(UInt8(ascii: "\""), from: start, to: newline) == nil { return (newline, 0, false) }
        return scanQuoted(to: end, atEndOfFile: isAtEndOfFile)
    }

    /// The slow path: walks quotes from `start`.
    private func scanQuoted(to limit: Int, atEndOfFile: Bool) -> (Int, Int, Bool)? {
        var inQuotes = false
        var lineBreaks = 0
        var index = start
        while index < limit {
            let byte = buffer[index]
            if byte == UInt8(ascii: "\"") {
                inQuotes.toggle()
            } else if byte == UInt8(ascii: "\n") {
                if !inQuotes { return (index, lineBreaks, false) }
                lineBreaks += 1
            }
            index += 1
        }
        return atEndOfFile ? (limit, lineBreaks, inQuotes) : nil
    }

    /// Moves the unread bytes to the front and reads the next chunk after them.
    private func refill() throws(ReconcileError) {
        if start > 0 {
            let remaining = end - start
            if remaining > 0 { memmove(buffer.baseAddress!, buffer.baseAddress! + start, remaining) }
            bytesBeforeBuffer += start
            start = 0
            end = remaining
        }
        let room = buffer.count - end
        precondition(room > 0, "the buffer holds at least one row")
        var readBytes: Int
        repeat {
            readBytes = read(descriptor, buffer.baseAddress! + end, min(room, chunkBytes))
        } while readBytes < 0 && errno == EINTR
        guard readBytes >= 0 else { throw .file(path: path, "read failed: \(String(cString: strerror(errno)))") }
        if readBytes == 0 { isAtEndOfFile = true }
        end += readBytes
        if isFirstChunk { try checkByteOrderMark() }
    }

    private func checkByteOrderMark() throws(ReconcileError) {
        isFirstChunk = false
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<min(end, 4)])
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) {
            start = 3
        } else if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0, 0, 0xFE, 0xFF]) {
            throw .encoding(path: path, "the file is UTF-16 or UTF-32 (byte order mark \(bytes.prefix(2).map { String($0, radix: 16) }.joined(separator: " "))); convert it to UTF-8, e.g. iconv -f UTF-16 -t UTF-8")
        }
    }

    private func find(_ byte: UInt8, from: Int, to: Int) -> Int? {
        guard to > from, let found = memchr(buffer.baseAddress! + from, Int32(byte), to - from) else { return nil }
        return UnsafeRawPointer(found) - UnsafeRawPointer(buffer.baseAddress!)
    }

    private func isBlank(_ from: Int, _ to: Int) -> Bool {
        var index = from
        while index < to {
            let byte = buffer[index]
            if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") { return false }
            index += 1
        }
        return true
    }

    /// Whether the bytes are UTF-8: a word-at-a-time ASCII check first, the full check otherwise.
    private func isValidText(_ from: Int, _ to: Int) -> Bool {
        let base = UnsafeRawPointer(buffer.baseAddress!)
        var index = from
        var high: UInt64 = 0
        while to - index >= 8 {
            high |= base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < to {
            high |= UInt64(base.load(fromByteOffset: index, as: UInt8.self))
            index += 1
        }
        if high & 0x8080_8080_8080_8080 == 0 { return true }
        return isValidUTF8(UnsafeRawBufferPointer(start: base + from, count: to - from))
    }

    /// Splits `from..<to` into fields, unquoting in place (a field only ever shrinks).
    private func split(_ from: Int, _ to: Int, into record: inout ERPRecord) {
        var position = from
        var count = 0
        while true {
            while position < to && (buffer[position] == UInt8(ascii: " ") || buffer[position] == UInt8(ascii: "\t")) {
                position += 1
            }
            var span: FieldSpan
            if position < to && buffer[position] == UInt8(ascii: "\"") {
                var write = position
                var read = position + 1
                var closed = false
                while read < to {
                    let byte = buffer[read]
                    if byte == UInt8(ascii: "\"") {
                        if read + 1 < to && buffer[read + 1] == UInt8(ascii: "\"") {
                            buffer[write] = byte
                            write += 1
                            read += 2
                            continue
                        }
                        read += 1
                        closed = true
                        break
                    }
                    buffer[write] = byte
                    write += 1
                    read += 1
                }
                span = FieldSpan(start: position, count: write - position)
                while read < to && (buffer[read] == UInt8(ascii: " ") || buffer[read] == UInt8(ascii: "\t")) { read += 1 }
                if !closed || (read < to && buffer[read] != UInt8(ascii: ",")) {
                    record.problem = .init(.malformedRow, closed ? "text after a closing quote in field \(count + 1)"
                                                                 : "a quoted field is not closed")
                    record.fieldCount = count + 1
                    return
                }
                position = read
            } else {
                let comma = find(UInt8(ascii: ","), from: position, to: to) ?? to
                var last = comma
                while last > position && (buffer[last - 1] == UInt8(ascii: " ") || buffer[last - 1] == UInt8(ascii: "\t")) {
                    last -= 1
                }
                if find(UInt8(ascii: "\""), from: position, to: last) != nil {
                    record.problem = .init(.malformedRow, "a quote inside unquoted field \(count + 1) (quote the whole field and double the quote)")
                    record.fieldCount = count + 1
                    return
                }
                span = FieldSpan(start: position, count: last - position)
                position = comma
            }
            if count < fieldsKeptMax { spans[count] = span }
            count += 1
            if position < to {
                position += 1  // the comma
                continue
            }
            break
        }
        record.fieldCount = count
    }
}
