import ATPLedger
import Testing

/// The cases the independent kill -9 test found (issue 11), as scenarios on the simulated cluster
/// crashed at every step they take: every record boundary of every journal, with and without the
/// sync that makes a record stable.
@Suite struct CrashRegressionTests {
    /// Case 1: an acknowledged held reservation whose ttl ran out around the crash was unknown after
    /// the restart (a part's release had reached its journal while the home's expiry had not; the
    /// restart forgot the record), so a retried reserve made a second hold. Now the home tells its
    /// parts only once its record is stable: the record is held or expired, never unknown, and a
    /// retry replays.
    @Test func expiringReservationIsNeverUnknownAfterACrash() throws {
        var id: ReservationID!
        var request: ReserveRequest!
        try forEveryCrashPoint("expiry around the crash", build: {
            let scenario = try ScenarioCluster()
            scenario.stock(10)
            id = try ReservationID("R-0")
            request = scenario.request(id, [scenario.sku(onCore: 0), scenario.sku(onCore: 1)], ttl: 300)
            let reply = scenario.perform("reserve", request)
            #expect(reply?.state == .held && reply?.error == nil)
            return scenario
        }, start: { scenario in
            scenario.cluster.advanceClock(byMilliseconds: 301)
            scenario.cluster.expire(core: 0)
        }, check: { scenario, step in
            let record = try #require(scenario.record(id), "step \(step): the acknowledged reservation is unknown")
            #expect(record.state == .held || record.state == .expired, "step \(step): \(record.state)")
            scenario.cluster.expire(core: 0)
            scenario.settle()
            let retry = try #require(scenario.perform("reserve", request))
            #expect(retry.replayed && retry.state == .expired, "step \(step): a retry answered \(retry)")
            for sku in request.lines.map(\.sku) { #expect(scenario.buckets(sku) == (0, 0), "step \(step)") }
        })
    }

    /// Case 1, the other shape: a release in flight at the crash leaves the reservation held or
    /// released, never unknown.
    @Test func releaseInFlightLeavesTheReservationKnown() throws {
        var id: ReservationID!
        var request: ReserveRequest!
        try forEveryCrashPoint("release in flight", build: {
            let scenario = try ScenarioCluster()
            scenario.stock(10)
            id = try ReservationID("R-1")
            request = scenario.request(id, [scenario.sku(onCore: 1), scenario.sku(onCore: 0)])
            #expect(scenario.perform("reserve", request)?.state == .held)
            return scenario
        }, start: { scenario in
            _ = scenario.send("release", request)
        }, check: { scenario, step in
            let record = try #require(scenario.record(id), "step \(step): the acknowledged reservation is unknown")
            #expect(record.state == .held || record.state == .released, "step \(step): \(record.state)")
            let units: Int32 = record.state == .held ? 2 : 0
            for sku in request.lines.map(\.sku) { #expect(scenario.buckets(sku) == (units, 0), "step \(step)") }
        })
    }

    /// Case 2: after a crash during the release of committed multi-line reservations, a cell's
    /// committed bucket no longer matched its reservations (both ways), and recovery from the
    /// journal and from a snapshot disagreed. Now the record is committed or released, and every
    /// cell holds exactly what that says, however the crash cut the journals.
    @Test func releaseOfCommittedMultiLineReservationKeepsCellsAndRecordInStep() throws {
        for crash in [SimulatedCluster.Crash.process, .power(keepingUnsynced: 0), .power(keepingUnsynced: 1)] {
            var id: ReservationID!
            var request: ReserveRequest!
            try forEveryCrashPoint("release of a committed reservation (\(crash))", crash: crash, build: {
                let scenario = try ScenarioCluster()
                scenario.stock(10)
                id = try ReservationID("R-0")
                // Home on core 0, a part of two lines on core 1.
                request = scenario.request(id, [scenario.sku(onCore: 0), scenario.sku(onCore: 1), scenario.sku(onCore: 1, 1)])
                #expect(scenario.perform("reserve", request)?.state == .held)
                #expect(scenario.perform("commit", request)?.state == .committed)
                scenario.cluster.beginSnapshot()
                for core in 0..<2 { scenario.cluster.cutSnapshot(core: core) }
                scenario.settle()
                #expect(scenario.cluster.snapshots.count == 1)
                return scenario
            }, start: { scenario in
                _ = scenario.send("release", request)
            }, check: { scenario, step in
                let record = try #require(scenario.record(id), "step \(step): the committed reservation is unknown")
                #expect(record.state == .committed || record.state == .released, "step \(step): \(record.state)")
                let units: Int32 = record.state == .committed ? 2 : 0
                for sku in request.lines.map(\.sku) { #expect(scenario.buckets(sku) == (0, units), "step \(step)") }
                // A retried release settles it, and returns every unit.
                #expect(scenario.perform("release", request)?.state == .released)
                for sku in request.lines.map(\.sku) { #expect(scenario.buckets(sku) == (0, 0), "step \(step)") }
            })
        }
    }

    /// Case 3: atpd refused to start ("a reservation answer for a reservation that is not waiting
    /// for it") after a crash while scheduled snapshots ran: a snapshot had cut a reservation
    /// half-way between workers. Now each core is cut on its own, and a reservation between cores
    /// at the cut is resolved like one at a crash: recovery starts, and agrees with the journals.
    @Test func snapshotCutWhileAReservationIsBetweenCoresRecovers() throws {
        var request: ReserveRequest!
        try forEveryCrashPoint("snapshot across a reservation", build: {
            let scenario = try ScenarioCluster()
            scenario.stock(10)
            request = scenario.request(try ReservationID("R-0"), [scenario.sku(onCore: 0), scenario.sku(onCore: 1)])
            return scenario
        }, start: { scenario in
            scenario.cluster.beginSnapshot()
            scenario.cluster.cutSnapshot(core: 0)
            _ = scenario.send("reserve", request)
            scenario.runCores()
            scenario.cluster.cutSnapshot(core: 1)
        }, check: { scenario, step in
            let record = scenario.record(request.id)
            #expect(record == nil || record?.state == .held, "step \(step)")
            let units: Int32 = record == nil ? 0 : 2
            for sku in request.lines.map(\.sku) { #expect(scenario.buckets(sku) == (units, 0), "step \(step)") }
        })
    }

    /// A part's prepare lost while the home's decision survived: never acknowledged, so the record
    /// is forgotten and nothing stays held; a retry makes the reservation anew.
    @Test func lostPrepareForgetsTheDecision() throws {
        let scenario = try ScenarioCluster()
        scenario.stock(10)
        let request = scenario.request(try ReservationID("R-0"), [scenario.sku(onCore: 0), scenario.sku(onCore: 1)])
        let answer = scenario.send("reserve", request)
        scenario.runCores()
        // The home's decision reaches its journal and is synced; the part's prepare does not.
        scenario.cluster.write(journal: 0, records: .max / 2)
        scenario.cluster.sync(journal: 0)
        #expect(answer.reply == nil, "answered before the part's prepare was durable")
        let report = try scenario.crashAndRecover(.process)
        #expect(report.recordsForgotten == 1)
        #expect(scenario.record(request.id) == nil)
        for sku in request.lines.map(\.sku) { #expect(scenario.buckets(sku) == (0, 0)) }
        #expect(scenario.perform("reserve", request)?.replayed == false)
    }

    /// A crash while recovery's repairs are not yet stable repeats the same recovery: the record a
    /// hold is judged by goes only after the hold.
    @Test func crashDuringRecoveryRepeatsItsDecisions() throws {
        let scenario = try ScenarioCluster()
        scenario.stock(10)
        let request = scenario.request(try ReservationID("R-1"), [scenario.sku(onCore: 1), scenario.sku(onCore: 0)])
        _ = scenario.send("reserve", request)
        scenario.runCores()
        scenario.cluster.write(journal: 1, records: .max / 2)
        scenario.cluster.sync(journal: 1)
        scenario.cluster.crash(.process)
        try scenario.cluster.recover()
        // Recovery wrote the hold repairs and made them stable before the record repairs; lose the
        // record repairs, keep the holds', and recover again.
        scenario.cluster.crash(.process)
        let second = try scenario.crashAndRecover(.process)
        #expect(scenario.record(request.id) == nil)
        for sku in request.lines.map(\.sku) { #expect(scenario.buckets(sku) == (0, 0)) }
        _ = second
    }
}
