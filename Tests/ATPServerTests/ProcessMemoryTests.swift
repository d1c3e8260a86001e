import ATPClient
import ATPProtocol
import ATPServer
import Testing

/// ProcessMemory in a binary that does not link jemalloc (this test binary keeps glibc's malloc):
/// it says glibc, reports no jemalloc figure and does not crash; the ratios follow Redis's INFO
/// memory. atpd's own allocator is checked on a real atpd process (ATPOperationsTests'
/// AllocatorProcessTests).
@Suite struct ProcessMemoryTests {
    @Test func theTestBinaryReportsGlibcAndNoJemallocFigures() {
        let memory = ProcessMemory.read()
        #expect(memory.allocator == .glibc)
        #expect(memory.jemalloc == nil)
        #expect(ProcessMemory.jemallocVersion == nil)
        #expect(memory.allocatorFragmentationRatio == nil && memory.allocatorResidentRatio == nil)
        #expect(memory.residentBytes > 0 && memory.residentPeakBytes >= memory.residentBytes, "\(memory)")
        // glibc's mallinfo2: this process has allocated something.
        #expect((memory.allocatedBytes ?? 0) > 0, "\(memory)")
        let names = memory.statEntries().map(\.name)
        #expect(names == ["process.memory.allocator", "process.memory.rssBytes", "process.memory.rssPeakBytes",
                          "process.memory.allocatedBytes", "process.memory.fragmentationPermille"])
        #expect(memory.statEntries().first?.value == .unsigned(0))
    }

    @Test func readingFromManyThreadsAtOnceIsSafe() async {
        await withTaskGroup(of: ProcessMemory.Allocator.self) { group in
            for _ in 0..<8 { group.addTask { ProcessMemory.read().allocator } }
            for await allocator in group { #expect(allocator == .glibc) }
        }
    }

    /// Redis's ratios: allocator_frag_ratio = active ÷ allocated, allocator_rss_ratio = resident ÷
    /// active, mem_fragmentation_ratio = process RSS ÷ allocated; in stats as thousandths.
    @Test func ratiosAreRedisOnesAndTravelInThousandths() {
        let figures = ProcessMemory.JemallocFigures(activeBytes: 1_100, residentBytes: 1_320, retainedBytes: 7,
                                                    mappedBytes: 2_048, metadataBytes: 64)
        let memory = ProcessMemory(allocator: .jemalloc, residentBytes: 2_000, residentPeakBytes: 3_000,
                                   allocatedBytes: 1_000, jemalloc: figures)
        #expect(memory.allocatorFragmentationRatio == 1.1)
        #expect(memory.allocatorResidentRatio == 1.2)
        #expect(memory.fragmentationRatio == 2.0)
        let entries = Dictionary(uniqueKeysWithValues: memory.statEntries().map { ($0.name, $0.value) })
        #expect(entries["process.memory.allocator"] == .unsigned(1))
        #expect(entries["process.memory.allocatedBytes"] == .unsigned(1_000))
        #expect(entries["process.memory.activeBytes"] == .unsigned(1_100))
        #expect(entries["process.memory.residentBytes"] == .unsigned(1_320))
        #expect(entries["process.memory.retainedBytes"] == .unsigned(7))
        #expect(entries["process.memory.mappedBytes"] == .unsigned(2_048))
        #expect(entries["process.memory.metadataBytes"] == .unsigned(64))
        #expect(entries["process.memory.allocatorFragmentationPermille"] == .unsigned(1_100))
        #expect(entries["process.memory.allocatorRSSPermille"] == .unsigned(1_200))
        #expect(entries["process.memory.fragmentationPermille"] == .unsigned(2_000))
        // Nothing allocated: no ratio rather than a division by zero.
        let empty = ProcessMemory(allocator: .jemalloc, residentBytes: 0, residentPeakBytes: 0, allocatedBytes: 0,
                                  jemalloc: ProcessMemory.JemallocFigures(activeBytes: 0, residentBytes: 0, retainedBytes: 0,
                                                                          mappedBytes: 0, metadataBytes: 0))
        #expect(empty.allocatorFragmentationRatio == nil && empty.allocatorResidentRatio == nil
                && empty.fragmentationRatio == nil)
    }

    @Test func onlyPrefixesThatCanSelectThemReadTheFigures() {
        for prefix in ["", "p", "process.", "process.memory.", "process.memory.rss"] {
            #expect(ProcessMemory.statisticsMayMatch(prefix), "\(prefix)")
        }
        for prefix in ["server.", "events.", "processes", "process.cpu"] {
            #expect(!ProcessMemory.statisticsMayMatch(prefix), "\(prefix)")
        }
    }

    /// The stats opcode carries them (prefix `process.`), next to the engine's and server's own.
    @Test func theStatsReplyCarriesProcessMemory() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        let memory = try await client.statsByName(prefix: "process.memory.")
        #expect(memory["process.memory.allocator"] == 0)
        #expect((memory["process.memory.rssBytes"] ?? 0) > 0)
        #expect((memory["process.memory.allocatedBytes"] ?? 0) > 0)
        #expect(memory["process.memory.activeBytes"] == nil)
        #expect(try await client.statsByName(prefix: "server.").keys.allSatisfy { $0.hasPrefix("server.") })
        await client.close()
    }
}
