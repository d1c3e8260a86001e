import ATPLedger
import Testing

/// Engine A records its inputs; a fresh engine B replays them and must end in A's state exactly.
@Suite struct ReplayDeterminismTests {
    static func configuration(workers: Int = 2) -> LedgerConfiguration {
        var configuration = LedgerConfiguration()
        configuration.shardCount = 8
        configuration.workerCount = workers
        return configuration
    }

    /// A randomized workload over events, reservations (multi-shard), commits, releases, expiries
    /// and channel changes, with the seed printed so a failure replays.
    @Test(arguments: [UInt64(1), 2, 3])
    func replayRebuildsTheSameState(seed: UInt64) throws {
        let clock = EngineClock.manual()
        let engineA = try Engine(configuration: Self.configuration(), clock: clock)
        let logs = (0..<2).map { _ in MemoryInputLog() }
        engineA.attachInputLogs(logs, nameWatermarks: [0, 0, 0, 0])
        var random = SplitMix64(seed: seed)
        var workload = Workload(engine: engineA)
        var reservationNumber = 0
        for step in 0..<400 {
            switch random.next() % 10 {
            case 0...3:
                workload.receive(sku: Int(random.next() % 12), location: Int(random.next() % 3),
                                 quantity: Int64(random.next() % 20 + 1))
            case 4...6:
                reservationNumber += 1
                let lines = (0..<Int(random.next() % 3 + 1)).map { _ in
                    (sku: Int(random.next() % 12), location: Int(random.next() % 3), quantity: Int64(random.next() % 5 + 1))
                }
                _ = workload.reserve("R-\(reservationNumber)", lines: lines, ttlMilliseconds: Int64(random.next() % 5000 + 100))
            case 7:
                let id = try ReservationID("R-\(Int(random.next() % UInt64(max(reservationNumber, 1))) + 1)")
                _ = engineA.commit(id)
            case 8:
                let id = try ReservationID("R-\(Int(random.next() % UInt64(max(reservationNumber, 1))) + 1)")
                _ = engineA.release(id)
            default:
                if step % 50 == 9 {
                    try engineA.defineChannel(ChannelDefinition(id: try engineA.catalog.channel("web"),
                                                                locations: [workload.location(0), workload.location(1)]))
                }
                engineA.advanceClock(byMilliseconds: Int64(random.next() % 700))
                engineA.waitUntilIdle()
            }
        }
        let expected = EngineState(engineA)
        engineA.shutdown()

        let engineB = try Engine(configuration: Self.configuration(), clock: .manual(), expiriesSuspended: true)
        defer { engineB.shutdown() }
        let counts = try engineB.replayInputs(logs.map { $0.source() })
        #expect(counts == logs.map { $0.all.count }, "seed \(seed)")
        let report = engineB.resolveAfterReplay()
        #expect(report.isEmpty, "seed \(seed): nothing was in flight, nothing to repair: \(report)")
        #expect(EngineState(engineB) == expected, "seed \(seed)")
    }

    /// The names records make each log self-contained: ids mean the same after replay.
    @Test func namesAreDefinedBeforeUse() throws {
        let engineA = try Engine(configuration: Self.configuration(workers: 1))
        let log = MemoryInputLog()
        engineA.attachInputLogs([log], nameWatermarks: [0, 0, 0, 0])
        // Interned but never used: later ids must still mean the same names after replay.
        _ = try engineA.catalog.sku("unused")
        var workload = Workload(engine: engineA)
        workload.receive(sku: 7, location: 2, quantity: 5)
        engineA.shutdown()
        #expect(log.all.first?.kind == WorkerInputKind.names.rawValue)
        let engineB = try Engine(configuration: Self.configuration(workers: 1), expiriesSuspended: true)
        defer { engineB.shutdown() }
        _ = try engineB.replayInputs([log.source()])
        #expect(engineB.catalog.existingSKU("SKU-7") == engineA.catalog.existingSKU("SKU-7"))
        #expect(engineB.catalog.existingSKU("unused") == engineA.catalog.existingSKU("unused"))
        #expect(Workload(engine: engineB).sellable(sku: 7, location: 2) == 5)
    }

    /// A damaged record is refused with the worker and LSN, never applied.
    @Test func undecodableRecordIsReported() throws {
        let engine = try Engine(configuration: Self.configuration(workers: 1), expiriesSuspended: true)
        defer { engine.shutdown() }
        let records = [RecordedInput(lsn: 1, kind: WorkerInputKind.events.rawValue, payload: [1, 2, 3])][...]
        var remaining = records
        #expect(throws: WorkerInputReplayError.self) { _ = try engine.replayInputs([{ remaining.popFirst() }]) }
    }

    /// A journal that refuses: writes answer `notDurable`, nothing more is applied, queries work.
    @Test func refusedLogRefusesWritesAndKeepsQueries() throws {
        let engine = try Engine(configuration: Self.configuration(workers: 1))
        defer { engine.shutdown() }
        let log = MemoryInputLog()
        engine.attachInputLogs([log], nameWatermarks: [0, 0, 0, 0])
        var workload = Workload(engine: engine)
        #expect(workload.receive(sku: 1, location: 1, quantity: 10).durabilityFailure == nil)
        log.failing.store(true, ordering: .relaxed)
        #expect(workload.receive(sku: 1, location: 1, quantity: 10).durabilityFailure != nil)
        let reply = workload.reserve("R-1", lines: [(1, 1, 2)])
        guard case .notDurable = reply.error else {
            Issue.record("expected notDurable, got \(String(describing: reply.error))")
            return
        }
        #expect(throws: ChannelDefinitionError.notDurable) {
            try engine.defineChannel(ChannelDefinition(id: try engine.catalog.channel("web"), locations: [workload.location(1)]))
        }
        #expect(workload.sellable(sku: 1, location: 1) == 10)
    }
}
