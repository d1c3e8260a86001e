import ATPLedger
import Testing

/// Snapshots cut a core at one instant and copy its shards one at a time afterwards (issue 13): a
/// shard something changes before its copy is copied first, so the snapshot still holds every shard
/// as of the cut, and recovery from it agrees with the journals.
@Suite struct SnapshotCopyTests {
    /// Events, a release and a new reservation change shards of both cores between their cuts and
    /// their copies: the snapshot equals the state at the cut, not after.
    @Test func snapshotHoldsTheCutNotLaterChanges() throws {
        let scenario = try ScenarioCluster(configure: { $0.shardCount = 8 })
        scenario.stock(10)
        let held = scenario.request(try ReservationID("R-0"), [scenario.sku(onCore: 0), scenario.sku(onCore: 1)])
        #expect(scenario.perform("reserve", held)?.state == .held)
        let cluster = scenario.cluster
        cluster.beginSnapshot()
        for core in 0..<2 { cluster.advanceSnapshotCut(core: core) }
        #expect(cluster.isCopyingSnapshot(core: 0) && cluster.isCopyingSnapshot(core: 1), "a cut copied every shard at once")
        let atCut = scenario.describe(cluster.captureImage())

        // One shard of core 0 copied on its turn; then changes to shards of both cores.
        cluster.advanceSnapshotCut(core: 0)
        scenario.stock(5)
        _ = scenario.send("release", held)
        _ = scenario.send("reserve", scenario.request(try ReservationID("R-1"), [scenario.sku(onCore: 1), scenario.sku(onCore: 0)]))
        scenario.runCores()
        while cluster.isCopyingSnapshot(core: 0) || cluster.isCopyingSnapshot(core: 1) {
            for core in 0..<2 { cluster.advanceSnapshotCut(core: core) }
        }
        scenario.settle()
        #expect(cluster.snapshots.count == 1)
        let snapshot = try #require(cluster.snapshots.last)
        #expect(scenario.describe(snapshot) == atCut, "the snapshot holds changes made after its cut")
        #expect(scenario.describe(snapshot) != scenario.describe(cluster.captureImage()), "nothing changed after the cut")
        try scenario.crashAndRecover()
        #expect(scenario.record(held.id)?.state == .released)
        #expect(scenario.record(try ReservationID("R-1"))?.state == .held)
    }

    /// The same changes with a crash after every step they take: recovery from the snapshot (once
    /// written) and from the journals alone agree, and the reservations are as acknowledged.
    @Test func crashWhileShardsAreCopiedRecovers() throws {
        var held: ReserveRequest!
        try forEveryCrashPoint("changes between a cut and its copies", build: {
            let scenario = try ScenarioCluster(configure: { $0.shardCount = 8 })
            scenario.stock(10)
            held = scenario.request(try ReservationID("R-0"), [scenario.sku(onCore: 0), scenario.sku(onCore: 1)])
            #expect(scenario.perform("reserve", held)?.state == .held)
            return scenario
        }, start: { scenario in
            let cluster = scenario.cluster
            cluster.beginSnapshot()
            for core in 0..<2 { cluster.advanceSnapshotCut(core: core) }
            _ = scenario.send("release", held)
            scenario.runCores()
            while cluster.isCopyingSnapshot(core: 0) || cluster.isCopyingSnapshot(core: 1) {
                for core in 0..<2 { cluster.advanceSnapshotCut(core: core) }
            }
        }, check: { scenario, step in
            let record = try #require(scenario.record(held.id), "step \(step): the reservation is unknown")
            #expect(record.state == .held || record.state == .released, "step \(step): \(record.state)")
            let units: Int32 = record.state == .held ? 2 : 0
            for sku in held.lines.map(\.sku) { #expect(scenario.buckets(sku) == (units, 0), "step \(step)") }
        })
    }
}
