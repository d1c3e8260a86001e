/// A plain-text table for human output: a header row, columns separated by two spaces, numbers
/// right-aligned. No colours and no box drawing, so the output stays greppable.
public struct TextTable: Sendable {
    /// How a column's cells line up.
    public enum Alignment: Sendable {
        /// Text.
        case left
        /// Numbers.
        case right
    }

    /// The column titles and alignments.
    public let columns: [(title: String, alignment: Alignment)]
    /// The rows added so far.
    public private(set) var rows: [[String]] = []

    /// A table with these columns.
    public init(_ columns: [(String, Alignment)]) {
        self.columns = columns.map { (title: $0.0, alignment: $0.1) }
    }

    /// Appends a row. Precondition: one cell per column.
    public mutating func add(_ cells: [String]) {
        precondition(cells.count == columns.count, "a row needs \(columns.count) cells, got \(cells.count)")
        rows.append(cells)
    }

    /// The table as lines (header first), each without trailing spaces or newline.
    public func renderedLines() -> [String] {
        var widths = columns.map { $0.title.count }
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return ([columns.map(\.title)] + rows).map { cells in
            var line = ""
            for (index, cell) in cells.enumerated() {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                if index > 0 { line += "  " }
                line += columns[index].alignment == .right ? padding + cell : cell + padding
            }
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    /// The table as one string with a newline after every line.
    public func rendered() -> String { renderedLines().map { $0 + "\n" }.joined() }
}
