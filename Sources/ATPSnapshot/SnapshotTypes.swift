import ATPLedger

/// Limits of a `SnapshotStore`, with their units in their names.
public struct SnapshotStoreConfiguration: Sendable, Equatable {
    /// Snapshots `prune()` keeps (the newest). Default 3; at least 1.
    public var keep: Int = 3
    /// The largest LMDB map a write may grow to, in bytes; past it the write fails with
    /// `SnapshotError.mapFull`. Default 256 GiB (address space only: the file is as large as the data).
    public var mapSizeBytesMax: Int = 256 << 30
    /// The map a write starts with, in bytes; nil: estimated from the image (cells × 80 bytes and
    /// the other parts, +25%). The map doubles on MDB_MAP_FULL up to `mapSizeBytesMax`.
    public var mapSizeBytesInitial: Int? = nil
    /// Entries per LMDB write transaction. Default 100,000.
    public var entriesPerTransaction: Int = 100_000

    /// The defaults.
    public init() {}
}

/// What the caller adds to a snapshot besides the image.
public struct SnapshotMetadata: Sendable, Equatable {
    /// The engine's version, recorded for audits (e.g. "atpd 0.3.0").
    public var engineVersion: String

    public init(engineVersion: String) {
        self.engineVersion = engineVersion
    }
}

/// A snapshot's identity and meta entries.
public struct SnapshotInfo: Sendable, Equatable {
    /// The snapshot id (increasing; the directory is `snapshot-<id, 20 digits>`).
    public var id: UInt64
    /// The snapshot's directory.
    public var path: String
    /// Wall-clock time of the cut, milliseconds since 1970.
    public var cutWallClockMilliseconds: Int64
    /// The engine clock at the cut.
    public var clockMilliseconds: Int64
    /// The journal positions each worker marked at the cut, by worker index.
    public var workerMarks: [UInt64]
    /// Cells in the snapshot.
    public var cellCount: Int
    /// The engine version recorded by the writer.
    public var engineVersion: String
    /// The snapshot format version.
    public var formatVersion: UInt32
    /// Shards of the engine it was taken from.
    public var shardCount: Int
    /// How that engine placed SKUs on shards (`.skuID` for format versions 1 and 2).
    public var skuPlacement: SKUPlacementScheme
    /// Size of data.mdb, in bytes.
    public var dataBytes: Int
}
