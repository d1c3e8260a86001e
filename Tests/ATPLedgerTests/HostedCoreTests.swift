#if canImport(Glibc)
import Glibc
#endif
import ATPLedger
import Synchronization
import Testing

/// Cores run on hosts (thread-per-core) instead of worker threads of their own: the same ledger,
/// inline answers on the host's thread, expiry timers on a wall clock.
@Suite struct HostedCoreTests {
    /// One workload on a hosted and a threaded engine: the same answers, cells and counters.
    @Test func aHostedEngineAnswersLikeAThreadedOne() {
        let hosted = LedgerFixture(hosted: true)
        let threaded = LedgerFixture(hosted: false)
        var answers: [[String]] = []
        for f in [hosted, threaded] {
            let skus = (0..<16).map { "SKU-\($0)" }
            let stocked = f.engine.apply(EventBatch(events: skus.flatMap { sku in
                [f.event(.receive, sku, "S1", 10), f.event(.receive, sku, "DC", 20)]
            }))
            #expect(stocked.outcomes.allSatisfy { $0 == .applied })
            var trace: [String] = []
            // One-core and multi-core reservations, a commit, a release, a shipment against a commit.
            trace.append("\(f.reserve("one", [("SKU-1", "S1", 4)]))")
            trace.append("\(f.reserve("many", [("SKU-2", "S1", 3), ("SKU-3", "DC", 5), ("SKU-4", "S1", 1)]))")
            trace.append("\(f.reserve("refused", [("SKU-5", "S1", 3), ("SKU-6", "DC", 50)]))")
            trace.append("\(f.commit("many"))")
            trace.append("\(f.ship("SKU-3", "DC", 2, correlation: "many"))")
            trace.append("\(f.release("one"))")
            f.engine.advanceClock(byMilliseconds: 120_000)
            f.engine.waitUntilIdle()
            let result = f.engine.query(skus.map { .sku(f.sku($0)) })
            for index in skus.indices {
                trace.append("\(result.answers[index].sellable)/\(result.cells(of: index).map { Buckets($0.cell) })")
            }
            let statistics = f.engine.statistics()
            trace.append("\(statistics.counters.reservationsGranted) \(statistics.counters.reservationsRefused) "
                         + "\(statistics.counters.reservationsCommitted) \(statistics.heldReservations) \(statistics.holds)")
            f.engine.checkInvariants()
            answers.append(trace)
        }
        #expect(answers[0] == answers[1])
    }

    /// `answerInline` answers on the host's thread of the core that owns every queried SKU, the same
    /// as a submitted query; anywhere else, or for another core's SKU, it does nothing.
    @Test func answerInlineRunsOnlyOnTheOwningCoresHost() {
        let f = LedgerFixture(hosted: true)
        let skus = (0..<16).map { "SKU-\($0)" }
        _ = f.engine.apply(EventBatch(events: skus.enumerated().map { f.event(.receive, $1, "S1", Int64($0 + 1)) }))
        let ids = skus.map { f.sku($0) }
        let byCore = Dictionary(grouping: ids) { f.engine.coreIndex(of: $0) }
        #expect(byCore.count == 2, "the SKUs span both cores")
        #expect(f.engine.answerInline([.sku(ids[0])], onCore: f.engine.coreIndex(of: ids[0])) == nil,
                "not on the host's thread")
        #expect(f.engine.coreOfCurrentThread() == nil)
        let engine = f.engine
        for (core, mine) in byCore {
            let expected = f.engine.query(mine.map { .sku($0) }).answers.map(\.sellable)
            let other = byCore.first { $0.key != core }!.value[0]
            let seen = Mutex<([Int64]?, Bool, Int?)>((nil, false, nil))
            let done = Atomic<Bool>(false)
            f.hosts[core].execute {
                let inline = engine.answerInline(mine.map { .sku($0) }, onCore: core)
                let refused = engine.answerInline([.sku(mine[0]), .sku(other)], onCore: core) == nil
                seen.withLock { $0 = (inline?.answers.map(\.sellable), refused, engine.coreOfCurrentThread()) }
                done.store(true, ordering: .releasing)
            }
            while !done.load(ordering: .acquiring) { usleep(100) }
            let (inline, refused, current) = seen.withLock { $0 }
            #expect(inline == expected)
            #expect(refused, "a query with another core's SKU is not answered inline")
            #expect(current == core)
        }
    }

    /// On a wall clock nobody wakes a hosted core when a reservation falls due: the core arms a
    /// timer on its host, which expires it with no other traffic.
    @Test func aHostedCoreExpiresReservationsByItsOwnTimer() {
        let f = LedgerFixture(hosted: true, clock: .system())
        f.applied(f.event(.receive, "SKU-1", "S1", 10))
        #expect(f.reserve("short", [("SKU-1", "S1", 4)], ttl: 200).state == .held)
        let timersBefore = f.hosts.map { $0.delayedRuns.load(ordering: .relaxed) }.reduce(0, +)
        // Wait (bounded) for a timer to run; nothing else touches the engine meanwhile.
        var waited = 0
        while f.hosts.map({ $0.delayedRuns.load(ordering: .relaxed) }).reduce(0, +) == timersBefore && waited < 5_000 {
            usleep(10_000)
            waited += 10
        }
        #expect(f.hosts.map { $0.delayedRuns.load(ordering: .relaxed) }.reduce(0, +) > timersBefore,
                "an expiry timer ran within 5 s")
        #expect(f.engine.statistics().counters.reservationsExpired == 1)
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
    }
}
