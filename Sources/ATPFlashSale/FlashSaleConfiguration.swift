import ATPLedger

/// Everything a flash-sale run needs: where the server is, how many buyers, how much stock, how the
/// buyers arrive and when the run stops. Every limit has its unit in its name and a documented
/// default; `validate()` says which value is out of range and why.
public struct FlashSaleConfiguration: Sendable, Equatable {
    /// The server's address. Default 127.0.0.1.
    public var host: String = "127.0.0.1"
    /// The server's TCP port. Default 7411.
    public var port: Int = 7411
    /// The token; it needs the reserve, query and ingest roles (`demo-admin` has them). Default `demo-admin`.
    public var token: String = "demo-admin"
    /// Buyer connections. Default 256.
    public var connections: Int = 256
    /// Reservations each connection keeps in flight at most (pipelining depth). Default 1.
    public var depth: Int = 1
    /// Hot SKUs on sale. Default 10.
    public var skuCount: Int = 10
    /// Units of each hot SKU received before the sale starts. Default 5,000.
    public var stockPerSKU: Int64 = 5000
    /// Each buyer asks for 1...maxUnitsPerBuyer units of one SKU, all or nothing. Default 4.
    public var maxUnitsPerBuyer: Int64 = 4
    /// Open loop: buyers arriving per second over all connections, each latency measured from the
    /// buyer's intended arrival time (so queueing is measured, not hidden). 0: closed loop, each
    /// connection sends its next reservation as soon as a reply frees a slot. Default 0.
    public var arrivalsPerSecond: Double = 0
    /// The longest the sale runs, in seconds. Default 10.
    public var seconds: Double = 10
    /// Stop as soon as every SKU is known to be sold out (a 1-unit reservation of it was refused);
    /// `seconds` still bounds the run. Default false.
    public var untilSoldOut: Bool = false
    /// Background single-cell availability queries per second (shoppers refreshing the page),
    /// on a connection of their own. Default 0.
    public var backgroundQueriesPerSecond: Double = 0
    /// Background stock events per second (receipts of 1 unit of a hot SKU at another location, so
    /// they share the hot SKUs' shards without changing the stock on sale), on a connection of their
    /// own. Default 0.
    public var backgroundEventsPerSecond: Double = 0
    /// Client event-loop threads the connections are spread over. Default 1.
    public var clientThreads: Int = 1
    /// Names this run's SKUs, source and reservation ids, so that runs against the same server never
    /// share stock or deduplication state. Letters, digits and `-`, 1 to 24 bytes. Default: from the
    /// clock and a random number.
    public var runTag: String = FlashSaleConfiguration.makeRunTag()
    /// The location the stock on sale sits at. Default `FLASH-DC`.
    public var location: String = "FLASH-DC"
    /// The location background receipts go to. Default `FLASH-STORE`.
    public var backgroundLocation: String = "FLASH-STORE"
    /// How long each granted hold lasts, in milliseconds: long enough that nothing expires during the
    /// run and the final read-back still sees every hold. Default 1 hour.
    public var holdTTLMilliseconds: Int64 = 3_600_000
    /// Seeds the buyers' choices (each connection draws from `seed + its index`). Default 1.
    public var seed: UInt64 = 1

    /// Hot SKUs allowed at most (they are set up and read back in one frame each). 10,000.
    public static let skuCountMax = 10_000
    /// Units per SKU allowed at most (the engine's cell buckets are 32-bit). 1,000,000,000.
    public static let stockPerSKUMax: Int64 = 1_000_000_000
    /// Connections allowed at most (the server's default `connectionsMax` is 10,000). 10,000.
    public static let connectionsMax = 10_000
    /// Pipelining depth allowed at most (the server's default `inFlightRequestsMax`). 1,024.
    public static let depthMax = 1024
    /// Longest run, in seconds. One hour.
    public static let secondsMax: Double = 3600
    /// Longest run tag, in bytes (keeps reservation ids under their 64-byte limit).
    public static let runTagBytesMax = 24

    /// The defaults.
    public init() {}

    /// Whether buyers arrive at a fixed rate (open loop) rather than as replies free slots.
    public var isOpenLoop: Bool { arrivalsPerSecond > 0 }

    /// Throws `FlashSaleError.invalidConfiguration` naming the first value out of range.
    public func validate() throws(FlashSaleError) {
        func require(_ ok: Bool, _ option: String, _ value: Any, _ why: String) throws(FlashSaleError) {
            if !ok { throw .invalidConfiguration(option: option, value: "\(value)", reason: why) }
        }
        try require(!host.isEmpty, "--host", host, "must not be empty")
        try require((1...65535).contains(port), "--port", port, "must be from 1 to 65535")
        try require((1...Self.connectionsMax).contains(connections), "--connections", connections,
                    "must be from 1 to \(Self.connectionsMax)")
        try require((1...Self.depthMax).contains(depth), "--depth", depth, "must be from 1 to \(Self.depthMax)")
        try require((1...Self.skuCountMax).contains(skuCount), "--skus", skuCount, "must be from 1 to \(Self.skuCountMax)")
        try require((1...Self.stockPerSKUMax).contains(stockPerSKU), "--stock-per-sku", stockPerSKU,
                    "must be from 1 to \(Self.stockPerSKUMax)")
        try require((1...Self.stockPerSKUMax).contains(maxUnitsPerBuyer), "--max-units", maxUnitsPerBuyer,
                    "must be from 1 to \(Self.stockPerSKUMax)")
        try require(arrivalsPerSecond.isFinite && arrivalsPerSecond >= 0 && arrivalsPerSecond <= 100_000_000, "--rate",
                    arrivalsPerSecond, "must be from 0 (closed loop) to 100,000,000 per second")
        try require(seconds.isFinite && seconds > 0 && seconds <= Self.secondsMax, "--seconds", seconds,
                    "must be more than 0 and at most \(Int(Self.secondsMax))")
        try require(backgroundQueriesPerSecond.isFinite && (0...1_000_000).contains(backgroundQueriesPerSecond),
                    "--background-queries-per-second", backgroundQueriesPerSecond, "must be from 0 to 1,000,000")
        try require(backgroundEventsPerSecond.isFinite && (0...1_000_000).contains(backgroundEventsPerSecond),
                    "--background-ingest-per-second", backgroundEventsPerSecond, "must be from 0 to 1,000,000")
        try require((1...64).contains(clientThreads), "--client-threads", clientThreads, "must be from 1 to 64")
        try require(Self.isValidRunTag(runTag), "--run-tag", runTag,
                    "must be 1 to \(Self.runTagBytesMax) letters, digits or '-'")
        try require(Self.isValidName(location), "--location", location, "must be 1 to 64 bytes")
        try require(Self.isValidName(backgroundLocation) && backgroundLocation != location, "--background-location",
                    backgroundLocation, "must be 1 to 64 bytes and differ from --location")
        try require(holdTTLMilliseconds >= 1, "--hold-ttl-ms", holdTTLMilliseconds, "must be at least 1")
    }

    /// A fresh run tag: the clock in milliseconds and a random number, both in base 36.
    public static func makeRunTag() -> String {
        let milliseconds = UInt64(max(0, wallClockMilliseconds()))
        return String(milliseconds, radix: 36).uppercased() + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 36).uppercased()
    }

    static func isValidRunTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        return (1...runTagBytesMax).contains(bytes.count) && bytes.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D
        }
    }

    static func isValidName(_ name: String) -> Bool { (1...64).contains(name.utf8.count) }
}
