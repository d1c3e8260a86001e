import Foundation
import Histogram

/// Why the sale stopped.
public enum FlashSaleEnd: String, Sendable, Codable, Equatable {
    /// Every SKU was seen sold out (with `untilSoldOut`).
    case soldOut
    /// The time limit (`seconds`) passed.
    case timeLimit
}

/// Everything one run measured and checked: counts, throughput per second, latency, the background
/// traffic and the oversell check. `summary` is its JSON form, `table` its printed form, `hgrm`
/// the latency histogram in HdrHistogram's percentile-distribution format.
public struct FlashSaleResult: Sendable {
    /// The run's settings.
    public var configuration: FlashSaleConfiguration
    /// Why the sale stopped.
    public var end: FlashSaleEnd
    /// From the start to the last reply, in seconds.
    public var elapsedSeconds: Double
    /// Every buyer connection's tally, merged.
    public var buyers: BuyerTally
    /// The background traffic's tally, when there was any.
    public var background: BackgroundTally?
    /// SKUs seen sold out.
    public var soldOutSKUs: Int
    /// The oversell check.
    public var check: OversellCheck

    /// Reservations answered (granted or refused) per second.
    public var reservationsPerSecond: Double {
        elapsedSeconds > 0 ? Double(buyers.granted + buyers.refused) / elapsedSeconds : 0
    }

    /// Latency at `percentile` (0...100) in microseconds.
    public func latencyMicroseconds(atPercentile percentile: Double) -> UInt64 {
        buyers.latencyMicroseconds.valueAtPercentile(percentile)
    }

    /// The latency histogram as an `.hgrm` text (values in milliseconds, as HdrHistogram's plotter expects).
    public var hgrm: String {
        var text = ""
        buyers.latencyMicroseconds.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1000)
        return text
    }

    /// The JSON summary (keys sorted).
    public func summaryJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return try encoder.encode(FlashSaleSummary(self))
    }
}

/// The JSON form of a `FlashSaleResult`.
public struct FlashSaleSummary: Codable, Sendable, Equatable {
    /// Latency percentiles in microseconds.
    public struct Latency: Codable, Sendable, Equatable {
        /// The 50th, 90th, 99th and 99.9th percentiles and the largest latency, in microseconds.
        public var p50, p90, p99, p999, max: UInt64
        /// The mean latency in microseconds.
        public var mean: Double
        /// Latencies recorded.
        public var count: UInt64

        init(_ histogram: Histogram<UInt64>) {
            p50 = histogram.valueAtPercentile(50)
            p90 = histogram.valueAtPercentile(90)
            p99 = histogram.valueAtPercentile(99)
            p999 = histogram.valueAtPercentile(99.9)
            max = histogram.totalCount > 0 ? histogram.max : 0
            mean = histogram.totalCount > 0 ? histogram.mean : 0
            count = histogram.totalCount
        }
    }

    /// The background traffic.
    public struct Background: Codable, Sendable, Equatable {
        /// Queries answered, receipts applied, and errors (as in `BackgroundTally`).
        public var queriesAnswered, eventsApplied, errors: Int
        /// Query latency, and ingest latency per frame, from the intended send time.
        public var queryLatencyMicroseconds, ingestLatencyMicroseconds: Latency
    }

    /// The system measured (always `atpd`; tools/flashbench.sh puts it beside its baselines).
    public var system = "atpd"
    /// The run tag (names of the run's SKUs, source and reservation ids).
    public var runTag: String
    /// `open` (fixed arrival rate) or `closed`.
    public var loop: String
    /// Buyer connections, reservations in flight per connection at most, and hot SKUs.
    public var connections, depth, skus: Int
    /// Units of each SKU put on sale, and the most units one buyer asks for.
    public var stockPerSKU, maxUnitsPerBuyer: Int64
    /// Buyers arriving per second in an open loop (0: closed loop).
    public var arrivalsPerSecond: Double
    /// Whether the run was to stop once every SKU was seen sold out.
    public var untilSoldOut: Bool
    /// The time limit in seconds.
    public var secondsLimit: Double
    /// Why the run stopped.
    public var end: FlashSaleEnd
    /// From the start to the last reply, in seconds.
    public var elapsedSeconds: Double
    /// Reservations sent, granted, refused, and failed or lost (as in `BuyerTally`).
    public var attempts, granted, refused, errors: Int
    /// Reservations answered (granted or refused) per second of `elapsedSeconds`.
    public var reservationsPerSecond: Double
    /// Reservation latency (from the send, or from the intended arrival in an open loop).
    public var latencyMicroseconds: Latency
    /// Reservations answered, and granted, in each second since the start.
    public var answeredPerSecond, grantedPerSecond: [Int]
    /// SKUs seen sold out.
    public var soldOutSKUs: Int
    /// The oversell check with its per-SKU lines.
    public var check: OversellCheck
    /// Whether the check passed.
    public var checkPassed: Bool
    /// The background traffic, when there was any.
    public var background: Background?
    /// The first few error messages.
    public var errorSamples: [String]

    /// The summary of `result`.
    public init(_ result: FlashSaleResult) {
        let configuration = result.configuration
        runTag = configuration.runTag
        loop = configuration.isOpenLoop ? "open" : "closed"
        connections = configuration.connections
        depth = configuration.depth
        skus = configuration.skuCount
        stockPerSKU = configuration.stockPerSKU
        maxUnitsPerBuyer = configuration.maxUnitsPerBuyer
        arrivalsPerSecond = configuration.arrivalsPerSecond
        untilSoldOut = configuration.untilSoldOut
        secondsLimit = configuration.seconds
        end = result.end
        elapsedSeconds = result.elapsedSeconds
        attempts = result.buyers.attempts
        granted = result.buyers.granted
        refused = result.buyers.refused
        errors = result.buyers.errors
        reservationsPerSecond = result.reservationsPerSecond
        latencyMicroseconds = Latency(result.buyers.latencyMicroseconds)
        answeredPerSecond = result.buyers.answeredPerSecond
        grantedPerSecond = result.buyers.grantedPerSecond
        soldOutSKUs = result.soldOutSKUs
        check = result.check
        checkPassed = result.check.passed
        background = result.background.map {
            Background(queriesAnswered: $0.queriesAnswered, eventsApplied: $0.eventsApplied, errors: $0.errors,
                       queryLatencyMicroseconds: Latency($0.queryLatencyMicroseconds),
                       ingestLatencyMicroseconds: Latency($0.ingestLatencyMicroseconds))
        }
        errorSamples = result.buyers.errorSamples + (result.background?.errorSamples ?? [])
    }
}
