#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Creates and reopens segment files for appending.
enum SegmentFiles {
    /// Creates `segment-<firstLSN>.journal` in `directory` (failing if it exists) and writes its
    /// header. With `synchronize`, the file and the directory entry are synced before it returns, so
    /// records written to it can count as durable once the file itself is synced again.
    static func create(
        directory: String, streamIndex: Int, firstLSN: UInt64, synchronize: Bool,
        fileOperations: JournalFileOperations
    ) throws(JournalError) -> (file: JournalFile, segment: JournalSegment) {
        precondition(firstLSN >= 1, "LSNs start at 1")
        let segment = JournalSegment(firstLSN: firstLSN,
                                     path: directory + "/" + JournalSegment.fileName(firstLSN: firstLSN))
        let file = try JournalFile(fileOperations: fileOperations, path: segment.path,
                                   flags: O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, mode: 0o644)
        do {
            let header = SegmentHeader(streamIndex: UInt32(streamIndex), firstLSN: firstLSN).encoded()
            try file.writeAll(header)
            if synchronize {
                try file.synchronizeData()
                try DirectorySync.synchronize(directory, fileOperations: fileOperations)
            }
        } catch {
            // A half-written header is set aside by the next recovery (it is the last segment).
            file.closeIgnoringErrors()
            throw error
        }
        return (file, segment)
    }

    /// Opens the recovered last segment for appending and syncs it and the directory, so every
    /// recovered record is on stable storage whatever the previous run's durability mode was.
    /// Returns the file and its size.
    static func reopen(
        _ segment: JournalSegment, directory: String, fileOperations: JournalFileOperations
    ) throws(JournalError) -> (file: JournalFile, bytes: Int64) {
        let file = try JournalFile(fileOperations: fileOperations, path: segment.path,
                                   flags: O_WRONLY | O_APPEND | O_CLOEXEC)
        do {
            let bytes = try file.size()
            try file.synchronizeData()
            try DirectorySync.synchronize(directory, fileOperations: fileOperations)
            return (file, bytes)
        } catch {
            file.closeIgnoringErrors()
            throw error
        }
    }
}
