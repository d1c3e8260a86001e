@testable import ATPJournal
import Foundation
import Testing

/// A failed write or sync fails the stream: pending completions fail, later appends are refused
/// with the same error, nothing past the last good sync is reported durable, and a reopen
/// recovers what is on disk.
@Suite struct WriteFailureTests {
    @Test func enospcOnAWriteFailsPendingCompletionsAndRefusesLaterAppends() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            fileOperations: probe.operations())
        Journal.append(stream, count: 5)
        Journal.waitDurable(stream, 5)

        probe.failWrite(afterWrites: 0, errno: ENOSPC)
        probe.hold(writes: true)  // the failing write waits until all three records are appended
        let recorder = CompletionRecorder()
        for lsn in Journal.append(stream, count: 3) { recorder.watch(stream, lsn) }
        probe.waitUntilHeld()
        probe.release()
        recorder.wait(for: 3)
        let segmentPath = stream.segments[0].path
        let expected = JournalError.systemCallFailed(operation: "write", path: segmentPath, errno: ENOSPC)
        #expect(recorder.lsns == [6, 7, 8])
        #expect(recorder.failures == [expected, expected, expected])
        #expect(stream.failure == expected)
        #expect(stream.durableLSN == 5, "nothing past the last good sync is durable")
        #expect(stream.append(kind: 1, payload: [1]) == .refused(expected))
        #expect(expected.description.contains("ENOSPC"))

        recorder.watch(stream, 5)  // durable before the failure: still a success
        recorder.watch(stream, 7)
        recorder.wait(for: 2)
        #expect(recorder.all.suffix(2).map(\.lsn) == [5, 7])
        #expect(recorder.succeeded == [5])
        #expect(throws: expected) { try stream.close() }

        let reopened = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
        #expect(reopened.recovery.tailRepair == nil)
        #expect(reopened.recovery.nextLSN == 6)
        #expect(reopened.append(kind: 1, payload: [1]) == .appended(lsn: 6))
        try reopened.close()
    }

    @Test func aShortWriteThenEnospcLeavesATornTailThatRecoveryCuts() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            fileOperations: probe.operations())
        Journal.append(stream, count: 2)
        Journal.waitDurable(stream, 2)
        probe.failWrite(afterWrites: 0, errno: ENOSPC, shortBytes: 20)
        let recorder = CompletionRecorder()
        recorder.watch(stream, Journal.append(stream, count: 1)[0])
        recorder.wait(for: 1)
        #expect(recorder.failures.first?.errno == ENOSPC)
        #expect(stream.durableLSN == 2)
        #expect(throws: JournalError.self) { try stream.close() }

        let reopened = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
        let repair = try #require(reopened.recovery.tailRepair)
        #expect(repair.bytesCut == 20)
        #expect(repair.damage == .truncatedPayload(payloadBytes: 24, bytesPresent: 3))
        #expect(reopened.recovery.nextLSN == 3)
        try reopened.close()
    }

    @Test func aFailedFdatasyncReportsNothingDurableBeyondTheLastGoodSync() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            fileOperations: probe.operations())
        Journal.append(stream, count: 4)
        Journal.waitDurable(stream, 4)
        probe.failDataSync(afterDataSyncs: 0, errno: EIO)
        probe.hold(dataSyncs: true)  // the failing sync waits until all four records are appended
        let recorder = CompletionRecorder()
        for lsn in Journal.append(stream, count: 4) { recorder.watch(stream, lsn) }
        probe.waitUntilHeld()
        probe.release()
        recorder.wait(for: 4)
        let expected = JournalError.systemCallFailed(operation: "fdatasync", path: stream.segments[0].path, errno: EIO)
        #expect(recorder.failures == Array(repeating: expected, count: 4))
        #expect(stream.durableLSN == 4)
        #expect(stream.syncedLSN == 4)
        #expect(stream.writtenLSN >= 5, "written to the OS, but never acknowledged")
        #expect(stream.append(kind: 1, payload: [1]) == .refused(expected))
        #expect(throws: expected) { try stream.close() }
    }

    @Test func aFailedPeriodicSyncInIntervalModeFailsTheStream() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            configuration: JournalConfiguration(durability: .interval(milliseconds: 5)),
                                            fileOperations: probe.operations())
        probe.failDataSync(afterDataSyncs: 0, errno: EIO)
        let recorder = CompletionRecorder()
        recorder.watch(stream, Journal.append(stream, count: 1)[0])
        recorder.wait(for: 1)
        #expect(recorder.succeeded == [1], "acknowledged once written, before the sync")
        let deadline = Date().addingTimeInterval(5)
        while stream.failure == nil && Date() < deadline { usleep(1000) }
        #expect(stream.failure?.errno == EIO)
        #expect(stream.syncedLSN == 0)
        #expect(stream.append(kind: 1, payload: [1]) == .refused(try #require(stream.failure)))
        #expect(throws: JournalError.self) { try stream.close() }
    }

    @Test func aFailedRotationFailsTheStreamAndKeepsEarlierRecords() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        let probe = FileOperationsProbe()
        var configuration = JournalConfiguration()
        configuration.segmentBytesMax = 200
        let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0,
                                            configuration: configuration, fileOperations: probe.operations())
        Journal.append(stream, count: 2, payloadBytes: 40)
        Journal.waitDurable(stream, 2)
        probe.failWrite(afterWrites: 0, errno: EIO)  // the new segment's header
        let recorder = CompletionRecorder()
        recorder.watch(stream, Journal.append(stream, count: 1, payloadBytes: 40)[0])
        recorder.wait(for: 1)
        #expect(recorder.failures.first?.errno == EIO)
        #expect(stream.durableLSN == 2)
        #expect(throws: JournalError.self) { try stream.close() }

        // The header-less new segment is set aside; appending resumes at LSN 3.
        let reopened = try JournalStream.open(directory: temporary.stream(), streamIndex: 0, configuration: configuration)
        #expect(reopened.recovery.tailRepair?.damage == .truncatedSegmentHeader(bytesPresent: 0))
        #expect(reopened.recovery.nextLSN == 3)
        #expect(reopened.append(kind: 1, payload: [1]) == .appended(lsn: 3))
        try reopened.close()
        #expect(try Journal.readAll(temporary.stream()).map(\.lsn) == [1, 2, 3])
    }

    /// A real EFBIG: the file size limit (`RLIMIT_FSIZE`, SIGXFSZ ignored) in a child process, so the
    /// limit cannot touch other tests.
    @Test func theFileSizeLimitFailsTheStreamWithEFBIG() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            exit(FileSizeLimitScenario.run())
        }
        if let result, result.exitStatus != .exitCode(EXIT_SUCCESS) {
            Issue.record("child said: \(String(decoding: result.standardErrorContent, as: UTF8.self))")
        }
    }
}

/// The body of the RLIMIT_FSIZE exit test: returns 0 when everything held, else prints why and returns 1.
enum FileSizeLimitScenario {
    static let limitBytes: rlim_t = 64 << 10

    static func run() -> Int32 {
        func fail(_ message: String) -> Int32 {
            FileHandle.standardError.write(Data("FileSizeLimitScenario: \(message)\n".utf8))
            return 1
        }
        signal(SIGXFSZ, SIG_IGN)
        var limit = rlimit()
        getrlimit(RLIMIT_FSIZE_RESOURCE, &limit)
        let original = limit
        limit.rlim_cur = limitBytes
        guard setrlimit(RLIMIT_FSIZE_RESOURCE, &limit) == 0 else { return fail("setrlimit: errno \(errno)") }
        guard let temporary = try? TemporaryDirectory() else { return fail("no temporary directory") }
        defer { temporary.remove() }
        do {
            let stream = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
            let recorder = CompletionRecorder()
            var lastLSN: UInt64 = 0
            // 1,017-byte records: the limit falls inside one.
            while stream.failure == nil && lastLSN < 200 {
                guard case .appended(let lsn) = stream.append(kind: 1, payload: [UInt8](repeating: 5, count: 1000)) else {
                    break
                }
                lastLSN = lsn
                recorder.watch(stream, lsn)
                recorder.wait(for: 1)
            }
            guard let failure = stream.failure else { return fail("no failure at the file size limit") }
            guard failure.errno == EFBIG else { return fail("expected EFBIG, got \(failure)") }
            guard recorder.failures.count == 1 else { return fail("expected one failed completion: \(recorder.all)") }
            let durable = stream.durableLSN
            _ = try? stream.close()

            limit = original
            setrlimit(RLIMIT_FSIZE_RESOURCE, &limit)
            let reopened = try JournalStream.open(directory: temporary.stream(), streamIndex: 0)
            guard let repair = reopened.recovery.tailRepair else { return fail("no torn tail to cut") }
            guard reopened.recovery.nextLSN == durable + 1 else {
                return fail("next LSN \(reopened.recovery.nextLSN), durable was \(durable)")
            }
            guard repair.offset + repair.bytesCut == Int64(limitBytes) else { return fail("cut \(repair)") }
            try reopened.close()
            return 0
        } catch {
            return fail("\(error)")
        }
    }
}

#if canImport(Glibc)
let RLIMIT_FSIZE_RESOURCE = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
#else
let RLIMIT_FSIZE_RESOURCE = RLIMIT_FSIZE
#endif
