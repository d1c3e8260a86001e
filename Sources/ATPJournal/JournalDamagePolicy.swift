/// What `JournalStream.open` does when recovery finds damage that would lose records: damage a
/// crash alone does not leave (docs/DURABILITY.md, "Damaged journals"). A torn or zero-filled
/// tail of the last segment, which a crash does leave, is cut under either policy.
public enum JournalDamagePolicy: Sendable, Equatable, CustomStringConvertible {
    /// Change nothing and throw `JournalError.damageWouldLoseRecords` with a `JournalLossReport`.
    /// The default.
    case refuse
    /// Set the damaged bytes, and every segment after them, aside in `.damaged` files (never
    /// deleted), cut the stream after the last intact record and report it in
    /// `JournalRecoveryReport.acceptedLoss`. The records in those bytes are lost to the stream.
    case acceptLoss

    /// `refuse` or `acceptLoss`.
    public var description: String {
        switch self {
        case .refuse: "refuse"
        case .acceptLoss: "acceptLoss"
        }
    }
}

/// Damage in a stream that would lose records, and what exactly they are: the typed content of
/// `JournalError.damageWouldLoseRecords`, and of `JournalRecoveryReport.acceptedLoss` once the
/// loss was accepted.
public struct JournalLossReport: Sendable, Equatable, CustomStringConvertible {
    /// The stream's directory.
    public var directory: String
    /// The stream's index.
    public var streamIndex: Int
    /// The segment file where the damage starts.
    public var segmentPath: String
    /// Where in it: 0 for its header (or a gap before it), else the start of the damaged record.
    public var offset: Int64
    /// What is wrong there.
    public var damage: JournalDamage
    /// The stream is intact up to this LSN (0 when no record is): the records kept.
    public var lastIntactLSN: UInt64
    /// Bytes from `offset` to the end of the damaged segment, plus every later segment: what is cut.
    public var bytesLost: Int64
    /// The damaged segment, then every later one: the files cut or set aside.
    public var filesAffected: [String]
    /// Records in those bytes that still verify (length, CRC32C and a plausible LSN), found by
    /// scanning forward past the damage: acknowledged records the cut would lose.
    public var recordsAfterDamage: Int
    /// The LSNs of the first and last of them, nil when there are none.
    public var lsnRangeAfterDamage: ClosedRange<UInt64>?
    /// Where the cut bytes were kept (`<file>.damaged[.<n>]`, the damaged segment's first); empty
    /// while the loss is only refused.
    public var preservedPaths: [String]

    /// One line: where, what, what is intact, what would be (or was) lost and where it is kept.
    public var description: String {
        let later = filesAffected.count - 1
        let extent = "\(segmentPath) from byte \(offset) to its end"
            + (later == 0 ? "" : " and \(later) later segment\(later == 1 ? "" : "s")")
        let survivors = lsnRangeAfterDamage.map { range in
            (recordsAfterDamage == 1 ? "1 record still verifies" : "\(recordsAfterDamage) records still verify")
                + " (LSN \(range.lowerBound)...\(range.upperBound))"
        } ?? "no record verifies"
        let verb = preservedPaths.isEmpty ? "would lose" : "lost"
        let intact = lastIntactLSN == 0 ? "no record precedes it" : "the stream is intact up to LSN \(lastIntactLSN)"
        var text = "journal stream \(streamIndex) segment \(segmentPath) is damaged at byte \(offset) (\(damage)); "
            + "\(intact); cutting it there \(verb) \(bytesLost) bytes (\(extent)) in which \(survivors)"
        if !preservedPaths.isEmpty { text += "; the cut bytes are kept in \(preservedPaths.joined(separator: ", "))" }
        return text
    }
}
