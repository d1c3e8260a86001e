import ATPServer

/// Renders the query latency histogram (kept by the server's event loops as plain bucket counts)
/// in the Prometheus text format, after the registry's own families.
enum QueryLatencyText {
    /// Appends `atp_query_duration_seconds` with one series per query kind: cumulative `_bucket`
    /// lines (`le` in seconds, then `+Inf`), `_sum` in seconds and `_count`.
    static func append(_ snapshot: RequestMetricsSnapshot, to text: inout [UInt8]) {
        let name = MetricName.queryDurationSeconds.name
        var lines = "# HELP \(name) \(MetricName.queryDurationSeconds.help)\n# TYPE \(name) histogram\n"
        let bounds = RequestMetrics.latencyBucketUpperBoundsNanoseconds
        for kind in QueryRequestKind.allCases {
            let buckets = snapshot.queryLatencyBuckets[kind.rawValue]
            var cumulative: UInt64 = 0
            for (index, count) in buckets.enumerated() {
                cumulative &+= count
                let bound = index < bounds.count ? "\(Double(bounds[index]) / 1e9)" : "+Inf"
                lines += "\(name)_bucket{kind=\"\(kind.label)\",le=\"\(bound)\"} \(cumulative)\n"
            }
            let sumSeconds = Double(snapshot.queryLatencySumNanoseconds[kind.rawValue]) / 1e9
            lines += "\(name)_sum{kind=\"\(kind.label)\"} \(sumSeconds)\n"
            lines += "\(name)_count{kind=\"\(kind.label)\"} \(cumulative)\n"
        }
        text.append(contentsOf: lines.utf8)
    }
}
