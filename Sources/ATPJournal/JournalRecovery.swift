#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What recovery cut off the end of the last segment.
public struct JournalTailRepair: Sendable, Equatable {
    /// The segment file that was cut (or set aside whole, when its header was damaged).
    public var segmentPath: String
    /// The length the file was cut to; everything before it is intact. 0 when the whole file
    /// was set aside.
    public var offset: Int64
    /// The bytes removed from the segment.
    public var bytesCut: Int64
    /// Why: the damage found at `offset`.
    public var damage: JournalDamage
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
    /// What was cut off the tail, or nil when the journal ended cleanly.
    public var tailRepair: JournalTailRepair?
}

/// Verifies every segment of a stream and repairs a torn or corrupt tail (see `JournalReader`).
public enum JournalRecovery {
    /// Scans every record of the stream in `directory`. When the last segment ends in damage, the
    /// damaged bytes are copied to a `.damaged` file, the segment is cut at the last good record
    /// (`ftruncate` + `fdatasync` + directory `fsync`) and the cut is reported; a segment whose
    /// header is damaged is renamed aside whole. Damage in an earlier segment, a gap between
    /// segments or a foreign segment throws and changes nothing.
    ///
    /// Cost: reads every byte of every segment once. Run before the stream's appender starts;
    /// `JournalStream.open` runs it.
    public static func recover(
        directory: String, streamIndex: Int, fileOperations: JournalFileOperations = .system
    ) throws(JournalError) -> JournalRecoveryReport {
        let reader = try JournalReader.open(directory: directory, streamIndex: streamIndex,
                                            fileOperations: fileOperations)
        let cursor = try reader.records()
        var recordCount = 0
        var firstLSN: UInt64?
        while try cursor.advance(body: { lsn, _, _ in
            if firstLSN == nil { firstLSN = lsn }
        }) {
            recordCount += 1
        }
        var segments = reader.segments
        var repair: JournalTailRepair?
        if let damage = cursor.tailDamage {
            let repairer = TailRepairer(directory: directory, fileOperations: fileOperations)
            repair = try repairer.repair(damage)
            if damage.offset == 0 { segments.removeLast() }
        }
        let nextLSN = cursor.nextLSN
        return JournalRecoveryReport(segments: segments, firstLSN: firstLSN,
                                     lastLSN: recordCount == 0 ? nil : nextLSN - 1, nextLSN: nextLSN,
                                     recordCount: recordCount, tailRepair: repair)
    }
}

/// Cuts a damaged tail, keeping a copy of what it cuts.
struct TailRepairer {
    let directory: String
    let fileOperations: JournalFileOperations

    /// Preserved copies are named `<segment>.damaged`, then `.damaged.1` ... up to this many.
    static let preservedNamesMax = 1000
    static let copyChunkBytes = 1 << 20

    func repair(_ damage: JournalTailDamage) throws(JournalError) -> JournalTailRepair {
        let path = damage.segment.path
        let preservedPath: String
        if damage.offset == 0 {
            // The segment header itself is damaged: no record in it can be trusted. Set it aside whole.
            preservedPath = try freePreservedPath(for: path)
            do { try fileOperations.rename(path, preservedPath) } catch {
                throw .systemCallFailed(operation: "rename", path: path, errno: error.code)
            }
        } else {
            preservedPath = try copyTail(of: path, from: damage.offset)
            try cut(path, at: damage.offset)
        }
        try DirectorySync.synchronize(directory, fileOperations: fileOperations)
        return JournalTailRepair(segmentPath: path, offset: damage.offset, bytesCut: damage.bytesAfter,
                                 damage: damage.damage, preservedPath: preservedPath)
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
