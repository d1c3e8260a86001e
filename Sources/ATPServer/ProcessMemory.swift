import ATPProtocol
import CATPSupport

/// The process's memory as its allocator and the kernel see it, like Redis's `INFO memory`: which
/// allocator serves `malloc`, the resident set, and under jemalloc its own figures and ratios.
///
/// atpd links jemalloc (Package.swift; `ATP_ALLOCATOR=glibc` builds it with glibc malloc). The
/// figures are read through CATPSupport's `atp_allocator.h`, which finds jemalloc's `mallctl` at
/// run time, so the same code runs in binaries without jemalloc (the tests, `atp`): there the
/// allocator is `.glibc`, the jemalloc figures are nil and the allocated bytes come from glibc's
/// `mallinfo2`. Reading costs a few microseconds (jemalloc) to a walk of glibc's free lists: call
/// it at scrape or `stats` time, never per request. docs/PROTOCOL.md §7.11 lists the statistics.
public struct ProcessMemory: Sendable, Equatable {
    /// Which allocator serves `malloc` in this process (`process.memory.allocator`'s code).
    public enum Allocator: UInt64, Sendable, CustomStringConvertible {
        /// The C library's malloc (glibc's ptmalloc).
        case glibc = 0
        /// jemalloc, linked into the executable (or preloaded) and bound to `malloc`.
        case jemalloc = 1

        /// "glibc" or "jemalloc".
        public var description: String {
            switch self {
            case .glibc: "glibc"
            case .jemalloc: "jemalloc"
            }
        }
    }

    /// jemalloc's own statistics, in bytes (see `atp_jemalloc_statistics` for each).
    public struct JemallocFigures: Sendable, Equatable {
        /// `stats.active`: bytes in active pages (allocated plus the free space inside them).
        public var activeBytes: UInt64
        /// `stats.resident`: bytes in resident pages the allocator maps, metadata included.
        public var residentBytes: UInt64
        /// `stats.retained`: bytes of virtual memory kept mapped but returned to the kernel.
        public var retainedBytes: UInt64
        /// `stats.mapped`: bytes in active extents the allocator maps.
        public var mappedBytes: UInt64
        /// `stats.metadata`: bytes of the allocator's own metadata.
        public var metadataBytes: UInt64

        /// Figures from their parts.
        public init(activeBytes: UInt64, residentBytes: UInt64, retainedBytes: UInt64, mappedBytes: UInt64,
                    metadataBytes: UInt64) {
            self.activeBytes = activeBytes
            self.residentBytes = residentBytes
            self.retainedBytes = retainedBytes
            self.mappedBytes = mappedBytes
            self.metadataBytes = metadataBytes
        }
    }

    /// The allocator serving `malloc`.
    public var allocator: Allocator
    /// The resident set size now (`VmRSS`), in bytes; 0 when /proc could not be read.
    public var residentBytes: UInt64
    /// The largest resident set so far (`VmHWM`), in bytes; 0 when /proc could not be read.
    public var residentPeakBytes: UInt64
    /// Bytes the program has allocated and not freed, per its allocator: jemalloc's
    /// `stats.allocated`, or glibc's `mallinfo2` `uordblks + hblkhd`; nil when unknown.
    public var allocatedBytes: UInt64?
    /// jemalloc's figures; nil unless `allocator` is `.jemalloc` and they could be read.
    public var jemalloc: JemallocFigures?

    /// Reads the figures now. Never fails: what cannot be read is nil or 0.
    public static func read() -> ProcessMemory {
        var resident: UInt64 = 0
        var peak: UInt64 = 0
        if atp_process_resident_bytes(&resident, &peak) != 0 { (resident, peak) = (0, 0) }
        var memory = ProcessMemory(allocator: atp_jemalloc_is_allocator() != 0 ? .jemalloc : .glibc,
                                   residentBytes: resident, residentPeakBytes: peak)
        switch memory.allocator {
        case .jemalloc:
            var statistics = atp_jemalloc_statistics()
            guard atp_jemalloc_read_statistics(&statistics) == 0 else { break }
            memory.allocatedBytes = statistics.allocated
            memory.jemalloc = JemallocFigures(activeBytes: statistics.active, residentBytes: statistics.resident,
                                              retainedBytes: statistics.retained, mappedBytes: statistics.mapped,
                                              metadataBytes: statistics.metadata)
        case .glibc:
            var inUse: UInt64 = 0
            var free: UInt64 = 0
            if atp_glibc_malloc_statistics(&inUse, &free) == 0 { memory.allocatedBytes = inUse }
        }
        return memory
    }

    /// jemalloc's version string when it is the allocator (e.g. "5.3.0-0-g54eaed1…"), else nil.
    public static var jemallocVersion: String? {
        atp_jemalloc_version().map { String(cString: $0) }
    }

    /// Starts jemalloc's background purging threads (`atp_jemalloc_enable_background_thread`),
    /// as Redis does, unless `MALLOC_CONF` in `environment` already says `background_thread`
    /// (the operator's word wins: `MALLOC_CONF=background_thread:false` keeps them off). Returns
    /// what was done, for the log: "on", "as MALLOC_CONF says", "unavailable (...)" or "no jemalloc".
    /// Call it once, early in atpd's start-up.
    public static func startJemallocBackgroundThreads(environment: [String: String]) -> String {
        guard atp_jemalloc_is_allocator() != 0 else { return "no jemalloc" }
        if environment["MALLOC_CONF"]?.contains("background_thread") == true { return "as MALLOC_CONF says" }
        let result = atp_jemalloc_enable_background_thread()
        return result == 0 ? "on" : "unavailable (mallctl error \(result))"
    }

    /// A value from its parts (tests; `read()` otherwise).
    public init(allocator: Allocator, residentBytes: UInt64, residentPeakBytes: UInt64,
                allocatedBytes: UInt64? = nil, jemalloc: JemallocFigures? = nil) {
        self.allocator = allocator
        self.residentBytes = residentBytes
        self.residentPeakBytes = residentPeakBytes
        self.allocatedBytes = allocatedBytes
        self.jemalloc = jemalloc
    }

    // MARK: - Ratios (Redis INFO memory)

    /// Redis's `allocator_frag_ratio`: active ÷ allocated, the free space inside the allocator's
    /// active pages. nil without jemalloc figures or allocations.
    public var allocatorFragmentationRatio: Double? {
        guard let jemalloc, let allocatedBytes, allocatedBytes > 0 else { return nil }
        return Double(jemalloc.activeBytes) / Double(allocatedBytes)
    }

    /// Redis's `allocator_rss_ratio`: the allocator's resident ÷ active, pages resident but not
    /// active (dirty pages not yet returned, metadata). nil without jemalloc figures.
    public var allocatorResidentRatio: Double? {
        guard let jemalloc, jemalloc.activeBytes > 0 else { return nil }
        return Double(jemalloc.residentBytes) / Double(jemalloc.activeBytes)
    }

    /// Redis's `mem_fragmentation_ratio`: the process's resident set ÷ the bytes allocated
    /// (everything the program's allocations cost in RAM, code and stacks included). nil when
    /// allocated bytes are unknown.
    public var fragmentationRatio: Double? {
        guard let allocatedBytes, allocatedBytes > 0, residentBytes > 0 else { return nil }
        return Double(residentBytes) / Double(allocatedBytes)
    }

    // MARK: - Statistics

    /// Whether a `stats` request with `prefix` can select a `process.memory.*` entry, so that a
    /// request for other statistics (`server.`, polled by tests and tools) does not read the
    /// figures: under glibc that is `mallinfo2`, which locks every arena and walks its free lists.
    public static func statisticsMayMatch(_ prefix: String) -> Bool {
        "process.memory.".hasPrefix(prefix) || prefix.hasPrefix("process.memory.")
    }

    /// The figures as `process.memory.*` stats entries (docs/PROTOCOL.md §7.11): ratios in
    /// thousandths (`…Permille`, 1000 = 1.0); names whose figure is unknown are left out.
    public func statEntries() -> [StatEntry] {
        var entries = [
            StatEntry("process.memory.allocator", .unsigned(allocator.rawValue)),
            StatEntry("process.memory.rssBytes", .unsigned(residentBytes)),
            StatEntry("process.memory.rssPeakBytes", .unsigned(residentPeakBytes)),
        ]
        if let allocatedBytes { entries.append(StatEntry("process.memory.allocatedBytes", .unsigned(allocatedBytes))) }
        if let jemalloc {
            entries += [
                StatEntry("process.memory.activeBytes", .unsigned(jemalloc.activeBytes)),
                StatEntry("process.memory.residentBytes", .unsigned(jemalloc.residentBytes)),
                StatEntry("process.memory.retainedBytes", .unsigned(jemalloc.retainedBytes)),
                StatEntry("process.memory.mappedBytes", .unsigned(jemalloc.mappedBytes)),
                StatEntry("process.memory.metadataBytes", .unsigned(jemalloc.metadataBytes)),
            ]
        }
        func permille(_ name: String, _ ratio: Double?) {
            if let ratio { entries.append(StatEntry(name, .unsigned(UInt64((ratio * 1000).rounded())))) }
        }
        permille("process.memory.allocatorFragmentationPermille", allocatorFragmentationRatio)
        permille("process.memory.allocatorRSSPermille", allocatorResidentRatio)
        permille("process.memory.fragmentationPermille", fragmentationRatio)
        return entries
    }
}
