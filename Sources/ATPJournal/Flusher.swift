#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPThreads
import Synchronization

/// The loop of a stream's flusher thread: writes what the appender published to the active
/// segment (rotating at record boundaries), syncs it as the durability mode says, publishes
/// `writtenLSN` / `syncedLSN` / `durableLSN`, and runs the completions that became ready, in LSN order.
///
/// Group commit falls out of the loop: everything appended while one `write` + `fdatasync` runs is
/// written and synced by the next pass, with one `fdatasync`.
///
/// Safety argument for `@unchecked Sendable`: after `JournalStream.open` hands it to the thread,
/// only the flusher thread touches its mutable fields; `StreamShared` is the only state it shares.
final class Flusher: @unchecked Sendable {
    private let shared: StreamShared
    private let durability: JournalDurability
    /// The active segment; nil once closed (so it is never closed twice).
    private var segmentFile: JournalFile?
    /// The active segment's size in bytes, header included, counting every record written to it.
    private var segmentBytes: Int64
    /// Ring position up to which bytes were handed to the OS.
    private var writtenEnd: UInt64 = 0
    private var writtenLSN: UInt64
    private var syncedLSN: UInt64
    private var lastSyncNanoseconds: UInt64
    private var failure: JournalError?
    /// `.none` mode: segments closed at rotation without a sync, synced at close.
    private var unsyncedClosedSegmentPaths: [String] = []
    /// `.none` mode: a segment was created without syncing the directory.
    private var directoryNeedsSync = false
    private let headerScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: RecordHeader.bytes, alignment: 8)
    /// Completions taken out of the queue for one delivery (capacity reused).
    private var ready: [CompletionQueue.Entry] = []

    /// Takes over the open active segment `segmentFile` of `segmentBytes` bytes, whose records up to
    /// `lastLSN` are on stable storage.
    init(shared: StreamShared, segmentFile: JournalFile, segmentBytes: Int64, lastLSN: UInt64) {
        self.shared = shared
        durability = shared.configuration.durability
        self.segmentFile = segmentFile
        self.segmentBytes = segmentBytes
        writtenLSN = lastLSN
        syncedLSN = lastLSN
        lastSyncNanoseconds = monotonicNanoseconds()
    }

    deinit {
        headerScratch.deallocate()
    }

    /// The thread's body: returns after `close()` was requested and everything was written, synced
    /// and completed (or failed).
    func run() {
        while true {
            let closing = shared.closeRequested.load(ordering: .acquiring)
            if failure == nil {
                do throws(JournalError) { try writePublished() } catch { fail(error) }
            }
            // `.interval` and `.none` acknowledge here, without waiting for a sync that may be due.
            deliverCompletions(final: false)
            if failure == nil {
                do throws(JournalError) { try syncIfDue(closing: closing) } catch { fail(error) }
            }
            if closing {
                finishClose()
                return
            }
            deliverCompletions(final: false)
            shared.parker.park(timeoutNanoseconds: parkTimeoutNanoseconds()) { hasWork() }
        }
    }

    // MARK: - Writing

    /// Writes everything the appender published so far and publishes the LSNs.
    private func writePublished() throws(JournalError) {
        let end = shared.ring.appendedEnd.load(ordering: .acquiring)
        if end > writtenEnd { try writeRecords(upTo: end) }
        publishLSNs()
    }

    /// Syncs the active segment if records wait for it and the mode says now; publishes the LSNs.
    private func syncIfDue(closing: Bool) throws(JournalError) {
        guard writtenLSN > syncedLSN && isSyncDue(closing: closing) else { return }
        try syncActiveSegment()
        publishLSNs()
    }

    /// Writes ring bytes `writtenEnd ..< end` (whole records), rotating segments between records.
    private func writeRecords(upTo end: UInt64) throws(JournalError) {
        var runStart = writtenEnd
        var position = writtenEnd
        var runLastLSN = writtenLSN
        while position < end {
            shared.ring.copyOut(at: position, into: headerScratch)
            let header = RecordHeader.decode(UnsafeRawBufferPointer(headerScratch))
            precondition(header.lsn == runLastLSN + 1, "ring holds LSN \(header.lsn) after \(runLastLSN)")
            let recordBytes = Int64(RecordHeader.bytes + header.payloadBytes)
            precondition(position + UInt64(recordBytes) <= end, "record straddles the published end")
            let segmentHasRecords = segmentBytes > Int64(SegmentHeader.bytes)
            if segmentHasRecords && segmentBytes + recordBytes > Int64(shared.configuration.segmentBytesMax) {
                try writeRun(from: runStart, to: position, lastLSN: runLastLSN)
                try rotate(firstLSN: header.lsn)
                runStart = position
            }
            segmentBytes += recordBytes
            runLastLSN = header.lsn
            position += UInt64(recordBytes)
        }
        try writeRun(from: runStart, to: end, lastLSN: runLastLSN)
    }

    /// Hands ring bytes `start ..< end` to the OS and frees them in the ring.
    private func writeRun(from start: UInt64, to end: UInt64, lastLSN: UInt64) throws(JournalError) {
        guard start < end else { return }
        guard let file = segmentFile else { throw JournalError.closed }
        try shared.ring.forEachPiece(from: start, to: end) { (piece) throws(JournalError) in try file.writeAll(piece) }
        writtenEnd = end
        writtenLSN = lastLSN
        shared.ring.releasedEnd.store(end, ordering: .releasing)
    }

    private func isSyncDue(closing: Bool) -> Bool {
        switch durability {
        case .sync:
            return true
        case .interval(let milliseconds):
            return closing || monotonicNanoseconds() &- lastSyncNanoseconds >= UInt64(milliseconds) * 1_000_000
        case .none:
            return closing
        }
    }

    private func syncActiveSegment() throws(JournalError) {
        guard let file = segmentFile else { throw JournalError.closed }
        try file.synchronizeData()
        syncedLSN = writtenLSN
        lastSyncNanoseconds = monotonicNanoseconds()
    }

    /// Closes the active segment (synced unless the mode is `.none`) and starts the next one at
    /// `firstLSN`, whose file and directory entry are synced before any record goes in (unless `.none`).
    private func rotate(firstLSN: UInt64) throws(JournalError) {
        guard let file = segmentFile else { throw JournalError.closed }
        if durability == .none {
            unsyncedClosedSegmentPaths.append(file.path)
        } else {
            try syncActiveSegment()
        }
        segmentFile = nil
        try file.close()
        let synchronize = durability != .none
        let created = try SegmentFiles.create(directory: shared.directory, streamIndex: shared.streamIndex,
                                              firstLSN: firstLSN, synchronize: synchronize,
                                              fileOperations: shared.fileOperations)
        if !synchronize { directoryNeedsSync = true }
        segmentFile = created.file
        segmentBytes = Int64(SegmentHeader.bytes)
        shared.segments.withLock { $0.append(created.segment) }
    }

    private func publishLSNs() {
        shared.writtenLSN.store(writtenLSN, ordering: .releasing)
        shared.syncedLSN.store(syncedLSN, ordering: .releasing)
        let durable = durability == .sync ? syncedLSN : writtenLSN
        precondition(durable >= shared.durableLSN.load(ordering: .relaxed), "durableLSN went backwards")
        shared.durableLSN.store(durable, ordering: .sequentiallyConsistent)
        let stable = durability == .none ? writtenLSN : syncedLSN
        precondition(stable >= shared.stableLSN.load(ordering: .relaxed), "stableLSN went backwards")
        shared.stableLSN.store(stable, ordering: .sequentiallyConsistent)
    }

    /// Enters the failed state: publishes only what succeeded, then refuses everything else.
    private func fail(_ error: JournalError) {
        guard failure == nil else { return }
        failure = error
        publishLSNs()
        shared.failure.withLock { $0 = error }
        shared.isFailed.store(true, ordering: .sequentiallyConsistent)
    }

    // MARK: - Closing

    /// After the final flush: sync what `.none` left unsynced, close the segment, answer every
    /// completion.
    private func finishClose() {
        if failure == nil {
            do throws(JournalError) { try syncLeftovers() } catch { fail(error) }
        }
        if let file = segmentFile {
            segmentFile = nil
            do throws(JournalError) { try file.close() } catch { fail(error) }
        }
        deliverCompletions(final: true)
    }

    private func syncLeftovers() throws(JournalError) {
        for path in unsyncedClosedSegmentPaths {
            let file: JournalFile
            do {
                file = try JournalFile(fileOperations: shared.fileOperations, path: path, flags: O_RDONLY | O_CLOEXEC)
            } catch .systemCallFailed(_, _, ENOENT) {
                continue  // deleted meanwhile (covered by a snapshot): nothing to sync
            }
            defer { file.closeIgnoringErrors() }
            try file.synchronizeData()
        }
        unsyncedClosedSegmentPaths.removeAll()
        if directoryNeedsSync {
            try DirectorySync.synchronize(shared.directory, fileOperations: shared.fileOperations)
            directoryNeedsSync = false
        }
    }

    // MARK: - Completions and parking

    /// Runs the completions whose LSN is durable, then those whose LSN is stable (all of them after
    /// a failure or at close), each queue in LSN order.
    private func deliverCompletions(final: Bool) {
        shared.completionsWaiting.store(false, ordering: .sequentiallyConsistent)
        deliver(shared.completions, through: shared.durableLSN.load(ordering: .sequentiallyConsistent), final: final)
        deliver(shared.stableCompletions, through: shared.stableLSN.load(ordering: .sequentiallyConsistent), final: final)
    }

    private func deliver(_ completions: borrowing Mutex<CompletionQueue>, through limit: UInt64, final: Bool) {
        let takeAll = final || failure != nil
        var taken = ready
        ready = []
        completions.withLock { queue in
            if final { queue.flusherStopped = true }
            if takeAll { queue.takeAll(into: &taken) } else { queue.takeReady(through: limit, into: &taken) }
        }
        let refusal = failure ?? .closed
        for entry in taken {
            entry.completion(entry.lsn <= limit ? .success(entry.lsn) : .failure(refusal))
        }
        taken.removeAll(keepingCapacity: true)
        ready = taken
    }

    private func hasWork() -> Bool {
        (failure == nil && shared.ring.appendedEnd.load(ordering: .acquiring) > writtenEnd)
            || shared.completionsWaiting.load(ordering: .sequentiallyConsistent)
            || shared.closeRequested.load(ordering: .sequentiallyConsistent)
    }

    /// Until the next interval sync is due when written records wait for one, else a second (idle).
    private func parkTimeoutNanoseconds() -> UInt64 {
        let idleNanoseconds: UInt64 = 1_000_000_000
        guard failure == nil, writtenLSN > syncedLSN, case .interval(let milliseconds) = durability else {
            return idleNanoseconds
        }
        let due = lastSyncNanoseconds &+ UInt64(milliseconds) * 1_000_000
        let now = monotonicNanoseconds()
        return due > now ? min(due - now, idleNanoseconds) : 0
    }
}
