import ATPThreads
import Synchronization

/// The state a stream's appender side (`JournalStream`) and its flusher thread share. Every field
/// is immutable, atomic or behind a mutex.
final class StreamShared: Sendable {
    let directory: String
    let streamIndex: Int
    let configuration: JournalConfiguration
    let fileOperations: JournalFileOperations
    let ring: RecordRing
    let parker = Parker()

    /// The newest LSN appended (published by the appender).
    let lastAppendedLSN: Atomic<UInt64>
    /// The newest LSN handed to the OS with `write(2)` (published by the flusher).
    let writtenLSN: Atomic<UInt64>
    /// The newest LSN covered by an `fdatasync(2)` (published by the flusher).
    let syncedLSN: Atomic<UInt64>
    /// The newest LSN whose completions may run: `syncedLSN` in `.sync` mode, `writtenLSN` otherwise.
    let durableLSN: Atomic<UInt64>
    /// The newest LSN whose stable completions may run: `syncedLSN` in `.sync` and `.interval`,
    /// `writtenLSN` in `.none` (which syncs only at close).
    let stableLSN: Atomic<UInt64>

    /// Set once, by the flusher, when a write or sync fails; `failure` holds the error.
    let isFailed = Atomic<Bool>(false)
    let failure = Mutex<JournalError?>(nil)
    /// Set by `close()`: the flusher writes and syncs everything, then stops.
    let closeRequested = Atomic<Bool>(false)
    /// Set when a completion was registered for an LSN that is already durable (or after a failure).
    let completionsWaiting = Atomic<Bool>(false)
    let completions = Mutex(CompletionQueue())
    /// Completions waiting for `stableLSN` (`JournalStream.whenStable`).
    let stableCompletions = Mutex(CompletionQueue())
    /// The stream's segments, oldest first; the last one is the active one.
    let segments: Mutex<[JournalSegment]>

    init(directory: String, streamIndex: Int, configuration: JournalConfiguration,
         fileOperations: JournalFileOperations, segments: [JournalSegment], lastLSN: UInt64) {
        self.directory = directory
        self.streamIndex = streamIndex
        self.configuration = configuration
        self.fileOperations = fileOperations
        self.segments = Mutex(segments)
        ring = RecordRing(capacityBytes: configuration.bufferedBytesMax)
        lastAppendedLSN = Atomic(lastLSN)
        writtenLSN = Atomic(lastLSN)
        syncedLSN = Atomic(lastLSN)
        durableLSN = Atomic(lastLSN)
        stableLSN = Atomic(lastLSN)
    }

    /// The error the stream failed with, if it did.
    var currentFailure: JournalError? {
        guard isFailed.load(ordering: .acquiring) else { return nil }
        return failure.withLock { $0 }
    }
}
