import ATPLedger
import Synchronization
import Testing

@Suite("Ledger image capture and restore")
struct ImageTests {
    @Test("a restored engine has identical state, with any worker count")
    func restoreGivesIdenticalState() throws {
        let fixture = SnapshotFixture()
        fixture.populate()
        let marked = Mutex<[Int]>([])
        let image = fixture.engine.captureImage { worker in
            marked.withLock { $0.append(worker) }
            return UInt64(100 + worker)
        }
        #expect(marked.withLock { $0.sorted() } == [0, 1])
        #expect(image.workerMarks == [100, 101])
        #expect(image.cellCount == SnapshotFixture.skuCount * SnapshotFixture.locationCount)
        #expect(image.reservations.count == 5)

        let original = ObservedState(fixture.engine)
        for workerCount in [1, 2, 4] {
            var configuration = fixture.configuration
            configuration.workerCount = workerCount
            let restored = try Engine(restoring: image, configuration: configuration,
                                      clock: .manual(startMilliseconds: fixture.clock.nowMilliseconds()))
            defer { restored.shutdown() }
            restored.checkInvariants()
            let state = ObservedState(restored)
            #expect(state.cells == original.cells)
            #expect(state.names == original.names)
            #expect(state.channels == original.channels)
            #expect(state.skuAnswers == original.skuAnswers)
            #expect(state.channelAnswers == original.channelAnswers)
            #expect(state.reservations == original.reservations)
            #expect(state.holds == original.holds)
            #expect(state.dedupWindows == original.dedupWindows)
            #expect(restored.statistics().counters.shortCells == fixture.engine.statistics().counters.shortCells)
        }
    }

    @Test("cells iterate in (SKU id, location id) order without the engine")
    func cellsIterateInKeyOrder() {
        let fixture = SnapshotFixture()
        fixture.populate()
        let image = fixture.engine.captureImage { _ in 0 }
        fixture.engine.shutdown()
        var keys: [UInt64] = []
        image.forEachCell { keys.append(UInt64($0.sku.rawValue) << 32 | UInt64($0.location.rawValue)) }
        #expect(keys.count == image.cellCount)
        #expect(keys == keys.sorted())
        #expect(Set(keys).count == keys.count)
        #expect(image.names(.sku).name(7) == SnapshotFixture.skuName(7))
    }

    @Test("a replayed event is refused as a duplicate after restore; a new one applies")
    func duplicateRefusedAfterRestore() throws {
        let fixture = SnapshotFixture()
        fixture.populate()
        let applied = fixture.event(.receive, 0, 0, 10)
        #expect(fixture.engine.apply(EventBatch(events: [applied])).outcomes == [.applied])
        let image = fixture.engine.captureImage { _ in 0 }
        let restored = try Engine(restoring: image, configuration: fixture.configuration, clock: .manual())
        defer { restored.shutdown() }
        let late = fixture.event(.receive, 8, 0, 1, source: "pos", sequence: 900)
        let tooOld = fixture.event(.receive, 0, 0, 10, sequence: 1)
        let fresh = fixture.event(.receive, 0, 0, 1)
        let outcomes = restored.apply(EventBatch(events: [applied, late, tooOld, fresh])).outcomes
        #expect(outcomes == [.duplicate, .duplicate, .rejected(.sequenceTooOld), .applied])
        let replay = applied
        // The same batch on the original engine answers the same way.
        #expect(fixture.engine.apply(EventBatch(events: [replay, late, tooOld, fresh])).outcomes == outcomes)
        #expect(ObservedState(restored).cells == ObservedState(fixture.engine).cells)
    }

    @Test("a held reservation expires at its original time after restore; others keep their state")
    func reservationExpiresOnTimeAfterRestore() throws {
        let fixture = SnapshotFixture()
        fixture.populate()
        let image = fixture.engine.captureImage { _ in 0 }
        let heldID = try ReservationID("held")
        let expiresAt = try #require(image.reservations.first { $0.id == heldID }).expiresAtMilliseconds
        let clock = EngineClock.manual(startMilliseconds: fixture.clock.nowMilliseconds() + 10_000)
        let restored = try Engine(restoring: image, configuration: fixture.configuration, clock: clock)
        defer { restored.shutdown() }
        let cell = AvailabilityQuery.cell(fixture.sku(10), fixture.location(0))
        #expect(restored.query([cell]).cells(of: 0).first?.cell.reserved == 3)

        restored.advanceClock(byMilliseconds: expiresAt - clock.nowMilliseconds() - 1)
        restored.waitUntilIdle()
        #expect(restored.reserve(fixture.request("held", [(10, 0, 3)])).state == .held)
        #expect(restored.query([cell]).cells(of: 0).first?.cell.reserved == 3)

        restored.advanceClock(byMilliseconds: 1)
        restored.waitUntilIdle()
        let replay = restored.reserve(fixture.request("held", [(10, 0, 3)]))
        #expect(replay.state == .expired)
        #expect(replay.replayed)
        #expect(restored.query([cell]).cells(of: 0).first?.cell.reserved == 0)
        #expect(restored.statistics().counters.reservationsExpired == 1)

        let committed = restored.commit(try ReservationID("committed"))
        #expect(committed.state == .committed && committed.replayed)
        #expect(restored.release(try ReservationID("released")).replayed)
        #expect(restored.reserve(fixture.request("refused", [(16, 2, 1)])).state == .refused)
        // Releasing the committed reservation returns its unshipped units (4 - 1 shipped, and 2).
        #expect(restored.release(try ReservationID("committed")).state == .released)
        let committedCell = restored.query([.cell(fixture.sku(13), fixture.location(0))]).cells(of: 0).first?.cell
        #expect(committedCell?.committed == 0)
        restored.checkInvariants()
    }

    @Test("restoring into another shard count or window size is refused with a clear error")
    func mismatchedConfigurationRefused() {
        let fixture = SnapshotFixture()
        fixture.populate()
        let image = fixture.engine.captureImage { _ in 0 }
        var configuration = fixture.configuration
        configuration.shardCount = 16
        #expect(throws: LedgerImageError.shardCountMismatch(image: 8, configuration: 16)) {
            _ = try Engine(restoring: image, configuration: configuration, clock: .manual())
        }
        configuration = fixture.configuration
        configuration.dedupWindowSequences = 128
        #expect(throws: LedgerImageError.dedupWindowMismatch(image: 64, configuration: 128)) {
            _ = try Engine(restoring: image, configuration: configuration, clock: .manual())
        }
    }

    @Test("holds of a version-1 image are reconciled with their home record on restore")
    func holdsReconciledWithRecords() throws {
        var builder = try LedgerImageBuilder(version: 1, shardCount: 1, dedupWindowSequences: 64, workerMarks: [0],
                                             cutWallClockMilliseconds: 0, clockMilliseconds: 0)
        for (kind, name) in [(NameKind.sku, "A"), (.location, "L0"), (.location, "L1")] {
            var bytes = Array(name.utf8)
            let id = kind == .sku ? 0 : (name == "L0" ? 0 : 1)
            try bytes.withUnsafeMutableBytes { try builder.appendName(UnsafeRawBufferPointer($0), kind: kind, id: UInt32(id)) }
        }
        var cell = StockCell(sku: SKUID(0), location: LocationID(0))
        cell.onHand = 10
        cell.reserved = 7  // recomputed from the holds kept
        try builder.appendCell(cell)
        var other = StockCell(sku: SKUID(0), location: LocationID(1))
        other.onHand = 5
        try builder.appendCell(other)
        let released = try ReservationID("released")
        let orphan = try ReservationID("orphan")
        let committed = try ReservationID("committed")
        let line = { (units: Int32) in [HoldImage.Line(sku: SKUID(0), location: LocationID(0), units: units)] }
        let request = { (id: ReservationID) in
            ReserveRequest(id: id, lines: [ReservationLine(sku: SKUID(0), target: .location(LocationID(0)), quantity: 2)],
                           ttlMilliseconds: 1000, mode: .allOrNothing)
        }
        builder.appendReservation(ReservationImage(request: request(released), state: .released,
                                                   lineGrants: [LineGrant(requested: 2, granted: 2)],
                                                   expiresAtMilliseconds: 1000, settledAtMilliseconds: 5))
        builder.appendReservation(ReservationImage(request: request(committed), state: .committed,
                                                   lineGrants: [LineGrant(requested: 2, granted: 2)],
                                                   expiresAtMilliseconds: 1000, settledAtMilliseconds: 5))
        builder.appendHold(HoldImage(shard: 0, id: released, isCommitted: false, lines: line(2)))
        builder.appendHold(HoldImage(shard: 0, id: orphan, isCommitted: false, lines: line(3)))
        builder.appendHold(HoldImage(shard: 0, id: committed, isCommitted: false, lines: line(2)))
        let image = try builder.build()
        var configuration = LedgerConfiguration()
        configuration.shardCount = 1
        configuration.workerCount = 1
        configuration.dedupWindowSequences = 64
        configuration.skuPlacement = .skuID  // version 1 came before name placement
        let engine = try Engine(restoring: image, configuration: configuration, clock: .manual(startMilliseconds: 10))
        defer { engine.shutdown() }
        engine.checkInvariants()
        let restored = try #require(engine.query([.cell(SKUID(0), LocationID(0))]).cells(of: 0).first?.cell)
        #expect(restored.reserved == 0)
        #expect(restored.committed == 2)
        #expect(restored.onHand == 10)
        #expect(engine.statistics().holds == 1)
    }

    @Test("the builder refuses parts that do not fit together")
    func builderRefusesBadParts() throws {
        var builder = try LedgerImageBuilder(shardCount: 2, dedupWindowSequences: 64, workerMarks: [],
                                             cutWallClockMilliseconds: 0, clockMilliseconds: 0)
        try builder.appendCell(StockCell(sku: SKUID(1), location: LocationID(1)))
        #expect(throws: LedgerImageError.cellOutOfOrder(sku: 1, location: 0)) {
            try builder.appendCell(StockCell(sku: SKUID(1), location: LocationID(0)))
        }
        #expect(throws: LedgerImageError.unknownName(kind: .sku, id: 1, usedBy: "a cell")) { _ = try builder.build() }
        #expect(throws: LedgerImageError.self) {
            _ = try LedgerImageBuilder(shardCount: 3, dedupWindowSequences: 64, workerMarks: [],
                                       cutWallClockMilliseconds: 0, clockMilliseconds: 0)
        }
    }
}
