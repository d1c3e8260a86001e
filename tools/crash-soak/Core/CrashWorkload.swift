import ATPProtocol

/// What the load sends during a cycle (docs/DURABILITY.md, "Crash test"). Every choice is drawn
/// from the cycle's seed, so a seed repeats the same operations and kill moment (thread timing
/// still varies).
public struct CrashWorkload: Sendable, CustomStringConvertible {
    /// How clients spend a cycle.
    public enum Mode: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Ingest batches (with resends), reservations of every kind, retries, commits, releases.
        case mixed
        /// Commit-then-release storm: each client reserves 2-line reservations on two shards,
        /// commits each, then releases it, so that the kill lands during releases of committed
        /// multi-line reservations.
        case storm
        /// Each cycle draws mixed (2 in 3) or storm (1 in 3) from its seed.
        case alternate

        public var description: String { rawValue }
    }

    /// The mode.
    public var mode: Mode = .mixed
    /// Share of operations that are ingest batches, in percent (mixed mode).
    public var ingestPercent = 35
    /// Of the ingest operations, the share that resend one of the source's acknowledged batches.
    public var resendPercent = 15
    /// Receives per batch.
    public var batchEvents: ClosedRange<Int> = 1...8
    /// Share of operations that reserve a new id, in percent (mixed mode).
    public var reservePercent = 35
    /// Share of operations that retry the reserve of an acknowledged id, in percent (mixed mode).
    /// The rest commit or release the client's own reservations.
    public var retryPercent = 5
    /// Of the commits and releases of held reservations, the share that commit, in percent.
    public var commitPercent = 60
    /// Share of reservations that are all-or-nothing (the rest are partial), in percent.
    public var allOrNothingPercent = 80
    /// Lines per reservation (distinct SKUs, so usually on several shards).
    public var linesPerReservation: ClosedRange<Int> = 1...3
    /// Units per reservation line.
    public var unitsPerLine: ClosedRange<Int64> = 1...4
    /// Share of reservations with a short ttl, in percent: they expire around the kill.
    public var shortTTLPercent = 20
    /// The short ttls, in milliseconds.
    public var shortTTLMilliseconds: ClosedRange<Int64> = 300...1000
    /// The ttl of the others: long enough that nothing expires during a run.
    public var longTTLMilliseconds: Int64 = 3_600_000
    /// The channel defined at the start (with the client's `setChannel`, like `atp channel set`);
    /// nil for location lines only.
    public var channel: WireChannelDefinition? = WireChannelDefinition(name: "web", bufferUnits: 1, capPercent: 90,
                                                                      locations: ["S2", "S3", "S1"])
    /// Of the reservation lines, the share through the channel, in percent (when there is one).
    public var channelLinePercent = 25

    /// The default workload.
    public init() {}

    /// The mode for the cycle whose draws come from `generator`.
    func cycleMode(using generator: inout SeededGenerator) -> Mode {
        switch mode {
        case .mixed, .storm: mode
        case .alternate: Int.random(in: 0..<3, using: &generator) == 0 ? .storm : .mixed
        }
    }

    public var description: String {
        "\(mode): ingest \(ingestPercent) % (batches of \(batchEvents), \(resendPercent) % resends), "
            + "reserve \(reservePercent) % (\(linesPerReservation) lines of \(unitsPerLine) units, \(allOrNothingPercent) % all-or-nothing, "
            + "\(shortTTLPercent) % with ttl \(shortTTLMilliseconds) ms), retry \(retryPercent) %, "
            + "the rest commit (\(commitPercent) % of held) or release"
            + (channel.map { ", \(channelLinePercent) % of lines through channel \($0.name) \($0.locations)" } ?? ", no channel")
    }
}
