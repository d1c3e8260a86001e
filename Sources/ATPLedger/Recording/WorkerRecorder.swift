#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What recording an input did.
enum RecordOutcome {
    /// In the log with this LSN: apply the input, answer once the LSN is durable.
    case appended(lsn: UInt64)
    /// The log failed: do not acknowledge anything that depends on this input.
    case refused(DurabilityFailure)
}

/// Writes one core's state changes to its `WorkerInputLog`, in the order the core applies them.
/// Before a record that uses name ids the log has not defined yet, it writes `names` records for
/// every id from its watermark up to the largest one used (the catalog is append-only), so each
/// log is self-contained from any snapshot mark on. The core's thread only.
final class WorkerRecorder {
    let log: WorkerInputLog
    private let catalog: Catalog
    private let writer = RecordWriter()
    private let namesWriter = RecordWriter()
    /// Names of each kind (sku, location, channel, source) already defined in this log.
    private var nameWatermarks: [Int]
    /// Microseconds slept waiting for room in a full log (back-pressure), for statistics.
    private(set) var fullWaitMicroseconds: UInt64 = 0

    /// Largest names record payload, well under any journal's record limit.
    static let namesRecordBytesMax = 60_000

    init(log: WorkerInputLog, catalog: Catalog, nameWatermarks: [Int]) {
        precondition(nameWatermarks.count == 4, "one watermark per name kind")
        self.log = log
        self.catalog = catalog
        self.nameWatermarks = nameWatermarks
    }

    // MARK: - Records

    /// The events of `batch` this worker applies (all when `indices` is nil), with the time used.
    /// Cost: one memcpy per event plus four comparisons (name watermarks); no allocation once warm.
    func recordEvents(_ batch: EventBatch, indices: [Int32]?, nowMilliseconds: Int64) -> RecordOutcome {
        writer.reset()
        let count = indices?.count ?? batch.events.count
        writer.put(nowMilliseconds)
        writer.put(UInt32(count))
        let hasCorrelations = !batch.correlationIDs.isEmpty
        writer.put(UInt32(hasCorrelations ? batch.correlationIDs.count : 0))
        writer.reserve(count * MemoryLayout<StockEvent>.size)
        var maxSKU: UInt32 = 0, maxLocation: UInt32 = 0, maxSource: UInt32 = 0
        batch.events.withUnsafeBufferPointer { events in
            for k in 0..<count {
                let event = events[indices.map { Int($0[k]) } ?? k]
                maxSKU = max(maxSKU, event.sku.rawValue)
                maxLocation = max(maxLocation, event.location.rawValue,
                                  event.kind == .transferOut ? event.toLocation.rawValue : 0)
                maxSource = max(maxSource, event.source.rawValue)
                writer.putRaw(event)
            }
        }
        if count > 0 {
            writer.noteName(maxSKU, kind: .sku)
            writer.noteName(maxLocation, kind: .location)
            writer.noteName(maxSource, kind: .source)
        }
        if hasCorrelations { for id in batch.correlationIDs { writer.put(id) } }
        return append(.events)
    }

    /// A reserve decided at its home shard (held or refused), with its grants and parts.
    func recordReserveDecision(_ record: ReservationRecord, homeShard: Int, nowMilliseconds: Int64) -> RecordOutcome {
        writer.reset()
        writer.put(nowMilliseconds)
        writer.put(UInt32(homeShard))
        writer.put(record.state.rawValue)
        writer.put(record.expiresAtMilliseconds)
        writer.put(record.request)
        for grant in record.lineGrants { writer.put(grant) }
        writer.put(UInt32(record.parts.count))
        for part in record.parts {
            writer.put(UInt32(part.core))
            writer.put(part.origin)
        }
        return append(.reserveDecided)
    }

    /// A part core's tentative holds for `id` (the record's own LSN becomes the holds' origin).
    func recordPrepare(_ id: ReservationID, homeShard: Int, generation: UInt64, plans: [CoreLedger.LinePlan],
                       lines: [ReservationLine], nowMilliseconds: Int64) -> RecordOutcome {
        writer.reset()
        writer.put(nowMilliseconds)
        writer.put(UInt32(homeShard))
        writer.put(generation)
        writer.put(id)
        let holding = plans.filter { $0.grant.granted > 0 }
        writer.put(UInt32(holding.count))
        for plan in holding {
            writer.put(name: lines[plan.index].sku.rawValue, kind: .sku)
            writer.put(UInt32(plan.grant.allocations.count))
            for allocation in plan.grant.allocations {
                writer.put(name: allocation.location.rawValue, kind: .location)
                writer.put(allocation.quantity)
            }
        }
        return append(.prepared)
    }

    /// Commits, releases or expiries of records of home shard `homeShard`.
    func recordTransitions(_ entries: [TransitionEntry], homeShard: Int, nowMilliseconds: Int64) -> RecordOutcome {
        writer.reset()
        writer.put(nowMilliseconds)
        writer.put(UInt32(homeShard))
        writer.put(UInt32(entries.count))
        for entry in entries {
            writer.put(entry.id)
            writer.put(entry.state.rawValue)
            writer.put(UInt8(entry.acknowledge ? 1 : 0))
        }
        return append(.transitions)
    }

    /// A part core applied `change` to its holds of `id` with `origin` on `shards`.
    func recordPartChange(_ change: HoldChange, id: ReservationID, origin: HoldOrigin, shards: [Int],
                          nowMilliseconds: Int64) -> RecordOutcome {
        writer.reset()
        writer.put(nowMilliseconds)
        writer.put(change.rawValue)
        writer.put(id)
        writer.put(origin)
        writer.put(UInt32(shards.count))
        for shard in shards { writer.put(UInt32(shard)) }
        return append(.partChange)
    }

    /// Part core `from` acknowledged a durable change of `id`.
    func recordAcknowledgement(_ id: ReservationID, homeShard: Int, from: Int, nowMilliseconds: Int64) -> RecordOutcome {
        writer.reset()
        writer.put(nowMilliseconds)
        writer.put(UInt32(homeShard))
        writer.put(UInt32(from))
        writer.put(id)
        return append(.acknowledged)
    }

    /// A new journal generation starts after `previousEnd` (recovery).
    func recordGeneration(_ generation: UInt64, previousEnd: UInt64) -> RecordOutcome {
        writer.reset()
        writer.put(generation)
        writer.put(previousEnd)
        return append(.generation)
    }

    /// The whole channel table as recovery set it; `sequence` is the newest change in it.
    func recordChannelTable(_ definitions: [ChannelDefinition], sequence: UInt64) -> RecordOutcome {
        writer.reset()
        writer.put(sequence)
        writer.put(UInt32(definitions.count))
        for definition in definitions { writer.put(definition) }
        return append(.channelTable)
    }

    /// Repairs made by recovery on this core.
    func recordRepairs(_ repairs: [RecoveryRepair], nowMilliseconds: Int64) -> RecordOutcome {
        writer.reset()
        writer.put(nowMilliseconds)
        writer.put(UInt32(repairs.count))
        for repair in repairs { repair.encode(into: writer) }
        return append(.repairs)
    }

    /// A channel definition applied by this worker; `sequence` orders channel changes engine-wide.
    func recordChannelDefine(_ definition: ChannelDefinition, sequence: UInt64) -> RecordOutcome {
        writer.reset()
        writer.put(sequence)
        writer.put(definition)
        return append(.channelDefine)
    }

    /// A channel removal applied by this worker.
    func recordChannelRemove(_ id: ChannelID, sequence: UInt64) -> RecordOutcome {
        writer.reset()
        writer.put(sequence)
        writer.put(name: id.rawValue, kind: .channel)
        return append(.channelRemove)
    }

    // MARK: - Appending

    /// Whether the log refused a record (it failed: nothing more becomes durable until a restart).
    private(set) var hasFailed = false

    private func append(_ kind: WorkerInputKind) -> RecordOutcome {
        if case .refused(let failure) = defineNames() { return .refused(failure) }
        return appendWaiting(kind, writer.bytes)
    }

    /// Appends, waiting while the log is full: the worker stops taking tasks, its inbox fills and
    /// producers see `inboxFull` (back-pressure up to the client).
    private func appendWaiting(_ kind: WorkerInputKind, _ payload: UnsafeRawBufferPointer) -> RecordOutcome {
        var pauseMicroseconds: UInt32 = 20
        while true {
            switch log.append(kind: kind.rawValue, payload: payload) {
            case .appended(let lsn): return .appended(lsn: lsn)
            case .refused(let failure):
                hasFailed = true
                return .refused(failure)
            case .full:
                usleep(pauseMicroseconds)
                fullWaitMicroseconds &+= UInt64(pauseMicroseconds)
                pauseMicroseconds = min(pauseMicroseconds * 2, 1000)
            }
        }
    }

    /// Writes `names` records for every id the pending record uses that the log has not defined.
    private func defineNames() -> RecordOutcome? {
        let maxima = writer.maxNameIDs
        let kinds: [(NameKind, Int64)] = [(.sku, maxima.0), (.location, maxima.1), (.channel, maxima.2),
                                          (.source, maxima.3)]
        for (slot, (kind, maxID)) in kinds.enumerated() where maxID >= Int64(nameWatermarks[slot]) {
            // Ids the catalog does not have (a test's raw ids, `.unknown`) have no name to define.
            let end = min(Int(maxID) + 1, catalog.count(kind))
            while nameWatermarks[slot] < end {
                namesWriter.reset()
                let first = nameWatermarks[slot]
                namesWriter.put(kind.rawValue)
                namesWriter.put(UInt32(first))
                namesWriter.put(UInt32(0))
                var next = first
                while next < end && namesWriter.count < Self.namesRecordBytesMax {
                    catalog.withName(kind, id: UInt32(next)) { bytes in
                        namesWriter.put(UInt16(bytes.count))
                        namesWriter.put(bytes: bytes)
                    }
                    next += 1
                }
                namesWriter.base.storeBytes(of: UInt32(next - first).littleEndian, toByteOffset: 5, as: UInt32.self)
                if case .refused(let failure) = appendWaiting(.names, namesWriter.bytes) { return .refused(failure) }
                nameWatermarks[slot] = next
            }
        }
        return nil
    }
}
