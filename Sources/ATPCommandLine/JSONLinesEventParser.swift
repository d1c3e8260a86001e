import ATPProtocol

/// Reads events from JSON lines (docs/CLI.md, "JSON lines"): one flat JSON object per line, keys
/// from `EventField`, names as strings, numbers as JSON integers, flags as booleans. Blank lines
/// are skipped; unknown keys are refused (a typo must not be silently dropped).
struct JSONLinesEventParser {
    /// The event on this line, nil for a blank line. Throws what is wrong.
    func parse(_ line: String) throws(LineError) -> WireEvent? {
        if line.trimmingWhitespace().isEmpty { return nil }
        var reader = FlatJSONReader(line)
        let members = try reader.object()
        var values: [EventField: FlatJSONValue] = [:]
        for (key, value) in members {
            guard let field = EventField(rawValue: key) else {
                throw LineError(message: "unknown key \(key.debugDescription); keys are \(EventField.allNames)")
            }
            if values[field] != nil { throw LineError(message: "key \(key) appears twice") }
            if value != .null { values[field] = value }
        }
        return try EventBuilder.build(JSONEventRecord(values: values))
    }
}

/// A value of a flat JSON object. Numbers keep their text so they convert exactly to any integer type.
enum FlatJSONValue: Equatable {
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    var typeName: String {
        switch self {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }
}

/// The fields of one JSON line by name.
struct JSONEventRecord: EventRecord {
    let values: [EventField: FlatJSONValue]

    func string(_ field: EventField) throws(LineError) -> String? {
        guard let value = values[field] else { return nil }
        guard case .string(let text) = value else {
            throw LineError(message: "\(field.rawValue) must be a string, not \(value.typeName)")
        }
        return text.isEmpty && !EventField.required.contains(field) ? nil : text
    }

    func integer<T: FixedWidthInteger>(_ field: EventField, as type: T.Type) throws(LineError) -> T? {
        guard let value = values[field] else { return nil }
        guard case .number(let text) = value else {
            throw LineError(message: "\(field.rawValue) must be a whole number, not \(value.typeName)")
        }
        guard let number = T(text) else { throw IntegerText.problem(text, field: field, as: type) }
        return number
    }

    func bool(_ field: EventField) throws(LineError) -> Bool? {
        guard let value = values[field] else { return nil }
        guard case .bool(let flag) = value else {
            throw LineError(message: "\(field.rawValue) must be true or false, not \(value.typeName)")
        }
        return flag
    }
}

/// A strict reader for one flat JSON object (RFC 8259): string keys; string, integer, boolean or
/// null values. Nested objects, arrays and numbers with a fraction or exponent are refused with a
/// message, because no event field takes them.
struct FlatJSONReader {
    private let scalars: [Unicode.Scalar]
    private var index = 0

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    /// The object's members in order. Throws at the first thing that is not a flat object.
    mutating func object() throws(LineError) -> [(String, FlatJSONValue)] {
        skipWhitespace()
        try expect("{", "the line must be a JSON object starting with {")
        var members: [(String, FlatJSONValue)] = []
        skipWhitespace()
        if peek() == "}" {
            index += 1
        } else {
            while true {
                skipWhitespace()
                guard peek() == "\"" else { throw error("expected a key in double quotes") }
                let key = try string()
                skipWhitespace()
                try expect(":", "expected : after the key \(key.debugDescription)")
                skipWhitespace()
                members.append((key, try value(for: key)))
                skipWhitespace()
                if peek() == "," {
                    index += 1
                    continue
                }
                try expect("}", "expected , or } after the value of \(key.debugDescription)")
                break
            }
        }
        skipWhitespace()
        if index < scalars.count { throw error("unexpected text after the object") }
        return members
    }

    private mutating func value(for key: String) throws(LineError) -> FlatJSONValue {
        switch peek() {
        case "\"": return .string(try string())
        case "t": try literal("true"); return .bool(true)
        case "f": try literal("false"); return .bool(false)
        case "n": try literal("null"); return .null
        case "{", "[": throw LineError(message: "\(key) must be a plain value, not a nested object or array")
        case let scalar? where scalar == "-" || ("0"..."9").contains(scalar): return .number(try number(for: key))
        default: throw error("expected a value for \(key.debugDescription)")
        }
    }

    private mutating func number(for key: String) throws(LineError) -> String {
        let start = index
        if peek() == "-" { index += 1 }
        guard let first = peek(), ("0"..."9").contains(first) else { throw error("malformed number") }
        if first == "0" {
            index += 1
        } else {
            while let digit = peek(), ("0"..."9").contains(digit) { index += 1 }
        }
        if let next = peek(), next == "." || next == "e" || next == "E" {
            throw LineError(message: "\(key) must be a whole number (no fraction or exponent)")
        }
        return String(String.UnicodeScalarView(scalars[start..<index]))
    }

    private mutating func string() throws(LineError) -> String {
        index += 1  // the opening quote
        var result = String.UnicodeScalarView()
        while true {
            guard let scalar = peek() else { throw error("a string is never closed") }
            index += 1
            switch scalar {
            case "\"":
                return String(result)
            case "\\":
                result.append(try escape())
            case let control where control.value < 0x20:
                throw error("a control character inside a string must be escaped")
            default:
                result.append(scalar)
            }
        }
    }

    private mutating func escape() throws(LineError) -> Unicode.Scalar {
        guard let code = peek() else { throw error("a string is never closed") }
        index += 1
        switch code {
        case "\"": return "\""
        case "\\": return "\\"
        case "/": return "/"
        case "b": return "\u{08}"
        case "f": return "\u{0C}"
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "u":
            let high = try hex4()
            if (0xD800...0xDBFF).contains(high) {
                guard peek() == "\\" else { throw error("a lone surrogate \\u escape") }
                index += 1
                guard peek() == "u" else { throw error("a lone surrogate \\u escape") }
                index += 1
                let low = try hex4()
                guard (0xDC00...0xDFFF).contains(low),
                      let scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                else { throw error("an invalid surrogate pair") }
                return scalar
            }
            guard let scalar = Unicode.Scalar(high) else { throw error("a lone surrogate \\u escape") }
            return scalar
        default:
            throw error("an unknown escape \\\(Character(code))")
        }
    }

    private mutating func hex4() throws(LineError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let scalar = peek(), let digit = Character(scalar).hexDigitValue else {
                throw error("\\u needs four hex digits")
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func literal(_ word: String) throws(LineError) {
        for expected in word.unicodeScalars {
            guard peek() == expected else { throw error("expected \(word)") }
            index += 1
        }
    }

    private mutating func expect(_ scalar: Unicode.Scalar, _ message: String) throws(LineError) {
        guard peek() == scalar else { throw error(message) }
        index += 1
    }

    private mutating func skipWhitespace() {
        while let scalar = peek(), scalar == " " || scalar == "\t" || scalar == "\r" || scalar == "\n" { index += 1 }
    }

    private func peek() -> Unicode.Scalar? { index < scalars.count ? scalars[index] : nil }

    private func error(_ message: String) -> LineError {
        LineError(message: "invalid JSON at column \(index + 1): \(message)")
    }
}
