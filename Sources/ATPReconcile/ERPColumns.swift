/// The columns an ERP count file may have. `location`, `sku` and `quantity` are required;
/// `as_of` (when the count was taken) and `unit_cost` (value per unit) are optional.
public enum ERPField: String, CaseIterable, Sendable {
    case location
    case sku
    case quantity
    case asOf = "as_of"
    case unitCost = "unit_cost"

    /// The fields every file must have.
    public static let required: [ERPField] = [.location, .sku, .quantity]

    /// Every field name, comma-separated, for messages.
    static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// Which header name stands for which field: by default the field's own name
/// (`location`, `sku`, `quantity`, `as_of`, `unit_cost`); `--column location=STORE_ID` maps one to
/// another header name. Header names match without regard to ASCII case or surrounding spaces.
public struct ERPColumnMapping: Sendable, Equatable {
    /// Header names given for fields (others keep their own name).
    public private(set) var headerNames: [ERPField: String] = [:]

    /// The default mapping: every field under its own name.
    public init() {}

    /// A mapping from `field=HEADER` specifications (`--column` values). Throws `ReconcileError.usage`
    /// for an unknown field, an empty header name, a field given twice or two fields on one header.
    public init(specifications: [String]) throws(ReconcileError) {
        for specification in specifications {
            guard let equals = specification.firstIndex(of: "=") else {
                throw .usage("--column \(specification.debugDescription): expected FIELD=HEADER, e.g. location=STORE_ID")
            }
            let fieldName = specification[..<equals].trimmingCharacters()
            let header = specification[specification.index(after: equals)...].trimmingCharacters()
            guard let field = ERPField(rawValue: fieldName.lowercased()) else {
                throw .usage("--column \(specification.debugDescription): unknown field \(fieldName.debugDescription); fields are \(ERPField.allNames)")
            }
            guard !header.isEmpty else { throw .usage("--column \(specification.debugDescription): the header name is empty") }
            guard headerNames[field] == nil else { throw .usage("--column: \(field.rawValue) is mapped twice") }
            if let other = headerNames.first(where: { Self.key($0.value) == Self.key(header) }) {
                throw .usage("--column: \(other.key.rawValue) and \(field.rawValue) both map to \(header.debugDescription)")
            }
            headerNames[field] = header
        }
    }

    /// The header name of `field`.
    public func headerName(_ field: ERPField) -> String { headerNames[field] ?? field.rawValue }

    /// The field a header name stands for, or nil.
    func field(forHeader name: String) -> ERPField? {
        let key = Self.key(name)
        return ERPField.allCases.first { Self.key(headerName($0)) == key }
    }

    /// A header name compared without ASCII case or surrounding spaces.
    static func key(_ name: String) -> String { name.trimmingCharacters().lowercased() }
}

/// Where each field sits in the file's rows, read from its header line.
struct ERPHeader {
    /// Column index of each field present.
    var columnOfField: [ERPField: Int] = [:]
    /// Number of columns of the header (every row must have as many).
    var columnCount = 0
    /// Header names that are not fields, with their column index: ignored, reported as bad input.
    var unknownColumns: [(index: Int, name: String)] = []

    /// Reads the header's names. Throws `ReconcileError.header` for a missing required field or a
    /// name given twice.
    init(names: [String], mapping: ERPColumnMapping, file: String, line: Int) throws(ReconcileError) {
        columnCount = names.count
        for (index, name) in names.enumerated() {
            guard let field = mapping.field(forHeader: name) else {
                unknownColumns.append((index, name))
                continue
            }
            if columnOfField[field] != nil {
                throw .header(file: file, line: line, "column \(name.debugDescription) (\(field.rawValue)) appears twice")
            }
            columnOfField[field] = index
        }
        for field in ERPField.required where columnOfField[field] == nil {
            let mapped = mapping.headerName(field) == field.rawValue ? ""
                : " (mapped to \(mapping.headerName(field).debugDescription))"
            throw .header(file: file, line: line,
                          "the header lacks the \(field.rawValue) column\(mapped); it has \(names.map(\.debugDescription).joined(separator: ", ")); map names with --column \(field.rawValue)=HEADER")
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingCharacters() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isBlank($0) }), let end = lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[start...end])
    }
}
