/// A metric family atpd exports: its Prometheus name (unit last, `_total` for counters) and help.
/// One table, so that a name always comes with the same help text (the registry insists).
public struct MetricName: Sendable, Hashable {
    /// The Prometheus name.
    public let name: String
    /// The `# HELP` text.
    public let help: String

    /// A family from its parts (for metrics added by other modules).
    public init(_ name: String, help: String) {
        self.name = name
        self.help = help
    }

    // Events
    public static let eventsApplied = MetricName("atp_events_applied_total", help: "Stock events applied, by kind.")
    public static let eventsRejected = MetricName("atp_events_rejected_total", help: "Stock events rejected, by reason.")
    public static let eventsDuplicates = MetricName("atp_events_duplicates_total",
                                                    help: "Duplicate events dropped (source and sequence already applied).")
    public static let exceptionUnits = MetricName("atp_exception_units_total",
                                                  help: "Units of decrements past 0 not applied, by floored bucket.")
    public static let sourceLastEventAgeSeconds = MetricName(
        "atp_source_last_event_age_seconds",
        help: "Inventory freshness: seconds since an event of this source was last applied.")
    // Reservations
    public static let reservations = MetricName("atp_reservations_total",
                                                help: "Reservation decisions by outcome (granted, partial, refused, committed, released, expired).")
    public static let reservationsHeld = MetricName("atp_reservations_held", help: "Reservations held now.")
    public static let holds = MetricName("atp_holds", help: "Hold records on cells (held and committed reservations).")
    // Queries
    public static let queryItems = MetricName("atp_query_items_total", help: "Query items answered (each item of a batch counts one).")
    public static let queryDurationSeconds = MetricName(
        "atp_query_duration_seconds",
        help: "Query requests from the read that brought them to their encoded reply, by kind of item.")
    // Sizes
    public static let cells = MetricName("atp_cells", help: "Cells (location, SKU) in the ledger.")
    public static let cellsShort = MetricName("atp_cells_short", help: "Cells whose claims exceed their good units.")
    public static let cellBytes = MetricName("atp_cell_bytes", help: "Bytes of cell buffers and indexes.")
    public static let nameBytes = MetricName("atp_name_bytes", help: "Bytes of the name tables.")
    public static let skus = MetricName("atp_skus", help: "SKUs known.")
    public static let locations = MetricName("atp_locations", help: "Locations known.")
    public static let channels = MetricName("atp_channels", help: "Channels defined.")
    // Shards
    public static let inboxDepth = MetricName("atp_shard_inbox_depth", help: "Requests waiting in a shard worker's inbox.")
    public static let applyLagSeconds = MetricName(
        "atp_shard_apply_lag_seconds",
        help: "Time a probe request waited in a shard worker's inbox before it ran, measured at the scrape.")
    // Server
    public static let startTimeSeconds = MetricName("atp_start_time_seconds", help: "When atpd started, seconds since 1970.")
    public static let ready = MetricName("atp_ready", help: "1 when every readiness condition holds (see /readyz), else 0.")
    public static let connectionsOpen = MetricName("atp_connections_open", help: "Protocol connections open now.")
    public static let connectionsAccepted = MetricName("atp_connections_accepted_total", help: "Protocol connections accepted.")
    public static let connectionsRefused = MetricName("atp_connections_refused_total",
                                                      help: "Protocol connections refused with tooManyConnections.")
    public static let framesReceived = MetricName("atp_frames_received_total", help: "Protocol frames decoded.")
    public static let framesSent = MetricName("atp_frames_sent_total",
                                              help: "Protocol frames sent, by opcode and outcome (ok, or the error code's name).")
    public static let requestsInFlight = MetricName("atp_requests_in_flight", help: "Requests read and not yet answered.")
    public static let readPauses = MetricName("atp_read_pauses_total",
                                              help: "Times a connection stopped reading (back-pressure).")
    public static let inboxFullRetries = MetricName("atp_inbox_full_retries_total",
                                                    help: "Requests retried because a shard inbox was full.")
    public static let inboundBufferedBytes = MetricName("atp_inbound_buffered_bytes",
                                                        help: "Bytes held for input not yet decoded, all connections.")
    public static let scrapeDurationSeconds = MetricName("atp_scrape_duration_seconds",
                                                         help: "Time the last scrape took to gather its values.")
    // Process memory (ProcessMemory: like Redis's INFO memory)
    public static let memoryAllocator = MetricName(
        "atp_memory_allocator_info",
        help: "1, labelled with the allocator serving malloc (allocator=\"jemalloc\" or \"glibc\") and its version.")
    public static let memoryResidentBytes = MetricName("atp_memory_resident_bytes",
                                                       help: "The process's resident set size (VmRSS).")
    public static let memoryResidentPeakBytes = MetricName("atp_memory_resident_peak_bytes",
                                                           help: "The process's largest resident set so far (VmHWM).")
    public static let memoryAllocatedBytes = MetricName(
        "atp_memory_allocated_bytes",
        help: "Bytes allocated and not freed, per the allocator (jemalloc stats.allocated; glibc mallinfo2 uordblks + hblkhd).")
    public static let memoryAllocatorActiveBytes = MetricName(
        "atp_memory_allocator_active_bytes", help: "jemalloc stats.active: bytes in the allocator's active pages.")
    public static let memoryAllocatorResidentBytes = MetricName(
        "atp_memory_allocator_resident_bytes", help: "jemalloc stats.resident: bytes in resident pages the allocator maps.")
    public static let memoryAllocatorRetainedBytes = MetricName(
        "atp_memory_allocator_retained_bytes",
        help: "jemalloc stats.retained: bytes of virtual memory kept mapped but returned to the kernel.")
    public static let memoryAllocatorMappedBytes = MetricName(
        "atp_memory_allocator_mapped_bytes", help: "jemalloc stats.mapped: bytes in active extents the allocator maps.")
    public static let memoryAllocatorMetadataBytes = MetricName(
        "atp_memory_allocator_metadata_bytes", help: "jemalloc stats.metadata: bytes of the allocator's own metadata.")
    public static let memoryAllocatorFragmentationRatio = MetricName(
        "atp_memory_allocator_fragmentation_ratio",
        help: "jemalloc active / allocated (Redis allocator_frag_ratio).")
    public static let memoryAllocatorResidentRatio = MetricName(
        "atp_memory_allocator_rss_ratio", help: "jemalloc resident / active (Redis allocator_rss_ratio).")
    public static let memoryFragmentationRatio = MetricName(
        "atp_memory_fragmentation_ratio",
        help: "Process resident set / bytes allocated (Redis mem_fragmentation_ratio).")
    // Durability (registered by the journal and snapshot code when it is wired in).
    public static let journalAppendDurationSeconds = MetricName(
        "atp_journal_append_duration_seconds", help: "Journal appends, from submit to written.")
    public static let journalFsyncDurationSeconds = MetricName("atp_journal_fsync_duration_seconds",
                                                               help: "Journal fsync calls.")
    public static let snapshotDurationSeconds = MetricName("atp_snapshot_duration_seconds", help: "Snapshots, from cut to synced.")
    public static let snapshotAgeSeconds = MetricName("atp_snapshot_age_seconds", help: "Seconds since the last snapshot finished.")
    public static let snapshotBytes = MetricName("atp_snapshot_bytes", help: "Size of the last snapshot.")

    /// Buckets for the duration histograms swift-metrics `Timer`s create (journal and snapshots).
    public static let durationBuckets: [String: [Duration]] = [
        journalAppendDurationSeconds.name: microsecondsToSecond,
        journalFsyncDurationSeconds.name: microsecondsToSecond,
        snapshotDurationSeconds.name: [.milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500),
                                       .seconds(1), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300)],
    ]

    /// 10 µs to 1 s.
    private static let microsecondsToSecond: [Duration] = [
        .microseconds(10), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
    ]
}
