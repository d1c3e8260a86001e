@testable import ATPJournal
import Dispatch
import Foundation
import Synchronization
import Testing

/// A fresh directory under the system's temporary directory, removed with everything in it by
/// `remove()` (tests call it in a `defer`).
struct TemporaryDirectory {
    let path: String

    init() throws {
        let template = FileManager.default.temporaryDirectory.path + "/atp-journal-test-XXXXXX"
        var bytes = Array(template.utf8CString)
        let created = bytes.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.flatMap { mkdtemp($0) }
        }
        guard created != nil else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        path = String(decoding: bytes.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A stream directory inside this one.
    func stream(_ index: Int = 0) -> String {
        JournalLayout.streamDirectory(dataDirectory: path, streamIndex: index)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Waits for completions from the flusher thread and remembers each result in arrival order.
final class CompletionRecorder: Sendable {
    private let results = Mutex<[(lsn: UInt64, result: Result<UInt64, JournalError>)]>([])
    private let arrived = DispatchSemaphore(value: 0)

    /// A completion recording `lsn` and its result.
    func completion(for lsn: UInt64) -> JournalCompletion {
        { result in
            self.results.withLock { $0.append((lsn, result)) }
            self.arrived.signal()
        }
    }

    /// Registers a completion for `lsn` on `stream`.
    func watch(_ stream: JournalStream, _ lsn: UInt64) {
        stream.whenDurable(lsn, completion(for: lsn))
    }

    /// Blocks until `count` more completions have arrived (10 s at most, then fails).
    func wait(for count: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        for _ in 0 ..< count {
            if arrived.wait(timeout: .now() + 10) == .timedOut {
                Issue.record("completion did not arrive within 10 s", sourceLocation: sourceLocation)
                return
            }
        }
    }

    /// True when no completion arrives within `milliseconds`.
    func nothingArrives(withinMilliseconds milliseconds: Int) -> Bool {
        if arrived.wait(timeout: .now() + .milliseconds(milliseconds)) == .success {
            arrived.signal()
            return false
        }
        return true
    }

    var all: [(lsn: UInt64, result: Result<UInt64, JournalError>)] { results.withLock { $0 } }
    var lsns: [UInt64] { all.map(\.lsn) }
    var succeeded: [UInt64] { all.compactMap { if case .success(let lsn) = $0.result { lsn } else { nil } } }
    var failures: [JournalError] { all.compactMap { if case .failure(let error) = $0.result { error } else { nil } } }
}

/// `JournalFileOperations.system` wrapped to count calls, inject failures and hold calls at a gate.
final class FileOperationsProbe: Sendable {
    struct State {
        var writes = 0
        var dataSyncs = 0
        var directorySyncs = 0
        /// The write with this 1-based number (counting from the arming) fails with `writeErrno`.
        var failingWrite: Int?
        var writeErrno: Int32 = ENOSPC
        /// When set, the failing write first writes this many bytes (a short write), and the next
        /// call fails.
        var shortWriteBytes: Int?
        var failingDataSync: Int?
        var dataSyncErrno: Int32 = EIO
        var holdDataSyncs = false
        var holdWrites = false
    }

    let state = Mutex(State())
    /// Signalled when a held call starts waiting.
    let heldCallEntered = DispatchSemaphore(value: 0)
    /// Signalled to let one held call go on.
    let heldCallRelease = DispatchSemaphore(value: 0)

    var writes: Int { state.withLock { $0.writes } }
    var dataSyncs: Int { state.withLock { $0.dataSyncs } }

    /// Makes the `n`th write from now fail with `errno` (after writing `shortBytes` bytes, if given).
    func failWrite(afterWrites n: Int, errno: Int32 = ENOSPC, shortBytes: Int? = nil) {
        state.withLock {
            $0.failingWrite = $0.writes + n + 1
            $0.writeErrno = errno
            $0.shortWriteBytes = shortBytes
        }
    }

    /// Makes the `n`th `fdatasync` from now fail with `errno`.
    func failDataSync(afterDataSyncs n: Int, errno: Int32 = EIO) {
        state.withLock {
            $0.failingDataSync = $0.dataSyncs + n + 1
            $0.dataSyncErrno = errno
        }
    }

    /// Blocks `fdatasync` (or `write`) calls until `release()`; `waitUntilHeld()` returns once one waits.
    func hold(dataSyncs: Bool = false, writes: Bool = false) {
        state.withLock {
            $0.holdDataSyncs = dataSyncs
            $0.holdWrites = writes
        }
    }

    func waitUntilHeld(sourceLocation: SourceLocation = #_sourceLocation) {
        if heldCallEntered.wait(timeout: .now() + 10) == .timedOut {
            Issue.record("no call reached the gate within 10 s", sourceLocation: sourceLocation)
        }
    }

    /// Stops holding and lets every held call go on.
    func release() {
        state.withLock {
            $0.holdDataSyncs = false
            $0.holdWrites = false
        }
        heldCallRelease.signal()
    }

    func operations() -> JournalFileOperations {
        var operations = JournalFileOperations.system
        let system = JournalFileOperations.system
        operations.write = { (descriptor, bytes) throws(JournalErrno) -> Int in
            let (hold, failure, shortBytes) = self.state.withLock { state -> (Bool, Int32?, Int?) in
                state.writes += 1
                let failing = state.failingWrite == state.writes
                if failing, let short = state.shortWriteBytes {
                    state.shortWriteBytes = nil
                    state.failingWrite = state.writes + 1
                    return (state.holdWrites, nil, short)
                }
                return (state.holdWrites, failing ? state.writeErrno : nil, nil)
            }
            if hold { self.waitAtGate() }
            if let failure { throw JournalErrno(failure) }
            if let shortBytes {
                return try system.write(descriptor, UnsafeRawBufferPointer(rebasing: bytes.prefix(shortBytes)))
            }
            return try system.write(descriptor, bytes)
        }
        operations.synchronizeData = { (descriptor) throws(JournalErrno) in
            let (hold, failure) = self.state.withLock { state -> (Bool, Int32?) in
                state.dataSyncs += 1
                return (state.holdDataSyncs, state.failingDataSync == state.dataSyncs ? state.dataSyncErrno : nil)
            }
            if hold { self.waitAtGate() }
            if let failure { throw JournalErrno(failure) }
            try system.synchronizeData(descriptor)
        }
        operations.synchronize = { (descriptor) throws(JournalErrno) in
            self.state.withLock { $0.directorySyncs += 1 }
            try system.synchronize(descriptor)
        }
        return operations
    }

    private func waitAtGate() {
        heldCallEntered.signal()
        heldCallRelease.wait()
        // Let the next held call (if any) through as well once released.
        if !state.withLock({ $0.holdDataSyncs || $0.holdWrites }) { heldCallRelease.signal() }
    }
}

/// Small helpers over streams and files.
enum Journal {
    /// A payload that names its LSN, so a read-back can check each record's bytes.
    static func payload(lsn: UInt64, bytes: Int = 24, salt: UInt8 = 0) -> [UInt8] {
        (0 ..< bytes).map { UInt8(truncatingIfNeeded: Int(lsn) &* 31 &+ $0 &+ Int(salt)) }
    }

    /// Appends `count` records with `payload(lsn:)`, expecting each to be accepted in order.
    @discardableResult
    static func append(_ stream: JournalStream, count: Int, payloadBytes: Int = 24, kind: UInt8 = 7,
                       sourceLocation: SourceLocation = #_sourceLocation) -> [UInt64] {
        var lsns: [UInt64] = []
        for _ in 0 ..< count {
            let lsn = stream.lastAppendedLSN + 1
            let result = stream.append(kind: kind, payload: payload(lsn: lsn, bytes: payloadBytes))
            #expect(result == .appended(lsn: lsn), sourceLocation: sourceLocation)
            lsns.append(lsn)
        }
        return lsns
    }

    /// Blocks until `lsn` is durable on `stream` (10 s at most).
    static func waitDurable(_ stream: JournalStream, _ lsn: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
        let recorder = CompletionRecorder()
        recorder.watch(stream, lsn)
        recorder.wait(for: 1, sourceLocation: sourceLocation)
    }

    /// Every record of the stream in `directory`, read back with a fresh reader.
    static func readAll(_ directory: String, streamIndex: Int = 0, from lsn: UInt64 = 0) throws -> [JournalRecord] {
        let cursor = try JournalReader.open(directory: directory, streamIndex: streamIndex).records(from: lsn)
        var records: [JournalRecord] = []
        while let record = try cursor.next() { records.append(record) }
        return records
    }

    /// Segment file paths in `directory`, oldest first.
    static func segmentPaths(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { JournalSegment.firstLSN(fileName: $0) != nil }
            .sorted()
            .map { directory + "/" + $0 }
    }

    static func fileBytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Copies a stream directory's files (not the lock) into a new stream directory.
    static func copyStream(from source: String, to target: String) throws {
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: source) where name != "LOCK" {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: target + "/" + name)
        }
    }
}
