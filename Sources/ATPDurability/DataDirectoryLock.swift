#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exclusive `flock` on `<data>/LOCK` that keeps a second atpd off a data directory. Released
/// by `unlock()` or when the process exits (however it exits).
final class DataDirectoryLock: @unchecked Sendable {
    private var descriptor: Int32

    /// Creates the directory if needed and takes the lock. Throws `.dataDirectoryLocked` when another
    /// process holds it, `.dataDirectory` when the directory or file cannot be made.
    init(directory: String) throws(DurabilityError) {
        for path in Self.prefixes(of: directory) where mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw .dataDirectory(path: path, reason: String(cString: strerror(errno)))
        }
        let path = directory + "/LOCK"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .dataDirectory(path: path, reason: String(cString: strerror(errno))) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            Glibc.close(descriptor)
            if code == EWOULDBLOCK { throw .dataDirectoryLocked(path: directory) }
            throw .dataDirectory(path: path, reason: String(cString: strerror(code)))
        }
    }

    deinit { unlock() }

    /// Releases the lock. Idempotent.
    func unlock() {
        guard descriptor >= 0 else { return }
        Glibc.close(descriptor)
        descriptor = -1
    }

    /// "/a", "/a/b", "/a/b/c" for "/a/b/c" (relative paths likewise).
    private static func prefixes(of path: String) -> [String] {
        var result: [String] = []
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            result.append(current)
        }
        return result
    }
}
