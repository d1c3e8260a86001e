import ATPLedger
import NIOCore

/// A statistic's value: unsigned (type 0) or signed (type 1) 64-bit.
public enum StatValue: Sendable, Equatable {
    /// A `u64` value (counters, sizes).
    case unsigned(UInt64)
    /// An `i64` value (times, differences).
    case signed(Int64)

    /// The wire type code.
    public var typeCode: UInt8 {
        switch self {
        case .unsigned: 0
        case .signed: 1
        }
    }
}

/// One (name, value) pair of a stats reply.
public struct StatEntry: Sendable, Equatable {
    /// Dotted name, 1..64 bytes of ASCII (docs/PROTOCOL.md §7.11 lists them).
    public var name: String
    /// The value.
    public var value: StatValue
    /// An entry from its parts.
    public init(_ name: String, _ value: StatValue) {
        self.name = name
        self.value = value
    }
}

/// The answer to `stats`: a list of (name, value) pairs that can grow without a version change.
public struct StatsReply: Sendable, Equatable {
    /// The entries, in the server's order.
    public var entries: [StatEntry]
    /// A reply from its entries.
    public init(entries: [StatEntry]) { self.entries = entries }

    /// The engine's statistics under the names docs/PROTOCOL.md §7.11 lists, in that order.
    /// Per-reason rejection counts appear only when non-zero. Cost: O(kinds + reasons + buckets).
    public static func entries(from statistics: EngineStatistics) -> [StatEntry] {
        let counters = statistics.counters
        var entries: [StatEntry] = []
        func add(_ name: String, _ value: some BinaryInteger) { entries.append(StatEntry(name, .unsigned(UInt64(value)))) }
        add("events.applied", counters.eventsApplied)
        for kind in StockEventKind.allCases where Int(kind.rawValue) < counters.eventsAppliedByKind.count {
            add("events.applied.\(kind)", counters.eventsAppliedByKind[Int(kind.rawValue)])
        }
        add("events.duplicates", counters.duplicatesDropped)
        add("events.rejected", counters.eventsRejected)
        for reason in RejectionReason.allCases where Int(reason.rawValue) < counters.rejectionsByReason.count {
            let count = counters.rejectionsByReason[Int(reason.rawValue)]
            if count > 0 { add("events.rejected.\(reason)", count) }
        }
        for bucket in Bucket.allCases where bucket.isFlooredAtZero
            && Int(bucket.rawValue) < counters.exceptionUnitsByBucket.count {
            add("exceptions.units.\(bucket)", counters.exceptionUnitsByBucket[Int(bucket.rawValue)])
        }
        add("cells.count", statistics.cellCount)
        add("cells.short", max(0, counters.shortCells))
        add("cells.bytes", statistics.cellBytes)
        add("names.bytes", statistics.nameBytes)
        add("names.skus", statistics.skuCount)
        add("names.locations", statistics.locationCount)
        add("channels.count", statistics.channelCount)
        add("reservations.granted", counters.reservationsGranted)
        add("reservations.partial", counters.reservationsPartial)
        add("reservations.refused", counters.reservationsRefused)
        add("reservations.committed", counters.reservationsCommitted)
        add("reservations.released", counters.reservationsReleased)
        add("reservations.expired", counters.reservationsExpired)
        add("reservations.held", statistics.heldReservations)
        add("reservations.remembered", statistics.rememberedReservations)
        add("holds.count", statistics.holds)
        add("queries.answered", counters.queriesAnswered)
        add("rejectionLog.newestSequence", statistics.rejectionLogNewestSequence)
        add("inbox.depth.max", statistics.inboxDepths.max() ?? 0)
        return entries
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeLE(UInt32(entries.count))
        for entry in entries {
            buffer.writeName(entry.name)
            buffer.writeLE(entry.value.typeCode)
            switch entry.value {
            case .unsigned(let value): buffer.writeLE(value)
            case .signed(let value): buffer.writeLE(value)
            }
        }
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Self {
        let count = try reader.readCount("stat count", minimumItemBytes: 10, limit: nil)
        var entries: [StatEntry] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let name = try reader.readReplyName("stat name")
            let type = try reader.read(UInt8.self, "stat type")
            switch type {
            case 0: entries.append(StatEntry(name, .unsigned(try reader.read(UInt64.self, "stat value"))))
            case 1: entries.append(StatEntry(name, .signed(try reader.read(Int64.self, "stat value"))))
            default: throw .unknownLayoutCode(field: "stat type", value: type)
            }
        }
        return StatsReply(entries: entries)
    }
}
