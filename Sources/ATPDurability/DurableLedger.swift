#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPJournal
import ATPLedger
import ATPSnapshot
import Dispatch
import Synchronization

/// A ledger engine made durable: one journal stream per worker, LMDB snapshots, recovery at start
/// (docs/DURABILITY.md, "The durable engine").
///
/// `open` locks the data directory, restores the newest valid snapshot, replays each worker's
/// journal from the snapshot's mark for it, repairs reservations a crash left half-done, expires
/// the reservations whose ttl ran out meanwhile (on every core), and only then returns the engine,
/// which from then on records every input before it answers.
public final class DurableLedger: Sendable {
    /// The engine, recovered and recording.
    public let engine: Engine
    /// What recovery did.
    public let recovery: RecoveryReport
    /// The settings in force.
    public let configuration: DurabilityConfiguration
    /// The snapshot store (`<data>/snapshots`).
    public let store: SnapshotStore
    private let streams: [JournalStream]
    private let lock: DataDirectoryLock
    private let log: @Sendable (String) -> Void
    private let snapshotting = Mutex<Void>(())
    private let statisticsState: Mutex<SnapshotStatistics>
    private let schedule = Mutex<DispatchSemaphore?>(nil)
    private let isClosed = Mutex<Bool>(false)

    /// Recovers the ledger in `durability.dataDirectory` (created when missing) and returns it
    /// recording. `log` gets one line per notable step (snapshot skipped, tail cut, repairs).
    /// With `hosts` the engine's cores run on them (thread-per-core, `Engine(configuration:hosts:)`).
    ///
    /// Cost: reads the newest valid snapshot and every journal record after it. Throws
    /// `DurabilityError` (locked directory, worker count mismatch, unreadable journal, a snapshot
    /// that does not fit the configuration, a record that cannot be replayed).
    public static func open(configuration ledger: LedgerConfiguration, durability: DurabilityConfiguration,
                            clock: EngineClock = .system(), hosts: [any CoreHost]? = nil,
                            log: @escaping @Sendable (String) -> Void = { _ in }) throws(DurabilityError) -> DurableLedger {
        let started = monotonicMilliseconds()
        let lock = try DataDirectoryLock(directory: durability.dataDirectory)
        let workerCount = ledger.workerCount
        let extraStream = JournalLayout.streamDirectory(dataDirectory: durability.dataDirectory, streamIndex: workerCount)
        if access(extraStream, F_OK) == 0 {
            var written = workerCount + 1
            while access(JournalLayout.streamDirectory(dataDirectory: durability.dataDirectory, streamIndex: written),
                         F_OK) == 0 { written += 1 }
            throw .workerCountMismatch(dataDirectory: written, configuration: workerCount)
        }
        var storeConfiguration = SnapshotStoreConfiguration()
        storeConfiguration.keep = durability.snapshotsKept
        let store = SnapshotStore(directory: durability.dataDirectory, configuration: storeConfiguration)
        var report = RecoveryReport()
        let loaded: (LedgerImage, SnapshotInfo)?
        do {
            loaded = try store.loadNewestValid { line in
                report.snapshotsSkipped.append(line)
                log(line)
            }
        } catch {
            throw .snapshot(error)
        }
        if let (image, _) = loaded, image.workerMarks.count != workerCount {
            throw .workerCountMismatch(dataDirectory: image.workerMarks.count, configuration: workerCount)
        } else if let (_, info) = loaded {
            report.snapshotID = info.id
            report.cellsRestored = info.cellCount
        }
        let streams = try openStreams(durability, workerCount: workerCount, report: &report, log: log)
        let marks = loaded?.0.workerMarks ?? Array(repeating: 0, count: workerCount)
        for (index, stream) in streams.enumerated() where stream.recovery.nextLSN - 1 < marks[index] {
            for stream in streams { try? stream.close() }
            throw .journalBehindSnapshot(streamIndex: index, lastLSN: stream.recovery.nextLSN - 1, snapshotMark: marks[index])
        }
        // The directory keeps the SKU placement it was written with (docs/DURABILITY.md).
        var ledger = ledger
        do {
            let placement = try PlacementFile.settle(
                directory: durability.dataDirectory, configured: ledger.placement,
                snapshot: loaded.map { SKUPlacement(scheme: $0.0.skuPlacement, shardCount: $0.0.shardCount) },
                hasRecords: streams.contains { $0.recovery.nextLSN > 1 })
            if placement.scheme != ledger.skuPlacement { log("SKUs are placed \(placement) (written so)") }
            ledger.skuPlacement = placement.scheme
        } catch {
            for stream in streams { try? stream.close() }
            throw error
        }
        let engine = try makeEngine(ledger, loaded?.0, clock: clock, hosts: hosts)
        report.recordsReplayed = try replay(engine, durability, marks: marks)
        let watermarks = loaded.map { image in
            [NameKind.sku, .location, .channel, .source].map { image.0.names($0).count }
        } ?? [0, 0, 0, 0]
        engine.attachInputLogs(streams.map { JournalInputLog(stream: $0) }, nameWatermarks: watermarks)
        report.resolution = engine.resolveAfterReplay()
        if !report.resolution.isEmpty { log("recovery repaired reservations: \(report.resolution)") }
        if let failure = engine.waitUntilDurable() {
            engine.shutdown()
            throw .notDurable(failure)
        }
        engine.resumeExpiries()
        // Reservations that expired while the engine was down expire now; wait until every core
        // applied that, parts included (they hear of it once the home's record is stable), so the
        // first request after the start sees none of their units still held.
        engine.waitUntilIdle()
        report.durationMilliseconds = monotonicMilliseconds() - started
        var statistics = SnapshotStatistics()
        if let (_, info) = loaded {
            statistics.lastID = info.id
            statistics.lastCutWallClockMilliseconds = info.cutWallClockMilliseconds
            statistics.lastSizeBytes = info.dataBytes
        }
        return DurableLedger(engine: engine, recovery: report, configuration: durability, store: store,
                             streams: streams, lock: lock, log: log, statistics: statistics)
    }

    private init(engine: Engine, recovery: RecoveryReport, configuration: DurabilityConfiguration, store: SnapshotStore,
                 streams: [JournalStream], lock: DataDirectoryLock, log: @escaping @Sendable (String) -> Void,
                 statistics: SnapshotStatistics) {
        self.engine = engine
        self.recovery = recovery
        self.configuration = configuration
        self.store = store
        self.streams = streams
        self.lock = lock
        self.log = log
        statisticsState = Mutex(statistics)
    }

    private static func openStreams(_ durability: DurabilityConfiguration, workerCount: Int,
                                     report: inout RecoveryReport,
                                     log: (String) -> Void) throws(DurabilityError) -> [JournalStream] {
        var streams: [JournalStream] = []
        var damaged: [JournalLossReport] = []
        for index in 0..<workerCount {
            let directory = JournalLayout.streamDirectory(dataDirectory: durability.dataDirectory, streamIndex: index)
            do {
                let stream = try JournalStream.open(directory: directory, streamIndex: index,
                                                    configuration: durability.journal,
                                                    damagePolicy: durability.journalDamagePolicy,
                                                    fileOperations: durability.journalFileOperations)
                if let repair = stream.recovery.tailRepair {
                    report.tailRepairs.append((index, repair))
                    log(RecoveryLog.tailRepaired(streamIndex: index, repair))
                }
                if let loss = stream.recovery.acceptedLoss {
                    report.acceptedJournalLosses.append((index, loss))
                    log(RecoveryLog.lossAccepted(loss))
                }
                streams.append(stream)
            } catch .damageWouldLoseRecords(let loss) {
                damaged.append(loss)  // go on: the refusal names the damage of every stream at once
            } catch {
                for stream in streams { try? stream.close() }
                throw .journal(streamIndex: index, error)
            }
        }
        if !damaged.isEmpty {
            for stream in streams { try? stream.close() }
            throw .journalDamaged(damaged)
        }
        return streams
    }

    private static func makeEngine(_ ledger: LedgerConfiguration, _ image: LedgerImage?,
                                   clock: EngineClock, hosts: [any CoreHost]?) throws(DurabilityError) -> Engine {
        if let image {
            do {
                return try Engine(restoring: image, configuration: ledger, clock: clock, expiriesSuspended: true,
                                  hosts: hosts)
            } catch {
                throw .snapshotDoesNotFit(error)
            }
        }
        do {
            return try Engine(configuration: ledger, clock: clock, expiriesSuspended: true, hosts: hosts)
        } catch {
            throw .engine(error)
        }
    }

    private static func replay(_ engine: Engine, _ durability: DurabilityConfiguration,
                               marks: [UInt64]) throws(DurabilityError) -> [Int] {
        var sources: [() throws -> RecordedInput?] = []
        for (index, mark) in marks.enumerated() {
            let directory = JournalLayout.streamDirectory(dataDirectory: durability.dataDirectory, streamIndex: index)
            do {
                let cursor = try JournalReader.open(directory: directory, streamIndex: index,
                                                    fileOperations: durability.journalFileOperations)
                    .records(from: mark + 1)
                sources.append {
                    guard let record = try cursor.next() else { return nil }
                    return RecordedInput(lsn: record.lsn, kind: record.kind, payload: record.payload)
                }
            } catch {
                engine.shutdown()
                throw .journal(streamIndex: index, error)
            }
        }
        do {
            return try engine.replayInputs(sources)
        } catch {
            engine.shutdown()
            throw .replay(error)
        }
    }

    // MARK: - Snapshots

    /// Takes a snapshot now: a per-worker cut (`Engine.captureImage`) marked with each worker's
    /// journal position, written once those positions are durable; then prunes to
    /// `snapshotsKept` and deletes the journal segments the oldest kept snapshot covers. A failure
    /// (disk or map full, cut timed out, journal failed) is counted, logged and thrown; the engine
    /// keeps serving. Blocks the caller (seconds for millions of cells); one snapshot at a time.
    @discardableResult
    public func snapshotNow() throws(DurabilityError) -> SnapshotInfo {
        try snapshotting.withLock { _ throws(DurabilityError) -> SnapshotInfo in
            let started = monotonicMilliseconds()
            do throws(DurabilityError) {
                let info = try writeSnapshot()
                let duration = monotonicMilliseconds() - started
                statisticsState.withLock {
                    $0.written += 1
                    $0.lastID = info.id
                    $0.lastCutWallClockMilliseconds = info.cutWallClockMilliseconds
                    $0.lastDurationMilliseconds = duration
                    $0.lastSizeBytes = info.dataBytes
                }
                log("snapshot \(info.id) written: \(info.cellCount) cells, \(info.dataBytes) bytes, \(duration) ms")
                retain()
                return info
            } catch {
                statisticsState.withLock {
                    $0.failed += 1
                    $0.lastFailure = error.description
                }
                log("snapshot failed (the engine keeps serving): \(error)")
                throw error
            }
        }
    }

    private func writeSnapshot() throws(DurabilityError) -> SnapshotInfo {
        let streams = streams
        let cutStarted = monotonicMilliseconds()
        let image = engine.captureImage(mark: { streams[$0].lastAppendedLSN })
        // The cores cut at once and copy their shards between their other work: how long that took.
        log("snapshot cut: \(image.cellCount) cells copied in \(monotonicMilliseconds() - cutStarted) ms, one shard per turn")
        // With a failed journal a worker may hold what its journal does not (changes from other
        // workers it follows unjournaled until the restart): no snapshot until then.
        if let failed = streams.lazy.compactMap(\.failure).first {
            throw .notDurable(DurabilityFailure(reason: failed.description))
        }
        // The snapshot may only exist once everything it reflects is in the journal for good (stable:
        // synced where the mode syncs), or a restart after a power loss could find a journal that
        // ends before the snapshot's marks.
        if let failure = engine.waitUntilStable() { throw .notDurable(failure) }
        do {
            return try store.write(image, metadata: SnapshotMetadata(engineVersion: configuration.engineVersion))
        } catch {
            throw .snapshot(error)
        }
    }

    /// Prunes old snapshots and the journal segments only they needed. Failures are logged only.
    private func retain() {
        do {
            _ = try store.prune()
            guard let oldest = try store.list().first else { return }
            let marks = try store.info(oldest).workerMarks
            for (index, stream) in streams.enumerated() where index < marks.count {
                let deleted = try stream.deleteSegments(coveredThrough: marks[index])
                if !deleted.isEmpty { log("journal stream \(index): deleted \(deleted.count) segments covered by snapshot \(oldest)") }
            }
        } catch {
            log("snapshot retention failed (kept everything): \(error)")
        }
    }

    /// Snapshot figures (for metrics).
    public var snapshotStatistics: SnapshotStatistics { statisticsState.withLock { $0 } }

    /// The first journal stream failure, if any stream failed (writes are then refused).
    public var journalFailure: String? { streams.lazy.compactMap(\.failure).first.map(\.description) }

    /// Per stream: (last appended, durable) LSNs.
    public var journalPositions: [(appended: UInt64, durable: UInt64)] {
        streams.map { ($0.lastAppendedLSN, $0.durableLSN) }
    }

    /// Starts taking a snapshot every `snapshotIntervalSeconds` (no-op when 0), on its own queue.
    public func startSnapshotSchedule() {
        let seconds = configuration.snapshotIntervalSeconds
        guard seconds > 0 else { return }
        let stop = DispatchSemaphore(value: 0)
        schedule.withLock { $0 = stop }
        DispatchQueue(label: "atp.snapshots").async { [self] in
            while stop.wait(timeout: .now() + .seconds(seconds)) == .timedOut {
                _ = try? snapshotNow()
            }
        }
    }

    /// Stops the schedule, optionally takes a last snapshot (clean shutdown: the next start replays
    /// nothing), stops the engine (after the work it has), closes the journal streams and unlocks
    /// the directory. Idempotent. Throws the final snapshot's failure (everything is still closed).
    public func close(finalSnapshot: Bool) throws(DurabilityError) {
        let first = isClosed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        schedule.withLock { $0?.signal(); $0 = nil }
        var snapshotError: DurabilityError?
        if finalSnapshot {
            do throws(DurabilityError) { try snapshotNow() } catch { snapshotError = error }
        }
        engine.shutdown()
        for stream in streams {
            do { try stream.close() } catch { log("journal stream \(stream.streamIndex) closed with an error: \(error)") }
        }
        lock.unlock()
        if let snapshotError { throw snapshotError }
    }
}
