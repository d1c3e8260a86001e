import ATPClient
import ATPProtocol
import Foundation
import ATPTestSupport
import Testing

/// atpd's allocator, checked on a real atpd process: the one `swift build` made next to this test
/// binary. It links jemalloc (Package.swift), so jemalloc must be mapped into the process, report
/// itself in `stats` and `/metrics`, and give figures that hold together. A build made with
/// `ATP_ALLOCATOR=glibc` is checked the other way round when the tests run with the same variable
/// (`ATP_ALLOCATOR=glibc swift test`). This test binary itself keeps glibc's malloc
/// (ATPServerTests' ProcessMemoryTests).
@Suite struct AllocatorProcessTests {
    /// The allocator the build under test chose, as Package.swift reads it.
    static let expectsJemalloc = ProcessInfo.processInfo.environment["ATP_ALLOCATOR"] != "glibc"

    /// The atpd executable built next to this test binary.
    static var atpdPath: String? {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("atpd").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    /// A running atpd (in memory, free ports) and the ports it announced.
    struct Atpd {
        let process: Process
        let port: Int
        let metricsPort: Int
        /// What atpd printed up to its announcement (the `starting` line among it).
        let log: String
    }

    /// Starts atpd with a metrics listener on free ports; waits (at most 20 s) until it has said
    /// on which.
    static func start() throws -> Atpd {
        let started = try AtpdProcess.start(
            try #require(atpdPath, "atpd is built next to the tests"),
            arguments: ["--port", "0", "--metrics-port", "0", "--in-memory", "--shards", "4", "--workers", "1"],
            environment: ["ATPD_TOKENS": "stats:query:stats-token"]
        ) { text -> (port: Int, metricsPort: Int)? in
            // "metrics=http://127.0.0.1:41234/metrics" and "listening address=[IPv4]127.0.0.1/127.0.0.1:46515"
            guard let metrics = text.firstMatch(of: /metrics=http:\/\/[^ ]*:(\d+)\/metrics/), let metricsPort = Int(metrics.1),
                  let listening = text.firstMatch(of: /\blistening address=[^\n]*:(\d+)\n/), let port = Int(listening.1)
            else { return nil }
            return (port, metricsPort)
        }
        return Atpd(process: started.process, port: started.announcement.port, metricsPort: started.announcement.metricsPort,
                    log: started.text)
    }

    /// In this test binary (glibc) /metrics names glibc and registers none of jemalloc's families.
    @Test func inProcessMetricsNameGlibcAndNoJemallocFamily() throws {
        let fixture = try OperationsFixture()
        let exposition = try fixture.scrape()
        #expect(exposition.value("atp_memory_allocator_info", ["allocator": "glibc", "version": "system"]) == 1)
        #expect((exposition.value("atp_memory_resident_bytes") ?? 0) > 0)
        #expect((exposition.value("atp_memory_allocated_bytes") ?? 0) > 0)
        #expect((exposition.value("atp_memory_fragmentation_ratio") ?? 0) > 0)
        for family in ["atp_memory_allocator_active_bytes", "atp_memory_allocator_resident_bytes",
                       "atp_memory_allocator_fragmentation_ratio", "atp_memory_allocator_rss_ratio"] {
            #expect(exposition.types[family] == nil, "\(family) is not exported without jemalloc")
        }
    }

    @Test func atpdRunsOnTheAllocatorItWasBuiltWith() async throws {
        let atpd = try Self.start()
        defer { atpd.process.terminate(); atpd.process.waitUntilExit() }

        // The shared object is mapped into the running process (what ldd promises, checked live).
        let maps = try String(contentsOfFile: "/proc/\(atpd.process.processIdentifier)/maps", encoding: .utf8)
        #expect(maps.contains("/libjemalloc.so") == Self.expectsJemalloc, "libjemalloc in /proc/PID/maps")

        // The starting line names the allocator; under jemalloc its background purging threads run
        // (unless the environment's MALLOC_CONF decides).
        #expect(atpd.log.contains("allocator=\(Self.expectsJemalloc ? "jemalloc" : "glibc")"), "\(atpd.log)")
        if Self.expectsJemalloc && ProcessInfo.processInfo.environment["MALLOC_CONF"] == nil {
            #expect(atpd.log.contains("allocatorBackgroundPurge=on"), "\(atpd.log)")
        }

        let client = try await ATPConnection.connect(port: atpd.port, token: "stats-token")
        var stats: [String: UInt64] = [:]
        for entry in try await client.stats(prefix: "process.memory.") {
            if case .unsigned(let value) = entry.value { stats[entry.name] = value }
        }
        await client.close()
        let allocated = stats["process.memory.allocatedBytes"] ?? 0
        #expect(allocated > 0, "\(stats)")
        #expect((stats["process.memory.rssBytes"] ?? 0) > 0, "\(stats)")
        if Self.expectsJemalloc {
            #expect(stats["process.memory.allocator"] == 1, "atpd says jemalloc: \(stats)")
            let active = stats["process.memory.activeBytes"] ?? 0
            let resident = stats["process.memory.residentBytes"] ?? 0
            #expect(active >= allocated && resident >= allocated, "\(stats)")
            #expect((stats["process.memory.mappedBytes"] ?? 0) >= active, "\(stats)")
            #expect((stats["process.memory.metadataBytes"] ?? 0) > 0, "\(stats)")
            #expect((stats["process.memory.allocatorFragmentationPermille"] ?? 0) >= 1000, "\(stats)")
        } else {
            #expect(stats["process.memory.allocator"] == 0, "atpd says glibc: \(stats)")
            #expect(stats["process.memory.activeBytes"] == nil, "\(stats)")
        }

        // The same through Prometheus.
        let answer = try HTTPAnswer.exchange(port: atpd.metricsPort,
                                             request: "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(answer.status == 200)
        let exposition = Exposition(answer.body)
        let allocator = Self.expectsJemalloc ? "jemalloc" : "glibc"
        #expect(exposition.text.contains("atp_memory_allocator_info{allocator=\"\(allocator)\""), "\(exposition.text)")
        #expect((exposition.value("atp_memory_allocated_bytes") ?? 0) > 0)
        #expect((exposition.types["atp_memory_allocator_active_bytes"] != nil) == Self.expectsJemalloc)
        if Self.expectsJemalloc {
            #expect((exposition.value("atp_memory_allocator_fragmentation_ratio") ?? 0) >= 1)
            #expect((exposition.value("atp_memory_allocator_resident_bytes") ?? 0) > 0)
            // The dashboard's memory panels read what a jemalloc atpd exports.
            let used = DashboardTests.queries(try DashboardTests.dashboard())
                .reduce(into: Set<String>()) { $0.formUnion(DashboardTests.metricNames(in: $1)) }
            let memory = used.filter { $0.hasPrefix("atp_memory_") }
            #expect(memory.contains("atp_memory_allocator_active_bytes"))
            for name in memory.sorted() {
                #expect(exposition.types[name] != nil, "the dashboard reads \(name), which atpd does not export")
            }
        }
    }
}
