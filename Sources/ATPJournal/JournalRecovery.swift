#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What recovery cut off the end of the last segment: damage a crash leaves by itself.
public struct JournalTailRepair: Sendable, Equatable {
    /// Why cutting it loses nothing that was acknowledged in `.sync` (docs/DURABILITY.md, "Damaged
    /// journals").
    public enum Cause: Sendable, Equatable, CustomStringConvertible {
        /// The last record is cut short or fails its checksum and nothing after it verifies: a write
        /// the crash interrupted, whose `fdatasync` never returned.
        case tornRecord
        /// Only zero bytes follow the last intact record: the file grew but its data never reached
        /// the disk.
        case zeroFilledTail
        /// The last segment's header is cut short or all zero: the crash came while the segment was
        /// being created, before any record went into it.
        case tornSegmentHeader

        /// A short phrase saying why the cut is safe.
        public var description: String {
            switch self {
            case .tornRecord: "a torn last record, nothing after it verifies"
            case .zeroFilledTail: "only zero bytes after the last intact record"
            case .tornSegmentHeader: "the segment was being created: its header is cut short or zero"
            }
        }
    }

    /// The segment file that was cut (or set aside whole, when its header was torn).
    public var segmentPath: String
    /// The length the file was cut to; everything before it is intact. 0 when the whole file
    /// was set aside.
    public var offset: Int64
    /// The bytes removed from the segment.
    public var bytesCut: Int64
    /// Why: the damage found at `offset`.
    public var damage: JournalDamage
    /// Why cutting it is safe.
    public var cause: Cause
    /// Where the removed bytes were kept for inspection (`<segment>.damaged[.<n>]`); nothing is
    /// destroyed. Delete it once inspected.
    public var preservedPath: String
}

/// The outcome of recovering one stream's directory.
public struct JournalRecoveryReport: Sendable, Equatable {
    /// The segments kept, oldest first.
    public var segments: [JournalSegment]
    /// The LSN of the oldest record kept, or nil when there is none.
    public var firstLSN: UInt64?
    /// The LSN of the newest intact record, or nil when there is none.
    public var lastLSN: UInt64?
    /// The LSN the next appended record gets.
    public var nextLSN: UInt64
    /// The records verified.
    public var recordCount: Int
    /// What was cut off the tail (crash damage), or nil when the journal ended cleanly.
    public var tailRepair: JournalTailRepair?
    /// Damage that lost records, cut because the policy was `.acceptLoss`; nil when there was none.
    public var acceptedLoss: JournalLossReport?
}

/// Verifies every segment of a stream and repairs what a crash leaves (see `JournalReader`).
public enum JournalRecovery {
    /// Scans every record of the stream in `directory` and stops at the first damage, in any segment.
    ///
    /// - Damage a crash leaves (a torn, checksum-failing or zero-filled end of the last segment with
    ///   no valid record after it; a torn header of the last segment) is cut under either policy:
    ///   the bytes are copied to a `.damaged` file, the segment is cut at the last intact record
    ///   (`ftruncate` + `fdatasync` + directory `fsync`), or set aside whole when its header is
    ///   torn, and the cut is reported in `tailRepair`.
    /// - Damage that would lose records (a damaged segment header, a bad record with valid records
    ///   after it, damage in an earlier segment, a gap between segments) throws
    ///   `.damageWouldLoseRecords` and changes nothing, unless `damagePolicy` is `.acceptLoss`:
    ///   then the damaged segment's bytes from the damage on, and every later segment, are set
    ///   aside the same way (never deleted) and reported in `acceptedLoss`.
    /// - A segment of another stream or an unknown format version always throws, changing nothing.
    ///
    /// Cost: reads every byte of every segment once, and every byte after a damage once more. Run
    /// before the stream's appender starts; `JournalStream.open` runs it.
    public static func recover(
        directory: String, streamIndex: Int, damagePolicy: JournalDamagePolicy = .refuse,
        fileOperations: JournalFileOperations = .system
    ) throws(JournalError) -> JournalRecoveryReport {
        let reader = try JournalReader.open(directory: directory, streamIndex: streamIndex,
                                            fileOperations: fileOperations)
        let cursor = JournalCursor(reader: reader, from: 0, segmentIndex: 0, stopsAtAnyDamage: true)
        var recordCount = 0
        var firstLSN: UInt64?
        while try cursor.advance(body: { lsn, _, _ in
            if firstLSN == nil { firstLSN = lsn }
        }) {
            recordCount += 1
        }
        let nextLSN = cursor.nextLSN
        var report = JournalRecoveryReport(segments: reader.segments, firstLSN: firstLSN,
                                           lastLSN: recordCount == 0 ? nil : nextLSN - 1, nextLSN: nextLSN,
                                           recordCount: recordCount, tailRepair: nil, acceptedLoss: nil)
        guard let point = cursor.damagePoint else { return report }
        let assessment = try DamageAssessment.assess(point, reader: reader, lastIntactLSN: nextLSN - 1)
        let repairer = TailRepairer(directory: directory, fileOperations: fileOperations)
        switch assessment.verdict {
        case .crashDamage(let cause):
            let preserved = try repairer.setAside(from: point, segments: reader.segments)
            report.tailRepair = JournalTailRepair(
                segmentPath: assessment.report.segmentPath, offset: point.offset, bytesCut: assessment.report.bytesLost,
                damage: point.damage, cause: cause, preservedPath: preserved[0])
        case .loss:
            guard damagePolicy == .acceptLoss else { throw .damageWouldLoseRecords(assessment.report) }
            var loss = assessment.report
            loss.preservedPaths = try repairer.setAside(from: point, segments: reader.segments)
            report.acceptedLoss = loss
        }
        report.segments = Array(reader.segments[..<(point.offset == 0 ? point.segmentIndex : point.segmentIndex + 1)])
        return report
    }
}

/// Sets damaged bytes aside (copied or renamed, never deleted) and cuts the stream before them.
struct TailRepairer {
    let directory: String
    let fileOperations: JournalFileOperations

    /// Preserved copies are named `<segment>.damaged`, then `.damaged.1` ... up to this many.
    static let preservedNamesMax = 1000
    static let copyChunkBytes = 1 << 20

    /// Sets aside everything from `point` on: the damaged segment's bytes from `point.offset`
    /// (copied to a preserved file, then cut; or the whole file renamed when the offset is 0) and
    /// every later segment (renamed). Returns the preserved paths, the damaged segment's first.
    ///
    /// Order, so that a crash half-way destroys nothing: copies and renames of later segments
    /// (newest first, the rest stays contiguous) are made durable with a directory `fsync` before
    /// the damaged segment is cut or renamed; a crash in between leaves damage the next recovery
    /// finds again.
    func setAside(from point: JournalDamagePoint, segments: [JournalSegment]) throws(JournalError) -> [String] {
        let damaged = segments[point.segmentIndex]
        let tailCopy = point.offset > 0 ? try copyTail(of: damaged.path, from: point.offset) : nil
        var laterPreserved: [String] = []
        for later in segments[(point.segmentIndex + 1)...].reversed() {
            laterPreserved.insert(try renameAside(later.path), at: 0)
        }
        try DirectorySync.synchronize(directory, fileOperations: fileOperations)
        let damagedPreserved: String
        if let tailCopy {
            try cut(damaged.path, at: point.offset)
            damagedPreserved = tailCopy
        } else {
            // The header itself is damaged (or the segment follows a gap): set it aside whole.
            damagedPreserved = try renameAside(damaged.path)
        }
        try DirectorySync.synchronize(directory, fileOperations: fileOperations)
        return [damagedPreserved] + laterPreserved
    }

    /// Renames `path` to a free preserved name; returns it.
    private func renameAside(_ path: String) throws(JournalError) -> String {
        let preservedPath = try freePreservedPath(for: path)
        do { try fileOperations.rename(path, preservedPath) } catch {
            throw .systemCallFailed(operation: "rename", path: path, errno: error.code)
        }
        return preservedPath
    }

    /// Copies bytes `offset...` of `path` into a new preserved file, synced; returns its path.
    private func copyTail(of path: String, from offset: Int64) throws(JournalError) -> String {
        let preservedPath = try freePreservedPath(for: path)
        let source = try JournalFile(fileOperations: fileOperations, path: path, flags: O_RDONLY | O_CLOEXEC)
        defer { source.closeIgnoringErrors() }
        let target = try JournalFile(fileOperations: fileOperations, path: preservedPath,
                                    flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o644)
        defer { target.closeIgnoringErrors() }
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.copyChunkBytes, alignment: 16)
        defer { chunk.deallocate() }
        var position = offset
        while true {
            let read = try source.read(into: chunk, at: position)
            if read == 0 { break }
            try target.writeAll(UnsafeRawBufferPointer(rebasing: chunk[0 ..< read]))
            position += Int64(read)
        }
        try target.synchronizeData()
        return preservedPath
    }

    /// Cuts `path` to `length` bytes and syncs it.
    private func cut(_ path: String, at length: Int64) throws(JournalError) {
        let file = try JournalFile(fileOperations: fileOperations, path: path, flags: O_WRONLY | O_CLOEXEC)
        defer { file.closeIgnoringErrors() }
        do { try fileOperations.truncate(file.descriptor, length) } catch {
            throw .systemCallFailed(operation: "ftruncate", path: path, errno: error.code)
        }
        try file.synchronizeData()
    }

    /// `<path>.damaged`, or `.damaged.<n>` for the first n not taken.
    private func freePreservedPath(for path: String) throws(JournalError) -> String {
        let names: Set<String>
        do { names = Set(try fileOperations.listDirectory(directory)) } catch {
            throw .systemCallFailed(operation: "opendir", path: directory, errno: error.code)
        }
        let base = String(path.split(separator: "/").last ?? Substring(path)) + ".damaged"
        for attempt in 0 ..< Self.preservedNamesMax {
            let name = attempt == 0 ? base : "\(base).\(attempt)"
            if !names.contains(name) { return directory + "/" + name }
        }
        throw .systemCallFailed(operation: "create preserved copy", path: directory + "/" + base, errno: EEXIST)
    }
}
