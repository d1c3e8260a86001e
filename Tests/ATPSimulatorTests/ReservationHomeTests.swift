import ATPLedger
import Testing

/// A reservation lives on its first line's SKU's shard (docs/ARCHITECTURE.md, "Reservations"):
/// a one-line reserve is decided by that SKU's core alone, in one step with one journal record,
/// and an id still names one reservation engine-wide.
@Suite struct ReservationHomeTests {
    /// On each core in turn: the reserve runs on its SKU's core only (the other core never runs),
    /// writes one record to that core's journal, none to the other's, and is answered once that
    /// journal is durable.
    @Test(arguments: [0, 1]) func oneLineReserveIsDecidedByItsSKUsCoreAlone(core: Int) throws {
        let scenario = try ScenarioCluster()
        scenario.stock(10)
        let other = 1 - core
        let sku = scenario.sku(onCore: core)
        let request = scenario.request(try ReservationID("one-line-\(core)"), [sku], units: 3)
        let before = scenario.cluster.journals.map(\.lastAppendedLSN)
        let box = scenario.send("reserve", request)
        #expect(scenario.cluster.runnableCores == [core], "only the SKU's core has work")
        scenario.cluster.run(core: core)
        #expect(scenario.cluster.runnableCores.isEmpty, "nothing was sent to the other core")
        #expect(scenario.cluster.journals[core].lastAppendedLSN == before[core] + 1, "one decision record")
        #expect(scenario.cluster.journals[other].lastAppendedLSN == before[other], "nothing on the other core")
        #expect(box.reply == nil, "answered only once durable")
        scenario.cluster.write(journal: core, records: .max / 2)
        scenario.cluster.sync(journal: core)
        #expect(box.reply?.state == .held && box.reply?.lines.first?.granted == 3, "\(String(describing: box.reply))")
        #expect(scenario.cluster.homeShardIndex(of: request.id) == scenario.cluster.shardIndex(of: sku))
        #expect(scenario.record(request.id)?.homeShard == scenario.cluster.shardIndex(of: sku))
        // Commit and release find it by id alone.
        #expect(scenario.perform("commit", request)?.state == .committed)
        #expect(scenario.buckets(sku) == (0, 3))
        #expect(scenario.perform("release", request)?.state == .released)
        #expect(scenario.buckets(sku) == (0, 0))
        #expect(scenario.cluster.disagreements().isEmpty)
    }

    /// The same id again with another first line (a SKU of the other core): not a second
    /// reservation, but the first one's answer, as for any retry; the other SKU holds nothing.
    @Test func sameIDWithAnotherFirstLineAnswersTheFirstReservation() throws {
        let scenario = try ScenarioCluster()
        scenario.stock(10)
        let id = try ReservationID("order-1")
        let first = scenario.request(id, [scenario.sku(onCore: 0)], units: 2)
        let held = try #require(scenario.perform("reserve", first))
        #expect(held.state == .held && !held.replayed)
        let second = scenario.request(id, [scenario.sku(onCore: 1), scenario.sku(onCore: 0)], units: 4)
        let again = try #require(scenario.perform("reserve", second))
        #expect(again.replayed && again.state == .held && again.lines == held.lines, "\(again)")
        #expect(scenario.buckets(scenario.sku(onCore: 1)) == (0, 0))
        #expect(scenario.buckets(scenario.sku(onCore: 0)) == (2, 0))
        // A retry without lines (not a valid request by itself) answers alike.
        let bare = ReserveRequest(id: id, lines: [], ttlMilliseconds: 1000, mode: .allOrNothing)
        #expect(scenario.perform("reserve", bare)?.replayed == true)
        #expect(scenario.perform("commit", second)?.state == .committed)
        #expect(scenario.cluster.disagreements().isEmpty)
        // After a crash the directory is rebuilt from the records: still one reservation.
        try scenario.crashAndRecover()
        #expect(scenario.perform("reserve", second)?.replayed == true)
        #expect(scenario.perform("release", second)?.state == .released)
        #expect(scenario.buckets(scenario.sku(onCore: 0)) == (0, 0))
    }

    /// A multi-core reservation is homed at its first line's core, and its parts on the others:
    /// the home journals the decision, the part its prepare.
    @Test func multiCoreReservationIsHomedAtItsFirstLine() throws {
        let scenario = try ScenarioCluster()
        scenario.stock(10)
        for home in [0, 1] {
            let request = scenario.request(try ReservationID("multi-\(home)"),
                                           [scenario.sku(onCore: home), scenario.sku(onCore: 1 - home)])
            #expect(scenario.perform("reserve", request)?.state == .held)
            #expect(scenario.cluster.coreIndex(ofShard: scenario.cluster.homeShardIndex(of: request.id)) == home)
            let record = try #require(scenario.record(request.id))
            #expect(record.parts.map(\.worker) == [1 - home])
            #expect(scenario.perform("commit", request)?.state == .committed)
        }
        try scenario.crashAndRecover()
        #expect(scenario.cluster.disagreements().isEmpty)
    }
}
