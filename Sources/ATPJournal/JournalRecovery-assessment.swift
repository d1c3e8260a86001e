/// Decides what damage found by recovery means: what a crash leaves by itself (cut it, as any
/// crash-safe log does) or a loss of records (refuse unless the policy accepts it).
///
/// A crash can only leave damage at the very end of what was written: a last record cut short or
/// failing its checksum, zeros where the file grew but its data never reached the disk, a segment
/// whose header was being written. Such bytes were never acknowledged in `.sync` (the `fdatasync`
/// covering them had not returned). Anything else (a damaged segment header, a bad record with valid
/// records after it, damage in a segment that is not the last, a gap between segments) means
/// records that verify, and were likely acknowledged, sit after the damage.
struct DamageAssessment {
    /// What the damage is.
    enum Verdict: Equatable {
        /// A crash leaves this: cut it.
        case crashDamage(JournalTailRepair.Cause)
        /// Cutting would lose records (or the damage is not one a crash leaves).
        case loss
    }

    var verdict: Verdict
    /// What a cut at the damage would remove, whatever the verdict.
    var report: JournalLossReport

    /// Assesses `point`, where `reader`'s scan stopped, the stream being intact up to `lastIntactLSN`.
    /// Cost: reads every byte after the damage once (an 8-byte compare per byte where no record
    /// verifies, one CRC32C pass per record that does).
    static func assess(
        _ point: JournalDamagePoint, reader: JournalReader, lastIntactLSN: UInt64
    ) throws(JournalError) -> DamageAssessment {
        precondition(point.segmentIndex < reader.segments.count && point.offset >= 0, "damage outside the stream")
        let affected = Array(reader.segments[point.segmentIndex...])
        var survivors = SurvivorScan(lastIntactLSN: lastIntactLSN, streamIndex: reader.streamIndex)
        var bytesLost: Int64 = 0
        var isZero = false
        for (index, segment) in affected.enumerated() {
            let scanner = try SegmentScanner(path: segment.path, fileOperations: reader.fileOperations)
            if index == 0 {
                bytesLost += scanner.fileSize - min(point.offset, scanner.fileSize)
                isZero = try scanner.isZero(from: point.offset)
                try survivors.scanDamaged(scanner, from: point)
            } else {
                bytesLost += scanner.fileSize
                try survivors.scanLater(scanner)
            }
        }
        let report = JournalLossReport(
            directory: reader.directory, streamIndex: reader.streamIndex, segmentPath: affected[0].path,
            offset: point.offset, damage: point.damage, lastIntactLSN: lastIntactLSN, bytesLost: bytesLost,
            filesAffected: affected.map(\.path), recordsAfterDamage: survivors.count,
            lsnRangeAfterDamage: survivors.lsnRange, preservedPaths: [])
        let isLast = point.segmentIndex == reader.segments.count - 1
        let verdict = Self.verdict(point.damage, isLastSegment: isLast, survivors: survivors.count, isZero: isZero)
        return DamageAssessment(verdict: verdict, report: report)
    }

    /// Crash damage only in the last segment, with no record verifying after it, and of a kind a
    /// torn write leaves: a short or all-zero segment header, or a damaged last record.
    static func verdict(_ damage: JournalDamage, isLastSegment: Bool, survivors: Int, isZero: Bool) -> Verdict {
        guard isLastSegment && survivors == 0 else { return .loss }
        switch damage {
        case .truncatedSegmentHeader:
            return .crashDamage(.tornSegmentHeader)
        case .badSegmentHeader:
            // A bit flip or a wrong magic is not a torn write; zeros are (the file grew, its data
            // never reached the disk).
            return isZero ? .crashDamage(.tornSegmentHeader) : .loss
        case .truncatedRecordHeader, .truncatedPayload, .checksumMismatch, .unexpectedLSN:
            return .crashDamage(isZero ? .zeroFilledTail : .tornRecord)
        case .segmentGap:
            return .loss
        }
    }
}

/// Counts the records that still verify after damage: at every byte, a record whose LSN is
/// plausible and whose CRC32C matches.
///
/// Plausible means later than the last one found (or the last intact one) and at most one more per
/// `RecordHeader.bytes` bytes skipped since: records are at least that long, so no LSN further
/// ahead can follow legitimately in the same bytes. A later segment with a valid header moves the
/// expected LSN to its first LSN. This bound makes a false find in random bytes practically
/// impossible (a CRC32C match and a 64-bit LSN in a window of a few values), and zeros never match
/// (LSN 0 is never plausible).
struct SurvivorScan {
    /// Records found.
    private(set) var count = 0
    private(set) var firstLSN: UInt64?
    private(set) var lastLSN: UInt64?
    /// The next record found must carry at least this LSN.
    private var lowestNextLSN: UInt64
    /// Bytes skipped since the last record found (or since the damage).
    private var bytesSkipped: Int64 = 0
    private let streamIndex: Int

    init(lastIntactLSN: UInt64, streamIndex: Int) {
        lowestNextLSN = lastIntactLSN + 1
        self.streamIndex = streamIndex
    }

    /// The LSNs of the first and last record found, nil when none was.
    var lsnRange: ClosedRange<UInt64>? {
        guard let firstLSN, let lastLSN else { return nil }
        return firstLSN ... lastLSN
    }

    /// Scans the damaged segment: from the damaged record, or after the header when the header
    /// (or the LSN it starts at) is what is damaged.
    mutating func scanDamaged(_ scanner: SegmentScanner, from point: JournalDamagePoint) throws(JournalError) {
        switch point.damage {
        case .segmentGap:
            try scanLater(scanner)
        case .truncatedSegmentHeader, .badSegmentHeader:
            try scan(scanner, from: min(Int64(SegmentHeader.bytes), scanner.fileSize))
        case .truncatedRecordHeader, .truncatedPayload, .checksumMismatch, .unexpectedLSN:
            try scan(scanner, from: point.offset)
        }
    }

    /// Scans a segment after the damaged one, trusting its first LSN when its header verifies.
    mutating func scanLater(_ scanner: SegmentScanner) throws(JournalError) {
        if case .valid(let header) = try scanner.readHeader(), Int(header.streamIndex) == streamIndex,
           header.firstLSN >= lowestNextLSN {
            lowestNextLSN = header.firstLSN
            bytesSkipped = 0
        }
        try scan(scanner, from: min(Int64(SegmentHeader.bytes), scanner.fileSize))
    }

    private mutating func scan(_ scanner: SegmentScanner, from start: Int64) throws(JournalError) {
        var position = start
        while position + Int64(RecordHeader.bytes) <= scanner.fileSize {
            // Skip at once to where an LSN field could be plausible anywhere in the rest of the file.
            guard let candidate = try scanner.firstPosition(
                from: position, lsnIn: lowestNextLSN ... highestLSN(afterSkipping: scanner.fileSize - position)) else { break }
            bytesSkipped += candidate - position
            position = candidate
            let lsns = lowestNextLSN ... highestLSN(afterSkipping: 0)
            if let found = try scanner.verifiedRecord(at: position, lsns: lsns) {
                count += 1
                if firstLSN == nil { firstLSN = found.lsn }
                lastLSN = found.lsn
                lowestNextLSN = found.lsn &+ 1
                bytesSkipped = 0
                position += found.bytes
            } else {
                bytesSkipped += 1
                position += 1
            }
        }
        bytesSkipped += max(0, scanner.fileSize - position)
    }

    /// The highest plausible LSN once `more` bytes beyond `bytesSkipped` are skipped.
    private func highestLSN(afterSkipping more: Int64) -> UInt64 {
        let (highest, overflow) = lowestNextLSN.addingReportingOverflow(UInt64(bytesSkipped + more) / UInt64(RecordHeader.bytes))
        return overflow ? UInt64.max : highest
    }
}
