#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPThreads
import Synchronization

/// What `JournalStream.append` did.
public enum JournalAppendResult: Sendable, Equatable {
    /// The record is in the stream's buffer with this LSN; `whenDurable(lsn)` says when it is durable.
    case appended(lsn: UInt64)
    /// `bufferedBytesMax` bytes wait for the flusher: nothing was appended. Retry once some become
    /// durable (e.g. from a `whenDurable` completion); the buffer drains at disk speed.
    case full
    /// Nothing was appended and nothing will be: the stream failed (the error says why), was closed,
    /// or the payload is larger than `recordPayloadBytesMax`.
    case refused(JournalError)

    /// The LSN when appended, else nil.
    public var lsn: UInt64? {
        if case .appended(let lsn) = self { return lsn }
        return nil
    }
}

/// One write-ahead journal stream: records with dense LSNs from 1, appended by one thread,
/// written, synced and acknowledged by the stream's own flusher thread (see docs/DURABILITY.md).
///
/// Threads: `append` and `close` belong to the stream's single appender (one thread at a time,
/// e.g. the ledger worker that owns the stream). `whenDurable`, the LSN properties, `segments`
/// and `deleteSegments` may be called from any thread.
///
/// Safety argument for `@unchecked Sendable`: the appender's position, next LSN and closed flag
/// are touched only by the appender, as stated above; everything else is in `StreamShared`.
public final class JournalStream: @unchecked Sendable {
    /// The stream's directory.
    public let directory: String
    /// The stream's index, written into every segment header.
    public let streamIndex: Int
    /// The limits and durability mode the stream runs with.
    public let configuration: JournalConfiguration
    /// What recovery found (and cut) when the stream opened.
    public let recovery: JournalRecoveryReport

    private let shared: StreamShared
    private let flusherThread: NamedThread
    private let lockFile: JournalFile
    // Appender-owned.
    private var appendPosition: UInt64 = 0
    private var nextLSN: UInt64
    private var isClosed = false

    /// Opens (creating it and its parents if needed) the stream directory, locks it against a
    /// second opener, recovers it (`JournalRecovery.recover`: verifies every record, cuts and
    /// reports a torn tail), syncs the recovered segment, and starts the flusher thread. Appending
    /// continues at `recovery.nextLSN`.
    ///
    /// Damage that would lose records (a damaged segment header, a bad record with valid records
    /// after it, damage in an earlier segment, a gap) throws `.damageWouldLoseRecords` and changes
    /// nothing, unless `damagePolicy` is `.acceptLoss`: then it is set aside and cut, and
    /// `recovery.acceptedLoss` says what was lost (docs/DURABILITY.md, "Damaged journals").
    ///
    /// Cost: reads every kept segment once; allocates the `bufferedBytesMax` buffer. Throws
    /// `.invalidConfiguration`, `.directoryLocked`, `.damageWouldLoseRecords`, `.wrongStream`,
    /// `.unsupportedFormatVersion` or a failed system call.
    public static func open(
        directory: String, streamIndex: Int, configuration: JournalConfiguration = JournalConfiguration(),
        damagePolicy: JournalDamagePolicy = .refuse, fileOperations: JournalFileOperations = .system
    ) throws(JournalError) -> JournalStream {
        try configuration.validate()
        guard streamIndex >= 0 && streamIndex <= Int(UInt32.max) else {
            throw .invalidConfiguration(key: "streamIndex", value: "\(streamIndex)",
                                        reason: "must be from 0 to \(UInt32.max)")
        }
        try DirectorySync.makeDirectories(directory, fileOperations: fileOperations)
        let lockFile = try lockDirectory(directory, fileOperations: fileOperations)
        do {
            let recovery = try JournalRecovery.recover(directory: directory, streamIndex: streamIndex,
                                                       damagePolicy: damagePolicy, fileOperations: fileOperations)
            return try JournalStream(directory: directory, streamIndex: streamIndex, configuration: configuration,
                                     fileOperations: fileOperations, recovery: recovery, lockFile: lockFile)
        } catch {
            lockFile.closeIgnoringErrors()
            throw error
        }
    }

    private init(
        directory: String, streamIndex: Int, configuration: JournalConfiguration,
        fileOperations: JournalFileOperations, recovery: JournalRecoveryReport, lockFile: JournalFile
    ) throws(JournalError) {
        var segments = recovery.segments
        let active: (file: JournalFile, bytes: Int64)
        if let last = segments.last {
            active = try SegmentFiles.reopen(last, directory: directory, fileOperations: fileOperations)
        } else {
            let created = try SegmentFiles.create(directory: directory, streamIndex: streamIndex,
                                                  firstLSN: recovery.nextLSN, synchronize: true,
                                                  fileOperations: fileOperations)
            segments.append(created.segment)
            active = (created.file, Int64(SegmentHeader.bytes))
        }
        let lastLSN = recovery.nextLSN - 1
        let shared = StreamShared(directory: directory, streamIndex: streamIndex, configuration: configuration,
                                  fileOperations: fileOperations, segments: segments, lastLSN: lastLSN)
        let flusher = Flusher(shared: shared, segmentFile: active.file, segmentBytes: active.bytes, lastLSN: lastLSN)
        do {
            flusherThread = try NamedThread(name: "atp-journal-\(streamIndex)") { flusher.run() }
        } catch {
            active.file.closeIgnoringErrors()
            throw .systemCallFailed(operation: "pthread_create", path: directory, errno: error.errno)
        }
        self.directory = directory
        self.streamIndex = streamIndex
        self.configuration = configuration
        self.recovery = recovery
        self.shared = shared
        self.lockFile = lockFile
        nextLSN = recovery.nextLSN
    }

    /// Closes the stream if its owner did not.
    deinit {
        if !isClosed { try? close() }
    }

    /// Takes the directory's `LOCK` file (`flock`), so a second stream cannot append to it.
    private static func lockDirectory(
        _ directory: String, fileOperations: JournalFileOperations
    ) throws(JournalError) -> JournalFile {
        let path = directory + "/" + JournalLayout.lockFileName
        let file = try JournalFile(fileOperations: fileOperations, path: path,
                                   flags: O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o644)
        do {
            try fileOperations.lockExclusive(file.descriptor)
        } catch {
            file.closeIgnoringErrors()
            if error.code == EWOULDBLOCK || error.code == EAGAIN { throw .directoryLocked(path: directory) }
            throw .systemCallFailed(operation: "flock", path: path, errno: error.code)
        }
        return file
    }

    // MARK: - Appending (the appender thread)

    /// Copies one record into the stream's buffer and returns its LSN; never waits for I/O.
    ///
    /// Cost: one CRC32C pass and one copy of the payload, a few atomic operations; no allocation.
    /// Returns `.full` when the buffer has no room (nothing appended; retry later) and `.refused`
    /// when the stream failed or was closed, or the payload exceeds `recordPayloadBytesMax`.
    public func append(kind: UInt8, payload: UnsafeRawBufferPointer) -> JournalAppendResult {
        if let failure = shared.currentFailure { return .refused(failure) }
        guard !isClosed else { return .refused(.closed) }
        guard payload.count <= configuration.recordPayloadBytesMax else {
            return .refused(.payloadTooLarge(payloadBytes: payload.count,
                                             payloadBytesMax: configuration.recordPayloadBytesMax))
        }
        let recordBytes = RecordHeader.bytes + payload.count
        guard recordBytes <= shared.ring.freeBytes(appendedEnd: appendPosition) else { return .full }
        let lsn = nextLSN
        let checksum = RecordHeader.checksum(lsn: lsn, kind: kind, payload: payload)
        withUnsafeTemporaryAllocation(byteCount: RecordHeader.bytes, alignment: 8) { header in
            RecordHeader.encode(payloadBytes: payload.count, checksum: checksum, lsn: lsn, kind: kind, into: header)
            shared.ring.copyIn(UnsafeRawBufferPointer(header), at: appendPosition)
        }
        shared.ring.copyIn(payload, at: appendPosition + UInt64(RecordHeader.bytes))
        appendPosition += UInt64(recordBytes)
        nextLSN += 1
        shared.lastAppendedLSN.store(lsn, ordering: .releasing)
        shared.ring.appendedEnd.store(appendPosition, ordering: .releasing)
        shared.parker.unpark()
        return .appended(lsn: lsn)
    }

    /// `append(kind:payload:)` for an array.
    public func append(kind: UInt8, payload: [UInt8]) -> JournalAppendResult {
        payload.withUnsafeBytes { append(kind: kind, payload: $0) }
    }

    /// Closes the stream: the flusher writes and syncs everything appended (in every mode), runs
    /// the remaining completions, and stops; the directory lock is released. Idempotent.
    ///
    /// Cost: one last write and `fdatasync`, a thread join. Throws the error the stream failed with,
    /// if it failed at any time (then not everything appended is durable: see `durableLSN`).
    public func close() throws(JournalError) {
        if !isClosed {
            isClosed = true
            shared.closeRequested.store(true, ordering: .sequentiallyConsistent)
            shared.parker.unpark()
            flusherThread.join()
            lockFile.closeIgnoringErrors()
        }
        if let failure = shared.currentFailure { throw failure }
    }

    // MARK: - Durability (any thread)

    /// Runs `completion` once `lsn` is durable (`.success(lsn)`), or with `.failure` once it cannot
    /// become durable (the stream failed). Completions run on the flusher thread, in LSN order,
    /// exactly once; after `close()` they run at once on the caller's thread.
    ///
    /// Cost: a mutex and an array append (no allocation in steady state beyond the closure's own).
    /// `lsn` must have been appended already (a precondition).
    public func whenDurable(_ lsn: UInt64, _ completion: @escaping JournalCompletion) {
        register(lsn, in: shared.completions, watching: shared.durableLSN, completion)
    }

    /// Runs `completion` once `lsn` is stable — survives a power loss: synced in `.sync` and
    /// `.interval`, written in `.none` (which syncs only at close) — or with `.failure` once it
    /// cannot become so. Completions run on the flusher thread, in LSN order, exactly once, after
    /// the durable completions of the same pass. In `.interval` that is up to one interval after
    /// the write.
    public func whenStable(_ lsn: UInt64, _ completion: @escaping JournalCompletion) {
        register(lsn, in: shared.stableCompletions, watching: shared.stableLSN, completion)
    }

    private func register(_ lsn: UInt64, in completions: borrowing Mutex<CompletionQueue>, watching reached: borrowing Atomic<UInt64>,
                          _ completion: @escaping JournalCompletion) {
        precondition(lsn <= shared.lastAppendedLSN.load(ordering: .acquiring),
                     "a completion for LSN \(lsn) before it was appended")
        let registered = completions.withLock { queue -> Bool in
            guard !queue.flusherStopped else { return false }
            queue.insert(lsn: lsn, completion)
            return true
        }
        guard registered else {
            let limit = reached.load(ordering: .sequentiallyConsistent)
            completion(lsn <= limit ? .success(lsn) : .failure(shared.currentFailure ?? .closed))
            return
        }
        if lsn <= reached.load(ordering: .sequentiallyConsistent)
            || shared.isFailed.load(ordering: .sequentiallyConsistent) {
            shared.completionsWaiting.store(true, ordering: .sequentiallyConsistent)
            shared.parker.unpark()
        }
    }

    /// The newest LSN whose completions may run: covered by an `fdatasync` in `.sync` mode,
    /// written to the OS in `.interval` and `.none`. Never beyond what succeeded.
    public var durableLSN: UInt64 { shared.durableLSN.load(ordering: .acquiring) }
    /// The newest LSN whose stable completions may run (see `whenStable`).
    public var stableLSN: UInt64 { shared.stableLSN.load(ordering: .acquiring) }
    /// The newest LSN handed to the OS (`write(2)` returned): survives a process crash.
    public var writtenLSN: UInt64 { shared.writtenLSN.load(ordering: .acquiring) }
    /// The newest LSN covered by an `fdatasync(2)`: survives power loss.
    public var syncedLSN: UInt64 { shared.syncedLSN.load(ordering: .acquiring) }
    /// The newest LSN appended (0 before the first record ever).
    public var lastAppendedLSN: UInt64 { shared.lastAppendedLSN.load(ordering: .acquiring) }
    /// The error the stream failed with, or nil while it is healthy.
    public var failure: JournalError? { shared.currentFailure }
    /// The segment files, oldest first; the last is the active one.
    public var segments: [JournalSegment] { shared.segments.withLock { $0 } }

    // MARK: - Retention (any thread)

    /// Deletes the segments all of whose records are <= `lsn` (those a snapshot covers), oldest
    /// first, never the active segment, then syncs the directory. Returns what it deleted.
    ///
    /// Cost: one `unlink` per segment and one directory `fsync`, on the caller's thread; rotation
    /// waits meanwhile, appends do not. Throws a failed `unlink` or `fsync` (the stream itself stays
    /// healthy; the segments not deleted stay listed).
    @discardableResult
    public func deleteSegments(coveredThrough lsn: UInt64) throws(JournalError) -> [JournalSegment] {
        let fileOperations = shared.fileOperations
        let directory = directory
        return try shared.segments.withLock { (segments) throws(JournalError) -> [JournalSegment] in
            var deleted: [JournalSegment] = []
            while segments.count >= 2, segments[1].firstLSN - 1 <= lsn {
                let segment = segments[0]
                do throws(JournalErrno) {
                    try fileOperations.removeFile(segment.path)
                } catch where error.code == ENOENT {
                    // Already gone: the goal is reached.
                } catch {
                    throw .systemCallFailed(operation: "unlink", path: segment.path, errno: error.code)
                }
                segments.removeFirst()
                deleted.append(segment)
            }
            if !deleted.isEmpty { try DirectorySync.synchronize(directory, fileOperations: fileOperations) }
            return deleted
        }
    }
}
