import Histogram

/// What one connection's buyers saw: counts, units granted per SKU, completions per second and a
/// latency histogram. Touched by one event loop during the run; merged once at the end.
public struct BuyerTally: Sendable {
    /// Latencies are recorded in microseconds, up to one minute.
    static let latencyMicrosecondsMax: UInt64 = 60_000_000

    /// Reservations sent.
    public var attempts = 0
    /// Reservations answered with units held.
    public var granted = 0
    /// Reservations refused (not enough sellable units for an all-or-nothing request).
    public var refused = 0
    /// Reservations answered with an error, or lost with their connection.
    public var errors = 0
    /// Units granted, per hot SKU (index as in the catalog).
    public var grantedUnitsBySKU: [Int64]
    /// Reservations answered (granted or refused), per second since the start.
    public var answeredPerSecond: [Int] = []
    /// Reservations granted, per second since the start.
    public var grantedPerSecond: [Int] = []
    /// Latency of every answered reservation, in microseconds (from the intended send time in an
    /// open loop).
    public var latencyMicroseconds = Histogram<UInt64>(highestTrackableValue: BuyerTally.latencyMicrosecondsMax,
                                                        numberOfSignificantValueDigits: .three)
    /// The last time a reply arrived, in monotonic nanoseconds (0: none).
    public var lastReplyNanoseconds: UInt64 = 0
    /// The first few error messages, for the report.
    public var errorSamples: [String] = []

    /// An empty tally for `skuCount` SKUs.
    public init(skuCount: Int) {
        grantedUnitsBySKU = Array(repeating: 0, count: skuCount)
    }

    /// Units granted over all SKUs.
    public var grantedUnits: Int64 { grantedUnitsBySKU.reduce(0, +) }

    /// Counts an answer that arrived at `nowNanoseconds` for a request meant to go out at
    /// `intendedNanoseconds`, in the second `second` of the run.
    mutating func recordAnswer(granted wasGranted: Bool, second: Int, latencyNanoseconds: UInt64, nowNanoseconds: UInt64) {
        if wasGranted { granted += 1 } else { refused += 1 }
        if second >= answeredPerSecond.count {
            answeredPerSecond.append(contentsOf: repeatElement(0, count: second + 1 - answeredPerSecond.count))
            grantedPerSecond.append(contentsOf: repeatElement(0, count: second + 1 - grantedPerSecond.count))
        }
        answeredPerSecond[second] += 1
        if wasGranted { grantedPerSecond[second] += 1 }
        _ = latencyMicroseconds.record(min(latencyNanoseconds / 1000, Self.latencyMicrosecondsMax))
        lastReplyNanoseconds = max(lastReplyNanoseconds, nowNanoseconds)
    }

    /// Counts a failed reservation and keeps its message if there are few so far.
    mutating func recordError(_ message: String) {
        errors += 1
        if errorSamples.count < 5 { errorSamples.append(message) }
    }

    /// Adds another connection's tally to this one.
    mutating func add(_ other: BuyerTally) {
        precondition(other.grantedUnitsBySKU.count == grantedUnitsBySKU.count, "tallies of different catalogs")
        attempts += other.attempts
        granted += other.granted
        refused += other.refused
        errors += other.errors
        for index in grantedUnitsBySKU.indices { grantedUnitsBySKU[index] += other.grantedUnitsBySKU[index] }
        answeredPerSecond = Self.sum(answeredPerSecond, other.answeredPerSecond)
        grantedPerSecond = Self.sum(grantedPerSecond, other.grantedPerSecond)
        latencyMicroseconds.add(other.latencyMicroseconds)
        lastReplyNanoseconds = max(lastReplyNanoseconds, other.lastReplyNanoseconds)
        errorSamples.append(contentsOf: other.errorSamples.prefix(max(0, 5 - errorSamples.count)))
    }

    private static func sum(_ a: [Int], _ b: [Int]) -> [Int] {
        (0..<max(a.count, b.count)).map { (a.indices.contains($0) ? a[$0] : 0) + (b.indices.contains($0) ? b[$0] : 0) }
    }
}
