#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few POSIX file calls the store (and the durable ledger's placement file) needs, each turning a
/// failure into `SnapshotError.io`.
package enum FileSystem {
    static func error(_ operation: String, _ path: String, _ code: Int32 = errno) -> SnapshotError {
        .io(operation: operation, path: path, errno: code, message: String(cString: strerror(code)))
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Size in bytes, or nil when the file does not exist.
    static func fileSize(_ path: String) throws(SnapshotError) -> Int? {
        var info = stat()
        if stat(path, &info) != 0 {
            if errno == ENOENT { return nil }
            throw error("stat", path)
        }
        return Int(info.st_size)
    }

    /// Creates a directory (and its parents); an existing one is fine.
    static func makeDirectories(_ path: String) throws(SnapshotError) {
        if isDirectory(path) { return }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try makeDirectories(String(path[..<slash]))
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw error("mkdir", path) }
    }

    /// Names in a directory (without "." and ".."); empty when it does not exist.
    static func list(_ path: String) throws(SnapshotError) -> [String] {
        guard let directory = opendir(path) else {
            if errno == ENOENT { return [] }
            throw error("opendir", path)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Removes a file or a directory tree; a missing path is fine.
    static func removeTree(_ path: String) throws(SnapshotError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw error("lstat", path)
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 { throw error("rmdir", path) }
        } else if unlink(path) != 0 {
            throw error("unlink", path)
        }
    }

    package static func move(_ from: String, to: String) throws(SnapshotError) {
        if rename(from, to) != 0 { throw error("rename", "\(from) -> \(to)") }
    }

    /// fsyncs a file or directory (a directory's fsync makes renames and creations in it durable).
    package static func sync(_ path: String) throws(SnapshotError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw error("open", path) }
        defer { close(descriptor) }
        if fsync(descriptor) != 0 { throw error("fsync", path) }
    }

    /// Writes `bytes` to a new file (replacing an old one) and fsyncs it.
    package static func writeFile(_ path: String, _ bytes: [UInt8]) throws(SnapshotError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw error("open", path) }
        defer { close(descriptor) }
        try writeAll(descriptor, path, bytes)
        if fsync(descriptor) != 0 { throw error("fsync", path) }
    }

    static func writeAll(_ descriptor: Int32, _ path: String, _ bytes: [UInt8]) throws(SnapshotError) {
        let failure: SnapshotError? = bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return error("write", path)
                }
                offset += written
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// Reads a whole small file; nil when it does not exist.
    package static func readFile(_ path: String) throws(SnapshotError) -> [UInt8]? {
        var bytes: [UInt8] = []
        let found = try readChunks(path, chunkBytes: 1 << 16) { bytes.append(contentsOf: $0) }
        return found ? bytes : nil
    }

    /// Calls `body` with successive chunks of a file; false when it does not exist.
    @discardableResult
    static func readChunks(_ path: String, chunkBytes: Int,
                           _ body: (UnsafeRawBufferPointer) -> Void) throws(SnapshotError) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return false }
            throw error("open", path)
        }
        defer { close(descriptor) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(descriptor, buffer.baseAddress!, chunkBytes)
            if count < 0 {
                if errno == EINTR { continue }
                throw error("read", path)
            }
            if count == 0 { return true }
            body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }
}
