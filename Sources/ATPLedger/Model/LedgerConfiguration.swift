/// Every limit and size of the ledger core, with its unit in its name and a documented default.
public struct LedgerConfiguration: Sendable, Equatable {
    /// Number of shards; a power of two. Default 64.
    public var shardCount: Int = 64
    /// How SKUs map to shards: by a hash of the name (default, `.nameHash`), or by id (`.skuID`, the
    /// scheme of data directories written before name placement; recovery keeps a directory's own).
    public var skuPlacement: SKUPlacementScheme = .nameHash
    /// Worker threads; each owns shards `i, i + workerCount, ...`. Default: the machine's cores, at most
    /// `shardCount`.
    public var workerCount: Int = max(1, min(64, systemCoreCount()))
    /// External requests a worker's inbox holds before `submit` reports back-pressure. Default 4,096.
    public var inboxCapacityRequests: Int = 4096
    /// Shard-to-shard messages a worker's internal ring holds before spilling to its overflow list.
    public var internalRingCapacityMessages: Int = 65_536
    /// Spin iterations a worker makes over its empty inboxes before it parks. Default 500 (a few µs):
    /// longer spins lower wake-up latency on a dedicated machine but steal CPU from I/O threads on a
    /// small one.
    public var workerSpinIterations: Int = 500
    /// Initial cell capacity of each shard (grows by doubling). Default 1,024.
    public var initialCellsPerShard: Int = 1024
    /// Sequences each (source, shard) dedup window spans; a power of two >= 64. Default 65,536.
    public var dedupWindowSequences: Int = 65_536
    /// Rejected events kept for read-back (oldest dropped first). Default 10,000.
    public var rejectionLogCapacity: Int = 10_000
    /// Largest quantity, delta or absolute value one event or reservation line may carry. Default 1e9.
    public var quantityMax: Int64 = 1_000_000_000
    /// Lines one reservation may carry. Default 1,000.
    public var reservationLinesMax: Int = 1000
    /// Longest reservation time to live, in milliseconds. Default 7 days.
    public var reservationTTLMillisecondsMax: Int64 = 7 * 24 * 3600 * 1000
    /// How long the outcome of a finished reservation (released, expired, refused, committed) is
    /// remembered for late retries, in milliseconds. Default 24 hours.
    public var reservationOutcomeRetentionMilliseconds: Int64 = 24 * 3600 * 1000
    /// Finished reservation outcomes remembered per shard at most (oldest forgotten first). Default 1M.
    public var reservationOutcomesRememberedMaxPerShard: Int = 1_000_000

    /// The defaults.
    public init() {}

    /// The placement of SKUs this configuration describes.
    public var placement: SKUPlacement { SKUPlacement(scheme: skuPlacement, shardCount: shardCount) }

    /// Throws when a value is out of range, naming the key, the value and why.
    public func validate() throws(ConfigurationError) {
        func require(_ ok: Bool, _ key: String, _ value: Any, _ why: String) throws(ConfigurationError) {
            if !ok { throw ConfigurationError(key: key, value: "\(value)", reason: why) }
        }
        try require(shardCount >= 1 && shardCount <= 4096 && shardCount.nonzeroBitCount == 1, "shardCount", shardCount,
                    "must be a power of two from 1 to 4096")
        try require(workerCount >= 1 && workerCount <= shardCount, "workerCount", workerCount,
                    "must be from 1 to shardCount")
        try require(inboxCapacityRequests >= 2 && inboxCapacityRequests.nonzeroBitCount == 1, "inboxCapacityRequests",
                    inboxCapacityRequests, "must be a power of two >= 2")
        try require(internalRingCapacityMessages >= 2 && internalRingCapacityMessages.nonzeroBitCount == 1,
                    "internalRingCapacityMessages", internalRingCapacityMessages, "must be a power of two >= 2")
        try require(workerSpinIterations >= 0, "workerSpinIterations", workerSpinIterations, "must be >= 0")
        try require(initialCellsPerShard >= 1, "initialCellsPerShard", initialCellsPerShard, "must be >= 1")
        try require(dedupWindowSequences >= 64 && dedupWindowSequences <= 1 << 24
                    && dedupWindowSequences.nonzeroBitCount == 1, "dedupWindowSequences", dedupWindowSequences,
                    "must be a power of two from 64 to 16,777,216")
        try require(rejectionLogCapacity >= 1, "rejectionLogCapacity", rejectionLogCapacity, "must be >= 1")
        try require(quantityMax >= 1 && quantityMax <= Int64(Int32.max), "quantityMax", quantityMax,
                    "must be from 1 to 2,147,483,647")
        try require(reservationLinesMax >= 1, "reservationLinesMax", reservationLinesMax, "must be >= 1")
        try require(reservationTTLMillisecondsMax >= 1, "reservationTTLMillisecondsMax", reservationTTLMillisecondsMax,
                    "must be >= 1")
        try require(reservationOutcomeRetentionMilliseconds >= 0, "reservationOutcomeRetentionMilliseconds",
                    reservationOutcomeRetentionMilliseconds, "must be >= 0")
        try require(reservationOutcomesRememberedMaxPerShard >= 1, "reservationOutcomesRememberedMaxPerShard",
                    reservationOutcomesRememberedMaxPerShard, "must be >= 1")
    }
}

/// A configuration value that was refused.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The configuration key.
    public var key: String
    /// The value given, as text.
    public var value: String
    /// Why it was refused.
    public var reason: String

    public init(key: String, value: String, reason: String) {
        self.key = key
        self.value = value
        self.reason = reason
    }

    public var description: String { "invalid configuration: \(key) = \(value): \(reason)" }
}
