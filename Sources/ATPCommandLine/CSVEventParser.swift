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

    /// A parser that has not seen the first line yet.
    init() {}

    /// The event on this line, nil for a blank, comment or header line. Throws what is wrong.
    mutating func parse(_ line: String) throws(LineError) -> WireEvent? {
        let trimmed = line.trimmingWhitespace()
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return nil }
        let fields = try Self.split(line)
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
        var values: [EventField: String] = [:]
        for (field, text) in zip(columns, fields) where !text.isEmpty { values[field] = text }
        return try EventBuilder.build(CSVEventRecord(values: values))
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

    /// Splits one line into fields, honouring quotes.
    static func split(_ line: String) throws(LineError) -> [String] {
        var fields: [String] = []
        var current: [Unicode.Scalar] = []
        var quoted = false
        var wasQuoted = false
        var afterClosingQuote = false
        let scalars = Array(line.unicodeScalars)
        var index = 0
        func finishField() {
            let text = String(String.UnicodeScalarView(current))
            fields.append(wasQuoted ? text : text.trimmingWhitespace())
            current.removeAll(keepingCapacity: true)
            wasQuoted = false
            afterClosingQuote = false
        }
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if quoted {
                if scalar == "\"" {
                    if index < scalars.count && scalars[index] == "\"" {
                        current.append("\"")
                        index += 1
                    } else {
                        quoted = false
                        afterClosingQuote = true
                    }
                } else {
                    current.append(scalar)
                }
            } else if scalar == "," {
                finishField()
            } else if afterClosingQuote {
                if scalar != " " && scalar != "\t" {
                    throw LineError(message: "unexpected \(Character(scalar)) after a closing quote in field \(fields.count + 1)")
                }
            } else if scalar == "\"" && current.allSatisfy({ $0 == " " || $0 == "\t" }) {
                current.removeAll()
                quoted = true
                wasQuoted = true
            } else {
                current.append(scalar)
            }
        }
        if quoted { throw LineError(message: "field \(fields.count + 1) opens a quote that is never closed") }
        finishField()
        return fields
    }
}

/// The fields of one CSV line by name.
struct CSVEventRecord: EventRecord {
    let values: [EventField: String]

    func string(_ field: EventField) throws(LineError) -> String? { values[field] }

    func integer<T: FixedWidthInteger>(_ field: EventField, as type: T.Type) throws(LineError) -> T? {
        guard let text = values[field] else { return nil }
        guard let value = T(text) else { throw IntegerText.problem(text, field: field, as: type) }
        return value
    }

    func bool(_ field: EventField) throws(LineError) -> Bool? {
        guard let text = values[field] else { return nil }
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
