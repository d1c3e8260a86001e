#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blocking conveniences for tools, tests and start-up code. They wait for the answer on the
/// calling thread (retrying while an inbox is full), so never call them from an event loop.
extension Engine {
    /// Applies a batch of events and waits for the outcomes.
    public func apply(_ batch: EventBatch) -> EventBatchResult {
        preconditionNotOnAHost()
        let answer = OneShot<EventBatchResult>()
        while submit(batch, completion: { answer.fulfil($0) }) == .inboxFull { usleep(50) }
        return answer.wait()
    }

    /// Answers a batch of queries and waits.
    public func query(_ queries: [AvailabilityQuery], collectingCells: Bool = true, cellsMax: Int = .max)
        -> QueryBatchResult
    {
        preconditionNotOnAHost()
        let answer = OneShot<QueryBatchResult>()
        while submit(queries: queries, collectingCells: collectingCells, cellsMax: cellsMax,
                     completion: { answer.fulfil($0) }) == .inboxFull
        {
            usleep(50)
        }
        return answer.wait()
    }

    /// Reserves and waits for the answer.
    public func reserve(_ request: ReserveRequest) -> ReservationReply {
        preconditionNotOnAHost()
        let answer = OneShot<ReservationReply>()
        while submitReserve(request, completion: { answer.fulfil($0) }) == .inboxFull { usleep(50) }
        return answer.wait()
    }

    /// Commits and waits for the answer.
    public func commit(_ id: ReservationID) -> ReservationReply {
        preconditionNotOnAHost()
        let answer = OneShot<ReservationReply>()
        while submitCommit(id, completion: { answer.fulfil($0) }) == .inboxFull { usleep(50) }
        return answer.wait()
    }

    /// Releases and waits for the answer.
    public func release(_ id: ReservationID) -> ReservationReply {
        preconditionNotOnAHost()
        let answer = OneShot<ReservationReply>()
        while submitRelease(id, completion: { answer.fulfil($0) }) == .inboxFull { usleep(50) }
        return answer.wait()
    }

    /// Counters, sizes and queue depths, gathered from every worker (a consistent view per shard).
    public func statistics() -> EngineStatistics {
        let collected = OneShotCollector<EngineStatistics>(count: configuration.workerCount)
        onEveryWorker { worker in
            var part = EngineStatistics()
            for shard in worker.ledger.shards {
                part.counters.add(shard.currentCounters)
                part.cellCount += shard.cells.count
                part.cellBytes += shard.cells.bytesAllocated
                part.rememberedReservations += shard.records.count
                part.holds += shard.holds.count
                for (source, position) in shard.dedupWindowBySource {
                    guard let stamp = shard.dedupWindows[position].lastAppliedMilliseconds else { continue }
                    part.lastAppliedMillisecondsBySource[source] = max(
                        stamp, part.lastAppliedMillisecondsBySource[source] ?? .min)
                }
            }
            // The expiry queue holds exactly the held records: no scan of the records (a scrape of
            // /metrics used to visit every remembered reservation).
            part.heldReservations = worker.ledger.expiries.count
            part.inboxDepths = [worker.inboxDepth]
            collected.add(part, at: worker.index)
        }
        var total = EngineStatistics()
        for part in collected.values {
            total.counters.add(part.counters)
            total.cellCount += part.cellCount
            total.cellBytes += part.cellBytes
            total.heldReservations += part.heldReservations
            total.rememberedReservations += part.rememberedReservations
            total.holds += part.holds
            total.inboxDepths += part.inboxDepths
            total.lastAppliedMillisecondsBySource.merge(part.lastAppliedMillisecondsBySource) { max($0, $1) }
        }
        for (reason, count) in core.rejectionLog.recordedByReason.enumerated() {
            total.counters.rejectionsByReason[reason] += count
        }
        total.nameBytes = catalog.bytesUsed
        total.skuCount = catalog.count(.sku)
        total.locationCount = catalog.count(.location)
        total.channelCount = channels().count
        let log = rejections(afterSequence: .max - 1, limit: 0)
        total.rejectionLogNewestSequence = log.newestSequence
        return total
    }

    /// Checks every shard's invariants on its worker thread (tests; costs a full scan): cells'
    /// reserved and committed buckets equal their holds. With nothing between workers (after
    /// `waitUntilIdle`, no journal failed), also that every reservation's record and holds agree
    /// across workers: recovery's resolution would find nothing to repair.
    public func checkInvariants() {
        onEveryWorker { worker in worker.ledger.checkInvariants() }
        guard core.trackedInternalTasks.load(ordering: .acquiring) == 0, !core.messageDropped.load(ordering: .relaxed)
        else { return }
        let censuses = OneShotCollector<CoreCensus>(count: configuration.workerCount)
        onEveryWorker { worker in
            guard worker.ledger.pendingReserves.isEmpty, worker.ledger.recorder?.hasFailed != true else {
                return censuses.add(CoreCensus.busy, at: worker.index)
            }
            censuses.add(worker.ledger.census(endLSN: .max), at: worker.index)
        }
        let all = censuses.values
        guard !all.contains(where: \.isBusy) else { return }
        let resolution = Resolution(all, shardCount: configuration.shardCount, nowMilliseconds: clock.nowMilliseconds())
        precondition(resolution.repairsByCore.allSatisfy(\.isEmpty),
                     "reservation records and holds disagree across workers: \(resolution.repairsByCore)")
    }
}

/// A snapshot of the engine's counters and sizes.
public struct EngineStatistics: Sendable {
    /// Counters summed over shards.
    public var counters = ShardCounters()
    /// Cells in all shards.
    public var cellCount = 0
    /// Bytes allocated for cell buffers and indexes.
    public var cellBytes = 0
    /// Bytes held by the name tables.
    public var nameBytes = 0
    /// Reservations currently held (not committed, released or expired).
    public var heldReservations = 0
    /// Reservation records remembered (held ones and settled ones within the retention window).
    public var rememberedReservations = 0
    /// Hold records on cells (held and committed reservations).
    public var holds = 0
    /// External tasks waiting, per worker.
    public var inboxDepths: [Int] = []
    public var skuCount = 0
    public var locationCount = 0
    public var channelCount = 0
    /// The newest rejection log position.
    public var rejectionLogNewestSequence: UInt64 = 0
    /// Per source, when an event of it was last applied (engine clock, milliseconds since 1970):
    /// inventory freshness. Sources with no event applied since the engine started are absent.
    public var lastAppliedMillisecondsBySource: [SourceID: Int64] = [:]

    public init() {}

    /// Bytes per cell, all in: buffers, index and names.
    public var bytesPerCell: Double {
        cellCount == 0 ? 0 : Double(cellBytes + nameBytes) / Double(cellCount)
    }
}

/// Gathers one value per worker from worker threads.
final class OneShotCollector<Value: Sendable>: @unchecked Sendable {
    private let slots: [OneShot<Value>]
    init(count: Int) { slots = (0..<count).map { _ in OneShot<Value>() } }
    func add(_ value: Value, at index: Int) { slots[index].fulfil(value) }
    var values: [Value] { slots.map { $0.wait() } }
}
