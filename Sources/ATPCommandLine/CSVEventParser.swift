import ATPProtocol

/// Reads events from CSV lines (docs/CLI.md, "CSV").
///
/// The first line that is not blank or a `#` comment may be a header naming the columns (any
/// order, any of `EventField`); it is a header when its first field is a column name (no kind is
/// spelled like a column, so a data line is never taken for a header). Without one the
/// columns are positional: `kind,sku,location,quantity,sequence[,to_location][,correlation][,event_ms]`.
/// Fields may be quoted with `"` (a doubled `""` inside is one quote); unquoted fields are trimmed.
/// An empty field is an absent optional field.
struct CSVEventParser {
    private var columns: [EventField]?
    private var hasHeader = false
    /// The line's field texts, reused from line to line (no allocation per line once grown).
    private var fields: [String] = []
    /// The line's values by `EventField.ordinal`, reused likewise.
    private var values = [String?](repeating: nil, count: EventField.allCases.count)

    /// A parser that has not seen the first line yet.
    init() {}

    /// The event on this line, nil for a blank, comment or header line. Throws what is wrong.
    mutating func parse(_ line: String) throws(LineError) -> WireEvent? {
        var contiguous = line
        // Native strings are contiguous UTF-8; `withUTF8` makes any other one so.
        let result: Result<WireEvent?, LineError> = contiguous.withUTF8 { bytes in
            do throws(LineError) { return .success(try parse(bytes, line)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private mutating func parse(_ bytes: UnsafeBufferPointer<UInt8>, _ line: String) throws(LineError) -> WireEvent? {
        guard let first = bytes.firstIndex(where: { !Self.isBlank($0) }), bytes[first] != UInt8(ascii: "#") else {
            return nil
        }
        try Self.split(bytes, line, into: &fields)
        if columns == nil {
            if let first = fields.first, EventField(rawValue: first.lowercased()) != nil {
                columns = try Self.header(fields)
                hasHeader = true
                return nil
            }
            columns = EventField.positional
        }
        let columns = self.columns ?? EventField.positional
        if fields.count > columns.count {
            let hint = hasHeader ? "the header names \(columns.count)"
                : "at most \(columns.count) without a header line; add a header line to use bucket, outcome, reason_code, count_damaged, count_quarantine, into_quarantine or closes_inbound"
            throw LineError(message: "\(fields.count) fields, \(hint)")
        }
        if fields.count < EventField.positional.prefix(5).count && !hasHeader {
            throw LineError(message: "\(fields.count) fields; expected kind,sku,location,quantity,sequence[,to_location][,correlation][,event_ms]")
        }
        for index in values.indices { values[index] = nil }
        for (field, text) in zip(columns, fields) where !text.isEmpty { values[field.ordinal] = text }
        let record = CSVEventRecord(values: values)
        return try EventBuilder.build(record)
    }

    /// The header's columns. Throws for an unknown or repeated name, or a missing required one.
    private static func header(_ fields: [String]) throws(LineError) -> [EventField] {
        var columns: [EventField] = []
        for name in fields {
            guard let field = EventField(rawValue: name.lowercased()) else {
                throw LineError(message: "unknown column \(name.debugDescription) in the header; columns are \(EventField.allNames)")
            }
            if columns.contains(field) { throw LineError(message: "column \(field.rawValue) appears twice in the header") }
            columns.append(field)
        }
        for field in EventField.required where !columns.contains(field) {
            throw LineError(message: "the header lacks the column \(field.rawValue)")
        }
        return columns
    }

    @inline(__always) private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// Splits one line into fields, honouring quotes.
    static func split(_ line: String) throws(LineError) -> [String] {
        var contiguous = line
        var fields: [String] = []
        let failure: LineError? = contiguous.withUTF8 { bytes in
            do throws(LineError) { try split(bytes, line, into: &fields); return nil } catch { return error }
        }
        if let failure { throw failure }
        return fields
    }

    /// Splits the UTF-8 `bytes` of `line` into `fields` (emptied first), honouring quotes: a `"`
    /// after nothing but blanks opens a quoted field (kept as is, a doubled `""` is one quote, only
    /// blanks may follow its closing quote); an unquoted field is trimmed of spaces and tabs. Works
    /// on bytes: every byte it looks for is ASCII, so each field is whole UTF-8 and is made into a
    /// String with one copy (none for names and numbers short enough to be stored inline).
    static func split(_ bytes: UnsafeBufferPointer<UInt8>, _ line: String, into fields: inout [String]) throws(LineError) {
        fields.removeAll(keepingCapacity: true)
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ",")
        var index = 0
        let count = bytes.count
        while true {
            // One field from `index`: leading blanks, then a quoted or an unquoted field.
            var start = index
            while start < count && isBlank(bytes[start]) { start += 1 }
            if start < count && bytes[start] == quote {
                var text: [UInt8] = []
                var position = start + 1
                var closed = false
                while position < count {
                    let byte = bytes[position]
                    position += 1
                    if byte == quote {
                        if position < count && bytes[position] == quote {
                            text.append(quote)
                            position += 1
                        } else {
                            closed = true
                            break
                        }
                    } else {
                        text.append(byte)
                    }
                }
                if !closed { throw LineError(message: "field \(fields.count + 1) opens a quote that is never closed") }
                while position < count && bytes[position] != comma {
                    if !isBlank(bytes[position]) {
                        let rest = String(Substring(line.utf8[line.utf8.index(line.utf8.startIndex, offsetBy: position)...]))
                        let unexpected = rest.unicodeScalars.first.map { String(Character($0)) } ?? "?"
                        throw LineError(message: "unexpected \(unexpected) after a closing quote in field \(fields.count + 1)")
                    }
                    position += 1
                }
                fields.append(String(decoding: text, as: UTF8.self))
                index = position
            } else {
                var end = start
                while end < count && bytes[end] != comma { end += 1 }
                index = end
                while end > start && isBlank(bytes[end - 1]) { end -= 1 }
                fields.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self))
            }
            // `index` is at a comma (another field follows) or at the end.
            if index >= count { return }
            index += 1
        }
    }
}

/// The fields of one CSV line by `EventField.ordinal`.
struct CSVEventRecord: EventRecord {
    let values: [String?]

    func string(_ field: EventField) throws(LineError) -> String? { values[field.ordinal] }

    func integer<T: FixedWidthInteger>(_ field: EventField, as type: T.Type) throws(LineError) -> T? {
        guard let text = values[field.ordinal] else { return nil }
        guard let value = T(text) else { throw IntegerText.problem(text, field: field, as: type) }
        return value
    }

    func bool(_ field: EventField) throws(LineError) -> Bool? {
        guard let text = values[field.ordinal] else { return nil }
        switch text.lowercased() {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw LineError(message: "\(field.rawValue) \(text.debugDescription) is not true or false")
        }
    }
}

/// Messages for integer fields that do not parse.
enum IntegerText {
    /// "quantity \"abc\" is not a whole number", or "... is out of range (-2147483648 to 2147483647)".
    static func problem<T: FixedWidthInteger>(_ text: String, field: EventField, as type: T.Type) -> LineError {
        let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
        if !digits.isEmpty && digits.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return LineError(message: "\(field.rawValue) \(text) is out of range (\(T.min) to \(T.max))")
        }
        return LineError(message: "\(field.rawValue) \(text.debugDescription) is not a whole number")
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    func trimmingWhitespace() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isBlank($0) }), let end = lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[start...end])
    }
}
