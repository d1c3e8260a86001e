import ATPDurability
import ATPJournal
import ATPLedger
import Foundation
import Testing

/// Restarting a `DurableLedger` on its data directory: what was acknowledged is there.
@Suite struct RecoveryTests {
    static func ledgerConfiguration() -> LedgerConfiguration {
        var configuration = LedgerConfiguration()
        configuration.shardCount = 8
        configuration.workerCount = 2
        return configuration
    }

    static func open(_ directory: TemporaryDirectory, clock: EngineClock = .manual(),
                     adjust: (inout DurabilityConfiguration) -> Void = { _ in }) throws -> DurableLedger {
        var durability = DurabilityConfiguration(dataDirectory: directory.path)
        durability.snapshotIntervalSeconds = 0
        adjust(&durability)
        return try DurableLedger.open(configuration: ledgerConfiguration(), durability: durability, clock: clock)
    }

    /// Events, a held reservation with its expiry, a channel and the dedup window survive a
    /// restart from the journal alone, and again from a snapshot plus journal.
    @Test(arguments: [false, true])
    func restartKeepsAcknowledgedState(snapshotFirst: Bool) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = EngineClock.manual()
        var expiresAt: Int64 = 0
        do {
            let ledger = try Self.open(directory, clock: clock)
            var workload = Workload(engine: ledger.engine)
            for sku in 0..<20 { workload.receive(sku: sku, location: 1, quantity: 10) }
            if snapshotFirst { try ledger.snapshotNow() }
            let reply = workload.reserve("ORDER-1", lines: [(3, 1, 4), (4, 1, 2), (5, 1, 1)])
            #expect(reply.state == .held)
            expiresAt = reply.expiresAtMilliseconds
            try ledger.engine.defineChannel(ChannelDefinition(id: try ledger.engine.catalog.channel("web"),
                                                              locations: [workload.location(1)]))
            workload.receive(sku: 7, location: 1, quantity: 5)
            try ledger.close(finalSnapshot: false)
        }
        let ledger = try Self.open(directory, clock: clock)
        defer { try? ledger.close(finalSnapshot: false) }
        #expect(ledger.recovery.recordsReplayed.reduce(0, +) > 0)
        let workload = Workload(engine: ledger.engine)
        #expect(workload.sellable(sku: 3, location: 1) == 6)
        #expect(workload.sellable(sku: 7, location: 1) == 15)
        let replay = workload.reserve("ORDER-1", lines: [(3, 1, 4), (4, 1, 2), (5, 1, 1)])
        #expect(replay.replayed && replay.state == .held && replay.expiresAtMilliseconds == expiresAt)
        #expect(ledger.engine.channels().count == 1)
        // The feed resends its last event after the crash: the dedup window drops it.
        #expect(workload.resend(sku: 7, location: 1, quantity: 5, sequence: 21).duplicateCount == 1)
        #expect(workload.sellable(sku: 7, location: 1) == 15)
    }

    /// Tens of thousands of reservations falling due in one expiry pass (a flash sale's backlog
    /// after the core stalled) expire in records the journal accepts, then survive a restart. The
    /// pass used to journal them in one record past `recordPayloadBytesMax`, which the journal
    /// refused on every pass: nothing expired and the core spent its time retrying.
    @Test func aLargeExpiryBacklogIsJournaledInRecordsTheJournalAccepts() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = EngineClock.manual()
        let count = 12_000
        let adjust: (inout DurabilityConfiguration) -> Void = {
            $0.journal.durability = .none
            $0.journal.recordPayloadBytesMax = 256 << 10  // one record of all 12,000 would be 528 KB
            $0.journal.bufferedBytesMax = 1 << 20
        }
        do {
            let ledger = try Self.open(directory, clock: clock, adjust: adjust)
            var workload = Workload(engine: ledger.engine)
            workload.receive(sku: 1, location: 1, quantity: Int64(count))
            let line = ReservationLine(sku: workload.sku(1), target: .location(workload.location(1)), quantity: 1)
            let answered = ManagedCount()
            let held = ManagedCount()
            for number in 0..<count {
                let id = try ReservationID("expiring-reservation-\(100_000 + number)-of-a-large-backlog")
                let request = ReserveRequest(id: id, lines: [line], ttlMilliseconds: 1_000, mode: .allOrNothing)
                while ledger.engine.submitReserve(request, completion: { reply in
                    if reply.state == .held { held.add() }
                    answered.add()
                }) == .inboxFull { usleep(100) }
            }
            ledger.engine.waitUntilIdle()
            #expect(pollUntil { answered.value == count })
            #expect(held.value == count)
            #expect(workload.sellable(sku: 1, location: 1) == 0)
            ledger.engine.advanceClock(byMilliseconds: 1_001)
            #expect(pollUntil { workload.sellable(sku: 1, location: 1) == Int64(count) },
                    "every reservation expired in one pass")
            // The journal still takes writes: a new reservation is acknowledged.
            #expect(workload.reserve("after-the-backlog", lines: [(1, 1, 5)]).state == .held)
            try ledger.close(finalSnapshot: false)
        }
        let ledger = try Self.open(directory, clock: clock, adjust: adjust)
        defer { try? ledger.close(finalSnapshot: false) }
        ledger.engine.checkInvariants()
        let workload = Workload(engine: ledger.engine)
        #expect(workload.sellable(sku: 1, location: 1) == Int64(count) - 5, "the expiries were replayed")
    }

    /// An ingest of batchItemsMax events all on one core (6 MB of events; with correlation ids,
    /// which only shipments carry, it could be 12.5 MB, what the fit allows for) is one journal
    /// record the journal accepts once fitted to it, as atpd does, and is there after a restart.
    /// The journal's own 1 MiB default refuses it.
    @Test func theLargestIngestFitsOneJournalRecord() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let batchItemsMax = 100_000
        let skus = (0..<8).reduce(into: [Int]()) { found, _ in
            found.append(Workload.skuNumber(onCore: 0, Self.ledgerConfiguration(), from: (found.last ?? -1) + 1))
        }
        func batch(_ workload: Workload) -> EventBatch {
            var batch = EventBatch(capacity: batchItemsMax)
            for n in 0..<batchItemsMax {
                let event = StockEvent(kind: .receive, sku: workload.sku(skus[n % skus.count]), location: workload.location(n % 100),
                                       quantity: 1, source: workload.source, sequence: UInt64(n + 1))
                batch.append(event)
            }
            return batch
        }
        do {
            let unfitted = TemporaryDirectory()
            defer { unfitted.remove() }
            let ledger = try Self.open(unfitted)
            #expect(ledger.engine.apply(batch(Workload(engine: ledger.engine))).durabilityFailure != nil,
                    "the journal's default refuses it")
            try? ledger.close(finalSnapshot: false)
        }
        do {
            let ledger = try Self.open(directory) { $0.fitJournal(toBatchItemsMax: batchItemsMax) }
            let result = ledger.engine.apply(batch(Workload(engine: ledger.engine)))
            #expect(result.durabilityFailure == nil)
            #expect(result.outcomes.allSatisfy { $0 == .applied }, "\(Dictionary(grouping: result.outcomes, by: { "\($0)" }).mapValues(\.count))")
            try ledger.close(finalSnapshot: false)
        }
        let ledger = try Self.open(directory) { $0.fitJournal(toBatchItemsMax: batchItemsMax) }
        defer { try? ledger.close(finalSnapshot: false) }
        let workload = Workload(engine: ledger.engine)
        let total = (0..<100).reduce(Int64(0)) { sum, location in
            skus.reduce(sum) { $0 + workload.sellable(sku: $1, location: location) }
        }
        #expect(total == Int64(batchItemsMax))
    }

    /// A reservation whose expiry passed while the engine was down is expired at start.
    @Test func expiryWhileDownIsAppliedAtStart() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let clock = EngineClock.manual()
        do {
            let ledger = try Self.open(directory, clock: clock)
            var workload = Workload(engine: ledger.engine)
            workload.receive(sku: 1, location: 1, quantity: 10)
            #expect(workload.reserve("SHORT", lines: [(1, 1, 3)], ttlMilliseconds: 1000).state == .held)
            try ledger.close(finalSnapshot: false)
        }
        clock.advance(byMilliseconds: 5000)
        let ledger = try Self.open(directory, clock: clock)
        defer { try? ledger.close(finalSnapshot: false) }
        ledger.engine.waitUntilIdle()
        let workload = Workload(engine: ledger.engine)
        #expect(workload.sellable(sku: 1, location: 1) == 10)
        #expect(ledger.engine.release(try ReservationID("SHORT")).state == .expired)
    }

    /// A clean shutdown leaves a snapshot after which the next start replays nothing.
    @Test func finalSnapshotMeansNothingToReplay() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        do {
            let ledger = try Self.open(directory)
            var workload = Workload(engine: ledger.engine)
            for sku in 0..<10 { workload.receive(sku: sku, location: 2, quantity: 3) }
            try ledger.close(finalSnapshot: true)
        }
        let ledger = try Self.open(directory)
        defer { try? ledger.close(finalSnapshot: false) }
        #expect(ledger.recovery.snapshotID == 1)
        #expect(ledger.recovery.recordsReplayed.reduce(0, +) == 0)
        #expect(Workload(engine: ledger.engine).sellable(sku: 9, location: 2) == 3)
    }

    /// A torn tail (the last record cut short) and a flipped bit are cut, reported, and the
    /// acknowledged records before them are kept.
    @Test(arguments: [true, false])
    func damagedTailIsCutAndReported(truncate: Bool) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let sku = DamagedJournalTests.skuOnCoreZero
        do {
            let ledger = try Self.open(directory)
            var workload = Workload(engine: ledger.engine)
            workload.receive(sku: sku, location: 1, quantity: 10)
            workload.receive(sku: sku, location: 1, quantity: 1)
            try ledger.close(finalSnapshot: false)
        }
        // The SKU lives on worker 0: damage the last record of stream 0.
        let stream = JournalLayout.streamDirectory(dataDirectory: directory.path, streamIndex: 0)
        let segment = try FileManager.default.contentsOfDirectory(atPath: stream).filter { $0.hasSuffix(".journal") }.sorted().last!
        let path = stream + "/" + segment
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        if truncate { bytes.removeLast(3) } else { bytes[bytes.count - 20] ^= 0x10 }
        try bytes.write(to: URL(fileURLWithPath: path))
        let ledger = try Self.open(directory)
        defer { try? ledger.close(finalSnapshot: false) }
        #expect(ledger.recovery.tailRepairs.count == 1)
        #expect(ledger.recovery.tailRepairs.first?.streamIndex == 0)
        #expect(Workload(engine: ledger.engine).sellable(sku: sku, location: 1) == 10)
    }

    /// A damaged newest snapshot is skipped for the one before; the journal fills the gap.
    @Test func damagedNewestSnapshotFallsBack() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        do {
            let ledger = try Self.open(directory)
            var workload = Workload(engine: ledger.engine)
            workload.receive(sku: 1, location: 1, quantity: 10)
            try ledger.snapshotNow()
            workload.receive(sku: 1, location: 1, quantity: 5)
            let second = try ledger.snapshotNow()
            workload.receive(sku: 1, location: 1, quantity: 1)
            try ledger.close(finalSnapshot: false)
            var data = try Data(contentsOf: URL(fileURLWithPath: second.path + "/data.mdb"))
            data[data.count / 2] ^= 0xFF
            try data.write(to: URL(fileURLWithPath: second.path + "/data.mdb"))
        }
        let ledger = try Self.open(directory)
        defer { try? ledger.close(finalSnapshot: false) }
        #expect(ledger.recovery.snapshotID == 1)
        #expect(ledger.recovery.snapshotsSkipped.count == 1)
        #expect(Workload(engine: ledger.engine).sellable(sku: 1, location: 1) == 16)
    }

    /// A second ledger on the same data directory is refused with a clear error.
    @Test func secondOpenIsRefused() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ledger = try Self.open(directory)
        defer { try? ledger.close(finalSnapshot: false) }
        do {
            _ = try Self.open(directory)
            Issue.record("a second open succeeded")
        } catch DurabilityError.dataDirectoryLocked(let path) {
            #expect(path == directory.path)
        }
    }

    /// A journal write failure (ENOSPC from the second write on): writes are refused with
    /// `notDurable`, nothing unjournaled is acknowledged, queries keep working.
    @Test func journalWriteFailureRefusesWrites() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let failing = FailureSwitch()
        let ledger = try Self.open(directory) { durability in
            var operations = JournalFileOperations.system
            let write = operations.write
            operations.write = { descriptor, bytes throws(JournalErrno) in
                if failing.isOn { throw JournalErrno(ENOSPC) }
                return try write(descriptor, bytes)
            }
            durability.journalFileOperations = operations
        }
        defer { try? ledger.close(finalSnapshot: false) }
        var workload = Workload(engine: ledger.engine)
        #expect(workload.receive(sku: 1, location: 1, quantity: 10).durabilityFailure == nil)
        failing.isOn = true
        #expect(workload.receive(sku: 1, location: 1, quantity: 10).durabilityFailure != nil)
        let reply = workload.reserve("R-1", lines: [(1, 1, 1)])
        #expect(reply.error.map { if case .notDurable = $0 { true } else { false } } == true)
        #expect(workload.receive(sku: 1, location: 1, quantity: 10).durabilityFailure != nil)
        #expect(workload.sellable(sku: 1, location: 1) >= 10)
        #expect(ledger.journalFailure != nil)
    }

    /// A snapshot that fails (map size limit far too small) is reported; the engine keeps serving.
    @Test func snapshotFailureKeepsServing() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let ledger = try Self.open(directory)
        defer { try? ledger.close(finalSnapshot: false) }
        var workload = Workload(engine: ledger.engine)
        workload.receive(sku: 1, location: 1, quantity: 10)
        // A file where the snapshots directory should be: the write fails.
        FileManager.default.createFile(atPath: directory.path + "/snapshots", contents: Data([1]))
        #expect(throws: DurabilityError.self) { try ledger.snapshotNow() }
        #expect(ledger.snapshotStatistics.failed == 1)
        workload.receive(sku: 1, location: 1, quantity: 5)
        #expect(workload.sellable(sku: 1, location: 1) == 15)
    }
}

final class FailureSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var on = false
    var isOn: Bool {
        get { lock.withLock { on } }
        set { lock.withLock { on = newValue } }
    }
}

/// A counter several threads add to.
private final class ManagedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// Polls `condition` every 10 ms for up to 30 s; whether it became true.
private func pollUntil(_ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(30)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}
