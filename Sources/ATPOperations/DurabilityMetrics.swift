import ATPDurability
import Foundation

/// The journal and snapshot series of a durable atpd, read at every scrape.
public enum DurabilityMetrics {
    /// Registers a collector: snapshot age and size, snapshots written and failed, and per journal
    /// stream the LSNs appended and durable (their difference is the records waiting for a sync).
    public static func register(_ ledger: DurableLedger, in metrics: ATPMetrics) {
        metrics.addCollector { metrics in
            let statistics = ledger.snapshotStatistics
            if statistics.lastCutWallClockMilliseconds > 0 {
                let age = Date().timeIntervalSince1970 - Double(statistics.lastCutWallClockMilliseconds) / 1000
                metrics.setGauge(.snapshotAgeSeconds, to: max(0, age))
                metrics.setGauge(.snapshotBytes, to: Double(statistics.lastSizeBytes))
            }
            metrics.setCounter(.snapshotsWritten, to: statistics.written)
            metrics.setCounter(.snapshotsFailed, to: statistics.failed)
            for (index, position) in ledger.journalPositions.enumerated() {
                metrics.setGauge(.journalAppendedLSN, labels: [("stream", "\(index)")], to: Double(position.appended))
                metrics.setGauge(.journalDurableLSN, labels: [("stream", "\(index)")], to: Double(position.durable))
            }
        }
    }
}

extension MetricName {
    /// Snapshots written by this process.
    public static let snapshotsWritten = MetricName("atp_snapshots_written_total", help: "Snapshots written.")
    /// Snapshots that failed (disk or map full, cut timed out, journal failed).
    public static let snapshotsFailed = MetricName("atp_snapshots_failed_total", help: "Snapshots that failed.")
    /// Newest LSN appended to a journal stream.
    public static let journalAppendedLSN = MetricName("atp_journal_appended_lsn", help: "Newest journal record appended, per stream.")
    /// Newest LSN durable in a journal stream.
    public static let journalDurableLSN = MetricName("atp_journal_durable_lsn", help: "Newest journal record durable, per stream.")
}
