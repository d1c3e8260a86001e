import ATPLedger
import Testing

/// Hand-written event and reservation sequences for corners the random stream reaches rarely,
/// checked through the same engine-versus-reference comparison as `ModelBasedTests`.
@Suite struct ModelScenarioTests {
    /// Runs `body` against a fresh engine and reference; a mismatch becomes an issue.
    func scenario(_ name: String, configure: (inout LedgerConfiguration) -> Void = { _ in },
                  _ body: (ModelRun) throws -> Void) {
        let run = ModelRun(seed: 0, configure: configure)
        defer { run.engine.shutdown() }
        do {
            try body(run)
            try run.compareCells()
            try run.compareStatistics()
            run.engine.checkInvariants()
        } catch {
            Issue.record("scenario \(name): \(error)")
        }
    }

    @Test func rejectedTransferCreatesNoCell() {
        scenario("transfer overflow", configure: { $0.quantityMax = 1_000_000_000 }) { run in
            let sku = run.skus[0]
            let l = run.locations
            var sequence: UInt64 = 0
            func event(_ kind: StockEventKind, _ at: LocationID, _ q: Int64, to: LocationID? = nil) -> ModelRun.SentEvent {
                sequence += 1
                var e = StockEvent(kind: kind, sku: sku, location: at, quantity: q, source: run.sources[0], sequence: sequence)
                if let to { e.toLocation = to }
                return ModelRun.SentEvent(event: e)
            }
            // onHand(L0) = −2e9; moving 1e9 more out of it underflows: rejected, L1 must not appear.
            try run.send([event(.ship, l[0], 1_000_000_000), event(.ship, l[0], 1_000_000_000)], label: "events")
            try run.send([event(.transferOut, l[0], 1_000_000_000, to: l[1])], label: "events")
            try run.compareCells()
            // inbound(L1) = 2e9; 1e9 more from a fresh L3 overflows: rejected, L3 must not appear.
            try run.send([event(.transferOut, l[2], 1_000_000_000, to: l[1]),
                          event(.transferOut, l[2], 1_000_000_000, to: l[1])], label: "events")
            try run.send([event(.transferOut, l[3], 1_000_000_000, to: l[1])], label: "events")
            try run.compareCells()
            // A rejected event does not consume its sequence: the same sequence, valid, applies.
            var retry = event(.receive, l[0], 5)
            retry.event.sequence = sequence - 0
            try run.send([retry], label: "events")
        }
    }

    @Test func windowEdges() {
        scenario("dedup window edges", configure: { $0.dedupWindowSequences = 64 }) { run in
            let sku = run.skus[0]
            func receive(_ sequence: UInt64, source: Int = 0) -> ModelRun.SentEvent {
                ModelRun.SentEvent(event: StockEvent(kind: .receive, sku: sku, location: run.locations[0], quantity: 1,
                                                     source: run.sources[source], sequence: sequence))
            }
            // newest = 1000: 937 is inside (applied), 936 is too old, 1000 a duplicate, 999 new.
            try run.send([receive(1000), receive(937), receive(936), receive(1000), receive(999)], label: "events")
            // A jump far ahead forgets everything below the new window.
            try run.send([receive(1_000_000), receive(999_937), receive(999_936), receive(999)], label: "events")
            // Another source, and another SKU's shard, have windows of their own.
            try run.send([receive(5, source: 1), receive(5, source: 2)], label: "events")
            let other = run.skus.first { run.engine.shardIndex(of: $0) != run.engine.shardIndex(of: sku) }!
            try run.send([ModelRun.SentEvent(event: StockEvent(kind: .receive, sku: other, location: run.locations[0],
                                                              quantity: 1, source: run.sources[0], sequence: 5))],
                         label: "events")
        }
    }

    /// A committed reservation forgotten after the retention window keeps its committed units (they
    /// are still shippable by id); a new reservation reusing the id must not corrupt them.
    @Test func forgottenCommittedIDReused() {
        scenario("retention", configure: { $0.reservationOutcomeRetentionMilliseconds = 1000 }) { run in
            let sku = run.skus[0]
            let location = run.locations[0]
            try run.send([ModelRun.SentEvent(event: StockEvent(kind: .receive, sku: sku, location: location, quantity: 10,
                                                              source: run.sources[0], sequence: 1))], label: "events")
            let a = try ReservationID("order-A")
            let line = ReservationLine(sku: sku, target: .location(location), quantity: 3)
            try run.reserve(ReserveRequest(id: a, lines: [line], ttlMilliseconds: 5000, mode: .allOrNothing))
            try run.commit(a)
            try run.advanceClock(by: 1500)
            // A settle in A's home shard (its first line's SKU's) forgets A's outcome.
            #expect(run.engine.homeShardIndex(of: a) == run.engine.shardIndex(of: sku))
            let sibling = try ReservationID("sibling")
            try run.reserve(ReserveRequest(id: sibling, lines: [ReservationLine(sku: sku, target: .location(location), quantity: 1)],
                                           ttlMilliseconds: 5000, mode: .partial))
            try run.commit(a)
            try run.release(a)
            // The id again, as a new reservation, for units on the same cell and on another SKU.
            let other = run.skus.first { run.engine.shardIndex(of: $0) != run.engine.shardIndex(of: sku) }!
            try run.send([ModelRun.SentEvent(event: StockEvent(kind: .receive, sku: other, location: location, quantity: 10,
                                                              source: run.sources[0], sequence: 2))], label: "events")
            try run.reserve(ReserveRequest(id: a, lines: [line, ReservationLine(sku: other, target: .location(location), quantity: 2)],
                                           ttlMilliseconds: 5000, mode: .partial))
            try run.compareCells()
            try run.compareStatistics()
            run.engine.checkInvariants()
            // The first generation's committed units still ship by id.
            var ship = StockEvent(kind: .ship, sku: sku, location: location, quantity: 3, source: run.sources[0], sequence: 3)
            ship.correlation = 0
            try run.send([ModelRun.SentEvent(event: ship, correlation: a)], label: "events")
            try run.commit(a)
            try run.release(a)
        }
    }
}
