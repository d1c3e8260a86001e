/// One core's journal stream in memory, for the simulator (`SimulatedCluster`): it models what a
/// real `JournalStream` promises and nothing more. Appends go to a buffer; `write` hands some of
/// them to "the OS" (they survive a process crash), `sync` makes what was written stable (it
/// survives a power loss). A completion runs once its LSN is durable: synced in `sync` mode,
/// written otherwise. A failed sync fails the stream: pending and later waits fail, appends are
/// refused, until a restart. Crashes cut the stream to what survives.
///
/// Single-threaded: the simulator's thread only.
package final class SimulatedJournal: WorkerInputLog, @unchecked Sendable {
    /// The journal's durability mode: when a record counts as durable (answers go), and as stable
    /// (other cores hear of it).
    package enum Durability: Sendable, Equatable, CustomStringConvertible {
        /// Durable and stable once synced.
        case sync
        /// Durable once written, stable once synced (syncs come on a timer).
        case interval
        /// Durable and stable once written (syncs almost never come).
        case none

        package var description: String {
            switch self {
            case .sync: "sync"
            case .interval: "interval"
            case .none: "none"
            }
        }
    }

    package let durability: Durability
    /// Every record kept, in LSN order, from LSN `firstLSN`.
    package private(set) var records: [RecordedInput] = []
    /// The LSN of `records[0]`.
    package private(set) var firstLSN: UInt64 = 1
    /// Handed to the OS: survives a process crash.
    package private(set) var writtenLSN: UInt64 = 0
    /// Covered by a completed sync: survives a power loss.
    package private(set) var syncedLSN: UInt64 = 0
    /// Set once a sync failed; cleared by a restart.
    package private(set) var failure: DurabilityFailure?
    private unowned(unsafe) let waits: SimulatedDurabilityWaits

    init(durability: Durability, waits: SimulatedDurabilityWaits) {
        self.durability = durability
        self.waits = waits
    }

    /// The newest LSN appended.
    package var lastAppendedLSN: UInt64 { firstLSN + UInt64(records.count) - 1 }

    /// Up to where completions run.
    package var durableLSN: UInt64 { durability == .sync ? syncedLSN : writtenLSN }
    /// Up to where other cores may hear of records.
    package var stableLSN: UInt64 { durability == .none ? writtenLSN : syncedLSN }

    // MARK: - WorkerInputLog

    package func append(kind: UInt8, payload: UnsafeRawBufferPointer) -> WorkerInputAppendResult {
        if let failure { return .refused(failure) }
        records.append(RecordedInput(lsn: lastAppendedLSN + 1, kind: kind, payload: Array(payload)))
        return .appended(lsn: lastAppendedLSN)
    }

    package func whenDurable(_ lsn: UInt64, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void) {
        waits.register([self: lsn]) { completion($0) }
    }

    package func whenStable(_ lsn: UInt64, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void) {
        waits.register([self: lsn], stable: true) { completion($0) }
    }

    // MARK: - What the simulator does to it

    /// Hands `count` more appended records to the OS (fewer when fewer are waiting).
    package func write(_ count: Int) {
        guard failure == nil else { return }
        writtenLSN = min(lastAppendedLSN, writtenLSN + UInt64(max(count, 0)))
    }

    /// Syncs what is written; with `failing`, the sync fails and so does the stream.
    package func sync(failing: Bool = false) {
        guard failure == nil else { return }
        if failing {
            failure = DurabilityFailure(reason: "simulated fdatasync failure (EIO)")
        } else {
            syncedLSN = writtenLSN
        }
    }

    /// A process crash: what was not handed to the OS is gone. Returns the records lost.
    @discardableResult
    package func crashProcess() -> Int { cut(to: writtenLSN) }

    /// A power loss: what was not synced may be gone; `keeping` of the written but unsynced
    /// records survive (a prefix, as the journal's checksums leave it after a torn tail).
    @discardableResult
    package func losePower(keeping: Int) -> Int {
        cut(to: min(writtenLSN, syncedLSN + UInt64(max(keeping, 0))))
    }

    /// Cuts the newest record whatever it is (planted faults only: `SimulatedCluster.Sabotage`).
    package func cutForSabotage() -> Int { cut(to: lastAppendedLSN > 0 ? lastAppendedLSN - 1 : 0) }

    /// A restart: the stream reopens with what survived, every record of it stable.
    package func reopen() {
        failure = nil
        writtenLSN = lastAppendedLSN
        syncedLSN = lastAppendedLSN
    }

    private func cut(to lsn: UInt64) -> Int {
        let keep = Int(max(lsn + 1, firstLSN) - firstLSN)
        let lost = records.count - keep
        records.removeLast(lost)
        writtenLSN = min(writtenLSN, lastAppendedLSN)
        syncedLSN = min(syncedLSN, lastAppendedLSN)
        return lost
    }

    /// The records after `lsn`, in order.
    package func records(after lsn: UInt64) -> ArraySlice<RecordedInput> {
        let start = Int(max(lsn + 1, firstLSN) - firstLSN)
        return records[min(start, records.count)...]
    }
}

/// Waits for durability across the simulated journals: an action runs once every position it
/// waits for is durable (or once one of them cannot become durable), in the order registered.
final class SimulatedDurabilityWaits {
    private struct Wait {
        var positions: [ObjectIdentifier: (journal: SimulatedJournal, lsn: UInt64)]
        var stable: Bool
        var action: (DurabilityFailure?) -> Void
    }
    private var pending: [Wait] = []

    func register(_ positions: [SimulatedJournal: UInt64], stable: Bool = false,
                  _ action: @escaping (DurabilityFailure?) -> Void) {
        var wait = Wait(positions: [:], stable: stable, action: action)
        for (journal, lsn) in positions { wait.positions[ObjectIdentifier(journal)] = (journal, lsn) }
        pending.append(wait)
    }

    /// Runs every action whose positions are now durable or failed, in registration order.
    /// Actions may register more waits; those are looked at on the next call.
    func fire() {
        var index = 0
        while index < pending.count {
            let wait = pending[index]
            var failure: DurabilityFailure?
            var ready = true
            for (_, position) in wait.positions
            where (wait.stable ? position.journal.stableLSN : position.journal.durableLSN) < position.lsn {
                if let failed = position.journal.failure { failure = failed } else { ready = false }
            }
            if ready || failure != nil {
                pending.remove(at: index)
                wait.action(failure)
            } else {
                index += 1
            }
        }
    }

    /// Forgets every wait (a crash: nobody is left to answer).
    func dropAll() { pending.removeAll() }

    /// Waits not yet run.
    var count: Int { pending.count }
}

extension SimulatedJournal: Hashable {
    package static func == (a: SimulatedJournal, b: SimulatedJournal) -> Bool { a === b }
    package func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
