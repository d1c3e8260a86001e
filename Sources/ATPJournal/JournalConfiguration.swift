/// When a journal record counts as durable, i.e. when its `whenDurable` completion runs.
/// docs/DURABILITY.md says exactly what each mode can lose on a process crash and on power loss.
public enum JournalDurability: Sendable, Equatable, CustomStringConvertible {
    /// Completions run after the `fdatasync(2)` that covers the record (and, for a new segment, after
    /// the segment file and its directory entry were synced). Survives power loss. The default.
    case sync
    /// Completions run once the record is written to the OS (`write(2)` returned); the flusher calls
    /// `fdatasync(2)` every `milliseconds`. Survives a process crash; power loss can take the last
    /// `milliseconds` of acknowledged records.
    case interval(milliseconds: Int)
    /// Completions run once the record is written to the OS; `fdatasync(2)` only at `close()`.
    /// Survives a process crash; power loss can take everything since the last close.
    case none

    /// `sync`, `interval(<ms>ms)` or `none`.
    public var description: String {
        switch self {
        case .sync: "sync"
        case .interval(let milliseconds): "interval(\(milliseconds)ms)"
        case .none: "none"
        }
    }
}

/// Every limit of one journal stream, with its unit in its name and a documented default.
public struct JournalConfiguration: Sendable, Equatable {
    /// When records count as durable. Default `.sync`.
    public var durability: JournalDurability = .sync
    /// A segment file is closed and a new one started before a record that would take it past this
    /// size (header included). A record larger than this gets a segment of its own. Default 64 MiB.
    public var segmentBytesMax: Int = 64 << 20
    /// Appended bytes (record headers included) not yet handed to the OS that a stream holds at most;
    /// an `append` that would go past it returns `.full`. Preallocated once per stream. Default 8 MiB.
    public var bufferedBytesMax: Int = 8 << 20
    /// Largest payload one record may carry. Must leave room for the record header in
    /// `bufferedBytesMax`. Default 1 MiB.
    public var recordPayloadBytesMax: Int = 1 << 20

    /// The defaults.
    public init() {}

    /// The defaults with another durability mode.
    public init(durability: JournalDurability) {
        self.durability = durability
    }

    /// The longest `interval` accepted, in milliseconds (one hour).
    public static let intervalMillisecondsMax = 3_600_000

    /// Throws `JournalError.invalidConfiguration` naming the key, the value and the allowed range.
    public func validate() throws(JournalError) {
        func require(_ ok: Bool, _ key: String, _ value: Any, _ reason: String) throws(JournalError) {
            if !ok { throw JournalError.invalidConfiguration(key: key, value: "\(value)", reason: reason) }
        }
        if case .interval(let milliseconds) = durability {
            try require(milliseconds >= 1 && milliseconds <= Self.intervalMillisecondsMax, "durability",
                        durability, "the interval must be from 1 to \(Self.intervalMillisecondsMax) ms")
        }
        let smallestSegment = SegmentHeader.bytes + RecordHeader.bytes
        try require(segmentBytesMax >= smallestSegment && segmentBytesMax <= Int(Int32.max), "segmentBytesMax",
                    segmentBytesMax, "must be from \(smallestSegment) to \(Int32.max)")
        try require(recordPayloadBytesMax >= 1 && recordPayloadBytesMax <= Int(Int32.max), "recordPayloadBytesMax",
                    recordPayloadBytesMax, "must be from 1 to \(Int32.max)")
        try require(bufferedBytesMax >= RecordHeader.bytes + recordPayloadBytesMax && bufferedBytesMax <= 1 << 34,
                    "bufferedBytesMax", bufferedBytesMax,
                    "must hold one largest record (\(RecordHeader.bytes) + recordPayloadBytesMax bytes) and be at most 16 GiB")
    }
}
