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
    /// costs the server no allocation in a release build (`perf probe` on malloc: 12 in 3.5 M
    /// queries, since the reply buffer of a read is reused; 0.13 a query before). This debug build
    /// allocates for itself: 3.688, deterministic (3.813 with a new buffer each read: two per read of 16).
    @Test func aSingleCellQueryAnsweredInlineAllocatesAlmostNothing() async throws {
        let perQuery = try await Self.allocationsPerQuery(threadPerCore: true)
        print("allocations: \(perQuery) per inline single-cell query (16 a read)")
        #expect(perQuery <= 3.72, "an inline query allocates \(perQuery) objects on the server")
    }

    /// Allocations per warm one-line reservation operation on a one-core thread-per-core server
    /// (every operation inline): reserve 1 unit of a stocked cell under a fresh id, then commit it,
    /// 8 pairs a write; 1,000 pairs to warm up, 2,000 counted. Returns (per reserve, per commit),
    /// told apart by a second run of reserves alone.
    static func allocationsPerReservation() async throws -> (reserve: Double, commit: Double) {
        let fixture = try ServerFixture {
            $0.threadPerCore = true
            $0.ledger.workerCount = 1
        }
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [
            WireEvent(kind: .receive, sku: "HOT", location: "DC", quantity: 1_000_000, sequence: 1),
        ])
        await client.close()
        let raw = try await fixture.rawAuthenticated()
        let line = [WireReservationLine(sku: "HOT", target: .location("DC"), quantity: 1)]
        var next = 0
        func reserve(_ n: Int) -> [UInt8] {
            let id = try! ReservationID("order-\(n)")
            return Wire.bytes(.reserve(WireReserveRequest(id: id, ttlMilliseconds: 60_000, mode: .allOrNothing, lines: line)),
                              id: UInt32(truncatingIfNeeded: 2 * n + 10))
        }
        func commit(_ n: Int) -> [UInt8] {
            Wire.bytes(.commit(try! ReservationID("order-\(n)")), id: UInt32(truncatingIfNeeded: 2 * n + 11))
        }
        func pairs(_ count: Int) async throws -> UInt64 {
            defer { next += count }
            let first = next
            return try await allocations(fixture, raw, count: 2 * count, perWrite: 16) { k in
                k % 2 == 0 ? reserve(first + k / 2) : commit(first + k / 2)
            }
        }
        func reserves(_ count: Int) async throws -> UInt64 {
            defer { next += count }
            let first = next
            return try await allocations(fixture, raw, count: count, perWrite: 16) { reserve(first + $0) }
        }
        _ = try await pairs(1_000)
        let pairCount = 2_000
        let pairAllocations = try await pairs(pairCount)
        let reserveAllocations = try await reserves(pairCount)
        await raw.close()
        let perReserve = Double(reserveAllocations) / Double(pairCount)
        return (perReserve, Double(pairAllocations) / Double(pairCount) - perReserve)
    }

    /// Thread-per-core, one core: a flash sale's reserve and commit, inline, allocate a bounded
    /// number of objects on the server: the decoded request's lines, the record's grants,
    /// allocations and hold lines, the completion. This debug build: 33.2 per reserve (59.2 before
    /// the reservation path reused its arrays), 24.6 per commit; release: 6.6 per reserve
    /// (BENCHMARKS.md §6).
    @Test func aOneLineReservationAnsweredInlineAllocatesLittle() async throws {
        let (perReserve, perCommit) = try await Self.allocationsPerReservation()
        print("allocations: \(perReserve) per inline one-line reserve, \(perCommit) per inline commit")
        #expect(perReserve <= 36, "an inline reserve allocates \(perReserve) objects on the server")
        #expect(perCommit <= 27, "an inline commit allocates \(perCommit) objects on the server")
    }

    /// The worker-thread path, event loop and worker thread together: the figure to beat, with a
    /// ceiling so it does not grow (this debug build: 7.7).
    @Test func aSingleCellQueryThroughAWorkerThread() async throws {
        let perQuery = try await Self.allocationsPerQuery(threadPerCore: false)
        print("allocations: \(perQuery) per single-cell query through a worker thread (loop and worker)")
        #expect(perQuery <= 9, "a query through a worker allocates \(perQuery) objects on the server")
    }
}
