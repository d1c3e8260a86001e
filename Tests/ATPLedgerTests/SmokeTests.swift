import ATPLedger
import Testing

@Suite struct SmokeTests {
    @Test func receiveReserveCommitShip() {
        let f = LedgerFixture()
        f.apply(f.event(.receive, "SKU-1", "S1", 10))
        #expect(f.cell("SKU-1", "S1").sellable == 10)
        let reply = f.reserve("order-1", [("SKU-1", "S1", 4)])
        #expect(reply.state == .held && reply.isFullyGranted)
        #expect(f.cell("SKU-1", "S1").sellable == 6)
        #expect(f.cell("SKU-1", "S1").cell.reserved == 4)
        let commit = f.engine.commit(try! ReservationID("order-1"))
        #expect(commit.state == .committed && commit.error == nil)
        #expect(f.cell("SKU-1", "S1").cell.committed == 4)
        var batch = EventBatch()
        batch.append(f.event(.ship, "SKU-1", "S1", 4), correlation: try! ReservationID("order-1"))
        let shipped = f.engine.apply(batch)
        #expect(shipped.appliedCount == 1)
        let cell = f.cell("SKU-1", "S1").cell
        #expect(cell.onHand == 6 && cell.committed == 0 && cell.reserved == 0)
        f.engine.checkInvariants()
    }

    @Test func crossShardAllOrNothingRefusalHoldsNothing() {
        let f = LedgerFixture()
        // Find two SKUs in different shards.
        f.apply(f.event(.receive, "A", "S1", 5), f.event(.receive, "B", "S1", 1))
        #expect(f.engine.shardIndex(of: f.sku("A")) != f.engine.shardIndex(of: f.sku("B")))
        let reply = f.reserve("o", [("A", "S1", 5), ("B", "S1", 2)])
        #expect(reply.state == .refused)
        #expect(reply.grantedUnits == 0)
        #expect(f.cell("A", "S1").sellable == 5)
        #expect(f.cell("B", "S1").sellable == 1)
        f.engine.checkInvariants()
    }

    @Test func expiryReleasesUnits() {
        let f = LedgerFixture()
        f.apply(f.event(.receive, "A", "S1", 5))
        #expect(f.reserve("o", [("A", "S1", 3)], ttl: 1000).state == .held)
        f.engine.advanceClock(byMilliseconds: 1001)
        f.engine.waitUntilIdle()
        #expect(f.cell("A", "S1").sellable == 5)
        let again = f.reserve("o", [("A", "S1", 3)])
        #expect(again.state == .expired && again.replayed)
    }
}
