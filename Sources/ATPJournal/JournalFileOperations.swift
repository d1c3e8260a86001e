#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file system calls the journal makes, as replaceable closures: `.system` calls the real
/// syscalls; tests wrap it to count `fdatasync` calls or inject `ENOSPC` on the Nth write.
///
/// Each closure does one call, retries `EINTR`, and throws the `errno` of a failure; the journal
/// adds the operation and path to it. Closures run on the stream's flusher thread, the opening
/// thread, or the thread that calls `deleteSegments`, so they must be thread-safe.
public struct JournalFileOperations: Sendable {
    /// `open(2)` with `flags` and `mode`; returns the file descriptor.
    public var open: @Sendable (_ path: String, _ flags: Int32, _ mode: UInt32) throws(JournalErrno) -> Int32
    /// `close(2)`.
    public var close: @Sendable (_ fileDescriptor: Int32) throws(JournalErrno) -> Void
    /// `write(2)` at the file offset; returns the bytes written, which may be fewer than given.
    public var write: @Sendable (_ fileDescriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(JournalErrno) -> Int
    /// `pread(2)` at `offset`; returns the bytes read (0 at the end of the file).
    public var read: @Sendable (_ fileDescriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int64)
        throws(JournalErrno) -> Int
    /// The file's size in bytes (`fstat(2)`).
    public var fileSize: @Sendable (_ fileDescriptor: Int32) throws(JournalErrno) -> Int64
    /// `fdatasync(2)`: the file's data and the metadata needed to read it reach stable storage.
    public var synchronizeData: @Sendable (_ fileDescriptor: Int32) throws(JournalErrno) -> Void
    /// `fsync(2)`, used on directories so a created, renamed or removed entry is durable.
    public var synchronize: @Sendable (_ fileDescriptor: Int32) throws(JournalErrno) -> Void
    /// `ftruncate(2)` to `length` bytes.
    public var truncate: @Sendable (_ fileDescriptor: Int32, _ length: Int64) throws(JournalErrno) -> Void
    /// `rename(2)`.
    public var rename: @Sendable (_ from: String, _ to: String) throws(JournalErrno) -> Void
    /// `unlink(2)`.
    public var removeFile: @Sendable (_ path: String) throws(JournalErrno) -> Void
    /// `mkdir(2)` with `mode`; throws `EEXIST` when the path exists.
    public var makeDirectory: @Sendable (_ path: String, _ mode: UInt32) throws(JournalErrno) -> Void
    /// The names in a directory (`opendir(3)`/`readdir(3)`), without "." and "..", in no order.
    public var listDirectory: @Sendable (_ path: String) throws(JournalErrno) -> [String]
    /// `flock(2)` with `LOCK_EX | LOCK_NB`: throws `EWOULDBLOCK` when another descriptor holds it.
    public var lockExclusive: @Sendable (_ fileDescriptor: Int32) throws(JournalErrno) -> Void

    /// Builds a set of operations from closures (tests usually start from `.system` and replace one).
    public init(
        open: @escaping @Sendable (String, Int32, UInt32) throws(JournalErrno) -> Int32,
        close: @escaping @Sendable (Int32) throws(JournalErrno) -> Void,
        write: @escaping @Sendable (Int32, UnsafeRawBufferPointer) throws(JournalErrno) -> Int,
        read: @escaping @Sendable (Int32, UnsafeMutableRawBufferPointer, Int64) throws(JournalErrno) -> Int,
        fileSize: @escaping @Sendable (Int32) throws(JournalErrno) -> Int64,
        synchronizeData: @escaping @Sendable (Int32) throws(JournalErrno) -> Void,
        synchronize: @escaping @Sendable (Int32) throws(JournalErrno) -> Void,
        truncate: @escaping @Sendable (Int32, Int64) throws(JournalErrno) -> Void,
        rename: @escaping @Sendable (String, String) throws(JournalErrno) -> Void,
        removeFile: @escaping @Sendable (String) throws(JournalErrno) -> Void,
        makeDirectory: @escaping @Sendable (String, UInt32) throws(JournalErrno) -> Void,
        listDirectory: @escaping @Sendable (String) throws(JournalErrno) -> [String],
        lockExclusive: @escaping @Sendable (Int32) throws(JournalErrno) -> Void
    ) {
        self.open = open
        self.close = close
        self.write = write
        self.read = read
        self.fileSize = fileSize
        self.synchronizeData = synchronizeData
        self.synchronize = synchronize
        self.truncate = truncate
        self.rename = rename
        self.removeFile = removeFile
        self.makeDirectory = makeDirectory
        self.listDirectory = listDirectory
        self.lockExclusive = lockExclusive
    }

    /// The real system calls.
    public static let system = JournalFileOperations(
        open: SystemCalls.openFile,
        close: SystemCalls.closeFile,
        write: SystemCalls.writeFile,
        read: SystemCalls.readFile,
        fileSize: SystemCalls.fileSize,
        synchronizeData: SystemCalls.synchronizeData,
        synchronize: SystemCalls.synchronize,
        truncate: SystemCalls.truncateFile,
        rename: SystemCalls.renameFile,
        removeFile: SystemCalls.removeFile,
        makeDirectory: SystemCalls.makeDirectory,
        listDirectory: SystemCalls.listDirectory,
        lockExclusive: SystemCalls.lockExclusive
    )
}

/// The thin wrappers behind `JournalFileOperations.system`.
enum SystemCalls {
    /// Runs `call` until it does not fail with `EINTR`; a negative result throws `errno`.
    static func retryingInterrupts<Result: BinaryInteger>(_ call: () -> Result) throws(JournalErrno) -> Result {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = errno
            if code != EINTR { throw JournalErrno(code) }
        }
    }

    @Sendable static func openFile(_ path: String, _ flags: Int32, _ mode: UInt32) throws(JournalErrno) -> Int32 {
        try retryingInterrupts { open(path, flags, mode_t(mode)) }
    }

    @Sendable static func closeFile(_ fileDescriptor: Int32) throws(JournalErrno) {
        // Linux releases the descriptor even when close reports EINTR: never retry it.
        if close(fileDescriptor) != 0, errno != EINTR { throw JournalErrno.current }
    }

    @Sendable static func writeFile(_ fileDescriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws(JournalErrno) -> Int {
        try retryingInterrupts { write(fileDescriptor, bytes.baseAddress, bytes.count) }
    }

    @Sendable static func readFile(_ fileDescriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int64)
        throws(JournalErrno) -> Int
    {
        try retryingInterrupts { pread(fileDescriptor, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    @Sendable static func fileSize(_ fileDescriptor: Int32) throws(JournalErrno) -> Int64 {
        var status = stat()
        _ = try retryingInterrupts { fstat(fileDescriptor, &status) }
        return Int64(status.st_size)
    }

    @Sendable static func synchronizeData(_ fileDescriptor: Int32) throws(JournalErrno) {
        _ = try retryingInterrupts { fdatasync(fileDescriptor) }
    }

    @Sendable static func synchronize(_ fileDescriptor: Int32) throws(JournalErrno) {
        _ = try retryingInterrupts { fsync(fileDescriptor) }
    }

    @Sendable static func truncateFile(_ fileDescriptor: Int32, _ length: Int64) throws(JournalErrno) {
        _ = try retryingInterrupts { ftruncate(fileDescriptor, off_t(length)) }
    }

    @Sendable static func renameFile(_ from: String, _ to: String) throws(JournalErrno) {
        _ = try retryingInterrupts { rename(from, to) }
    }

    @Sendable static func removeFile(_ path: String) throws(JournalErrno) {
        _ = try retryingInterrupts { unlink(path) }
    }

    @Sendable static func makeDirectory(_ path: String, _ mode: UInt32) throws(JournalErrno) {
        _ = try retryingInterrupts { mkdir(path, mode_t(mode)) }
    }

    @Sendable static func lockExclusive(_ fileDescriptor: Int32) throws(JournalErrno) {
        _ = try retryingInterrupts { flock(fileDescriptor, LOCK_EX | LOCK_NB) }
    }

    @Sendable static func listDirectory(_ path: String) throws(JournalErrno) -> [String] {
        guard let directory = opendir(path) else { throw JournalErrno.current }
        defer { closedir(directory) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                if errno != 0 { throw JournalErrno.current }
                return names
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
    }
}
