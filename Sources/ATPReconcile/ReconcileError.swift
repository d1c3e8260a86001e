import ATPSnapshot

/// Why a reconciliation could not run or stopped. Bad rows in lenient mode are not errors: they
/// are listed in the report (`BadRow`).
public enum ReconcileError: Error, Sendable, CustomStringConvertible {
    /// Bad arguments or options (exit status usage).
    case usage(String)
    /// A file could not be opened, read or written: the path and why.
    case file(path: String, String)
    /// The ERP file is not UTF-8 (a UTF-16 or UTF-32 byte order mark).
    case encoding(path: String, String)
    /// The header line cannot be used: a required column is missing or a name is repeated.
    case header(file: String, line: Int, String)
    /// `--strict`: the first bad row stops the run (nothing else is written).
    case badRow(file: String, BadRow)
    /// The snapshot could not be found or read.
    case snapshot(SnapshotError)
    /// The snapshot's names and cells do not fit together.
    case snapshotContent(path: String, SnapshotIndexError)

    public var description: String {
        switch self {
        case .usage(let message): message
        case .file(let path, let message): "\(path): \(message)"
        case .encoding(let path, let message): "\(path): \(message)"
        case .header(let file, let line, let message): "\(file):\(line): \(message)"
        case .badRow(let file, let row): "\(file):\(row.line): \(row.problem.rawValue): \(row.message) (--strict stops at the first bad row)"
        case .snapshot(let error): "\(error)"
        case .snapshotContent(let path, let error): "\(path): \(error)"
        }
    }
}

/// One ERP row that could not be reconciled, with its line number.
public struct BadRow: Sendable, Equatable {
    /// The line where the row starts (1 = the first line of the file).
    public var line: Int
    /// What kind of problem.
    public var problem: BadRowProblem
    /// What is wrong, for people.
    public var message: String

    /// A bad row from its parts.
    public init(line: Int, problem: BadRowProblem, message: String) {
        self.line = line
        self.problem = problem
        self.message = message
    }
}

/// The kinds of bad ERP rows (docs/RECONCILE.md, "Bad rows").
public enum BadRowProblem: String, Sendable, CaseIterable {
    /// Wrong number of fields, an unclosed or stray quote, an empty required field.
    case malformedRow
    /// A header column that is not a known field (the column is ignored).
    case unknownColumn
    /// A quantity that is not a whole number (`12.5`, `abc`) or out of range.
    case nonIntegerQuantity
    /// A quantity below zero.
    case negativeQuantity
    /// A (location, sku) already counted on an earlier line (the later row is ignored).
    case duplicateCell
    /// Bytes that are not UTF-8.
    case encoding
    /// A SKU or location that cannot be a name (longer than 64 bytes).
    case invalidName
    /// A unit cost that is not a non-negative decimal with at most 6 decimals.
    case invalidUnitCost
    /// An as_of that is not a date, a date-time or milliseconds since 1970.
    case invalidAsOf
    /// A row longer than `ReconcileLimits.rowBytesMax` (skipped up to the next line).
    case rowTooLong
}
