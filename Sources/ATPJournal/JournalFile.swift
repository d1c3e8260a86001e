#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file descriptor with its path, whose calls go through `JournalFileOperations` and throw
/// `JournalError.systemCallFailed` naming the operation and the path. Does not close itself:
/// the owner calls `close()` (or `closeIgnoringErrors()` on an error path).
struct JournalFile {
    let fileOperations: JournalFileOperations
    let path: String
    let descriptor: Int32

    /// Opens `path` with `flags` (and `mode` when creating).
    init(fileOperations: JournalFileOperations, path: String, flags: Int32, mode: UInt32 = 0) throws(JournalError) {
        do {
            descriptor = try fileOperations.open(path, flags, mode)
        } catch {
            throw .systemCallFailed(operation: "open", path: path, errno: error.code)
        }
        self.fileOperations = fileOperations
        self.path = path
    }

    /// Writes all of `bytes`, continuing after short writes.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(JournalError) {
        var written = 0
        while written < bytes.count {
            let count: Int
            do {
                count = try fileOperations.write(descriptor, UnsafeRawBufferPointer(rebasing: bytes[written...]))
            } catch {
                throw .systemCallFailed(operation: "write", path: path, errno: error.code)
            }
            // write(2) returns 0 for a non-empty buffer only on odd file systems; report it, do not spin.
            guard count > 0 else { throw .systemCallFailed(operation: "write", path: path, errno: EIO) }
            written += count
        }
    }

    /// Writes all of `bytes`.
    func writeAll(_ bytes: [UInt8]) throws(JournalError) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JournalError) in try writeAll(raw) }
        }
        try result.get()
    }

    /// Reads up to `buffer.count` bytes at `offset`; 0 at the end of the file.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(JournalError) -> Int {
        do {
            return try fileOperations.read(descriptor, buffer, offset)
        } catch {
            throw .systemCallFailed(operation: "read", path: path, errno: error.code)
        }
    }

    /// The file's size in bytes.
    func size() throws(JournalError) -> Int64 {
        do {
            return try fileOperations.fileSize(descriptor)
        } catch {
            throw .systemCallFailed(operation: "fstat", path: path, errno: error.code)
        }
    }

    /// `fdatasync(2)`.
    func synchronizeData() throws(JournalError) {
        do {
            try fileOperations.synchronizeData(descriptor)
        } catch {
            throw .systemCallFailed(operation: "fdatasync", path: path, errno: error.code)
        }
    }

    /// `close(2)`; the descriptor is released either way.
    func close() throws(JournalError) {
        do {
            try fileOperations.close(descriptor)
        } catch {
            throw .systemCallFailed(operation: "close", path: path, errno: error.code)
        }
    }

    /// `close(2)` on a path that already failed: a second error would say nothing new.
    func closeIgnoringErrors() {
        try? fileOperations.close(descriptor)
    }
}

/// Makes directory entries (created, renamed, removed files) durable.
enum DirectorySync {
    /// Opens `directory` and `fsync(2)`s it.
    static func synchronize(_ directory: String, fileOperations: JournalFileOperations) throws(JournalError) {
        let file = try JournalFile(fileOperations: fileOperations, path: directory,
                                   flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { file.closeIgnoringErrors() }
        do {
            try fileOperations.synchronize(file.descriptor)
        } catch {
            throw .systemCallFailed(operation: "fsync", path: directory, errno: error.code)
        }
    }

    /// Creates `directory` and any missing parents (mode 0755), syncing each parent that gained an
    /// entry. An existing directory is fine.
    static func makeDirectories(_ directory: String, fileOperations: JournalFileOperations) throws(JournalError) {
        var prefix = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/", omittingEmptySubsequences: true) {
            let parent = prefix.isEmpty ? "/" : prefix
            prefix += "/" + component
            do {
                try fileOperations.makeDirectory(prefix, 0o755)
            } catch where error.code == EEXIST {
                continue
            } catch {
                throw .systemCallFailed(operation: "mkdir", path: prefix, errno: error.code)
            }
            try synchronize(parent, fileOperations: fileOperations)
        }
    }
}
