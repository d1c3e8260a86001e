import ATPClient
import ATPLedger
import ATPProtocol
import CATPAllocationCounter
import Testing

/// Heap allocations per request on the server's threads (the malloc family, interposed in the test
/// binary by CATPAllocationCounter: every Swift object, array and closure storage and NIO buffer)
/// over a warm loop of requests. The figures are printed; the thresholds fail a change that adds
/// allocations to the path. `swift test` builds for debugging, which allocates more than a release
/// build (unspecialised generics); docs/BENCHMARKS.md has the release figures, counted with
/// `perf probe` on malloc.
@Suite(.serialized) struct AllocationTests {
    /// Sends `count` requests pipelined (`perWrite` frames a write, every reply read before the next
    /// write) and returns the allocations made on the server's event loops meanwhile.
    static func allocations(_ fixture: ServerFixture, _ raw: RawClient, count: Int, perWrite: Int,
                            frame: (Int) -> [UInt8]) async throws -> UInt64 {
        // Event loops and, with worker threads, the cores' threads too (their own turns, counted
        // by running on them: a few allocations, the same before and after).
        func total() -> UInt64 {
            let loops = fixture.server.onEveryEventLoop { atp_thread_allocations() }.reduce(0, +)
            let cores = fixture.engine.isHosted ? 0 : fixture.engine.onEveryCore { atp_thread_allocations() }.reduce(0, +)
            return loops + cores
        }
        let before = total()
        var sent = 0
        while sent < count {
            let n = min(perWrite, count - sent)
            try await raw.send((0..<n).flatMap { frame(sent + $0) })
            for _ in 0..<n {
                let (_, reply) = try await raw.nextReply()
                if case .error(let error) = reply { Issue.record("error reply \(error)") }
            }
            sent += n
        }
        let after = total()
        return after - before
    }

    /// Allocations per warm single-cell query on a one-core server: 64 stocked cells queried in
    /// turn, 16 requests a write, 2,000 to warm up and 4,000 counted.
    static func allocationsPerQuery(threadPerCore: Bool) async throws -> Double {
        let fixture = try ServerFixture {
            $0.threadPerCore = threadPerCore
            $0.ledger.workerCount = 1
        }
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: (0..<64).map {
            WireEvent(kind: .receive, sku: "SKU-\($0)", location: "L\($0 % 4)", quantity: 5, sequence: UInt64($0 + 1))
        })
        await client.close()
        let raw = try await fixture.rawAuthenticated()
        let frames = (0..<64).map {
            Wire.bytes(.query(QueryRequest(queries: [.cell(sku: "SKU-\($0)", location: "L\($0 % 4)")])), id: UInt32($0 + 10))
        }
        _ = try await allocations(fixture, raw, count: 2_000, perWrite: 16) { frames[$0 % 64] }
        let count = 4_000
        let counted = try await allocations(fixture, raw, count: count, perWrite: 16) { frames[$0 % 64] }
        await raw.close()
        return Double(counted) / Double(count)
    }

    /// Thread-per-core with one core: every single-cell query is answered inline. Warm, a query
    /// costs the server almost no allocation: the read's buffers, not the request (release: 0.13 a
    /// query, two a read of 16; this debug build: 3.8).
    @Test func aSingleCellQueryAnsweredInlineAllocatesAlmostNothing() async throws {
        let perQuery = try await Self.allocationsPerQuery(threadPerCore: true)
        print("allocations: \(perQuery) per inline single-cell query (16 a read)")
        #expect(perQuery <= 4.5, "an inline query allocates \(perQuery) objects on the server")
    }

    /// The worker-thread path, event loop and worker thread together: the figure to beat, with a
    /// ceiling so it does not grow (this debug build: 7.7).
    @Test func aSingleCellQueryThroughAWorkerThread() async throws {
        let perQuery = try await Self.allocationsPerQuery(threadPerCore: false)
        print("allocations: \(perQuery) per single-cell query through a worker thread (loop and worker)")
        #expect(perQuery <= 9, "a query through a worker allocates \(perQuery) objects on the server")
    }
}
