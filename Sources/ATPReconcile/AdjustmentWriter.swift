/// Writes the `count` events that would make the engine agree with the ERP file, as an event file
/// `atp ingest` reads (docs/CLI.md, "CSV", with a header line):
///
/// ```
/// kind,sku,location,quantity,sequence,event_ms
/// count,SKU-1,DC1,12,1,1700000000000
/// ```
///
/// One event per differing cell: the ERP quantity for `differs` and `erpOnly` cells, 0 for
/// `engineOnly` cells. Sequences run from `firstSequence` up; `event_ms` is the row's as_of, or the
/// snapshot's cut time without one. Ingest the file with a source used for nothing else (e.g.
/// `--source reconcile-<snapshot id>`), since the sequence numbers start again at every run.
/// Written to `<path>.tmp` and renamed by `finish()`.
public final class AdjustmentWriter: VarianceSink {
    /// The header line.
    public static let header = "kind,sku,location,quantity,sequence,event_ms\n"
    private let output: BufferedFileOutput
    private var nextSequence: UInt64
    private let defaultEventMilliseconds: Int64
    /// Events written so far.
    public private(set) var eventCount = 0
    /// The final path.
    public var path: String { output.path }

    /// Starts the file at `path`. Throws `ReconcileError.file`.
    public init(path: String, firstSequence: UInt64 = 1, defaultEventMilliseconds: Int64) throws(ReconcileError) {
        precondition(firstSequence >= 1)
        output = try BufferedFileOutput(path: path)
        nextSequence = firstSequence
        self.defaultEventMilliseconds = defaultEventMilliseconds
        output.text(Self.header)
    }

    /// Writes the count event for one differing cell.
    public func write(_ variance: Variance) throws(ReconcileError) {
        output.text("count,")
        output.csvField(variance.sku)
        output.byte(44)
        output.csvField(variance.location)
        output.byte(44)
        output.integer(variance.erpQuantity ?? 0)
        output.byte(44)
        output.text(String(nextSequence))
        output.byte(44)
        output.integer(variance.asOfMilliseconds ?? defaultEventMilliseconds)
        output.byte(10)
        nextSequence += 1
        eventCount += 1
        try output.endRecord()
    }

    /// Bad rows produce no event.
    public func write(_ badRow: BadRow) throws(ReconcileError) {}

    /// Renames the file into place.
    public func finish() throws(ReconcileError) { try output.commit() }

    /// Removes the partial file.
    public func discard() { output.discard() }
}
