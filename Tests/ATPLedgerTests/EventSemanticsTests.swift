import ATPLedger
import Testing

/// One test per stock event kind, with exactly the numbers of the worked examples in
/// docs/SEMANTICS.md §3.1, plus the exception counters, the short flag and the short-cell counter.
@Suite struct EventSemanticsTests {
    @Test func receive() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "DC1", 10), f.event(.adjust, "SKU-1", "DC1", 8) { $0.bucket = .inbound })
        f.expect("SKU-1", "DC1", Buckets(onHand: 10, inbound: 8), sellable: 10, projected: 18)

        f.applied(f.event(.receive, "SKU-1", "DC1", 5) { $0.flags = .closesInbound })
        f.expect("SKU-1", "DC1", Buckets(onHand: 15, inbound: 3), sellable: 15, projected: 18)

        f.applied(f.event(.receive, "SKU-1", "DC1", 4) { $0.flags = .intoQuarantine })
        f.expect("SKU-1", "DC1", Buckets(onHand: 19, quarantine: 4, inbound: 3), sellable: 15, projected: 18)
        #expect(f.exceptionUnits(.inbound) == 0)

        f.applied(f.event(.receive, "SKU-1", "DC1", 6) { $0.flags = .closesInbound })
        f.expect("SKU-1", "DC1", Buckets(onHand: 25, quarantine: 4), sellable: 21, projected: 21)
        #expect(f.exceptionUnits(.inbound) == 3)

        f.applied(f.event(.receive, "SKU-1", "DC1", 2))
        f.expect("SKU-1", "DC1", Buckets(onHand: 27, quarantine: 4), sellable: 23, projected: 23)
        #expect(f.exceptionUnits(.inbound) == 3)
        #expect(f.counters.eventsAppliedByKind[Int(StockEventKind.receive.rawValue)] == 5)
        f.engine.checkInvariants()
    }

    @Test func receiveWithBothFlags() {
        let f = LedgerFixture()
        f.applied(f.event(.adjust, "SKU-1", "DC1", 8) { $0.bucket = .inbound })
        f.applied(f.event(.receive, "SKU-1", "DC1", 5) { $0.flags = [.intoQuarantine, .closesInbound] })
        f.expect("SKU-1", "DC1", Buckets(onHand: 5, quarantine: 5, inbound: 3), sellable: 0, projected: 3)
    }

    @Test func shipWithCommittedReservationCorrelation() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 10))
        #expect(f.reserve("order-1", [("SKU-1", "S1", 4)]).state == .held)
        #expect(f.commit("order-1").state == .committed)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4), sellable: 6)

        #expect(f.ship("SKU-1", "S1", 3, correlation: "order-1") == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 7, committed: 1), sellable: 6)

        #expect(f.ship("SKU-1", "S1", 2, correlation: "order-1") == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 5), sellable: 5)
        #expect(f.engine.statistics().holds == 0, "a fully shipped hold is gone")

        #expect(f.ship("SKU-1", "S1", 2, correlation: nil) == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 3), sellable: 3)
        #expect(f.counters.shortCells == 0)

        #expect(f.ship("SKU-1", "S1", 5, correlation: nil) == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: -2), sellable: 0, short: true)
        #expect(f.counters.shortCells == 1)
        #expect(f.counters.eventsAppliedByKind[Int(StockEventKind.ship.rawValue)] == 4)

        // Releasing the fully shipped reservation returns nothing: the units left with the shipments.
        let release = f.release("order-1")
        #expect(release.state == .released && release.error == nil)
        f.expect("SKU-1", "S1", Buckets(onHand: -2), sellable: 0, short: true)
        f.engine.checkInvariants()
    }

    @Test func shipAgainstHeldOrForeignReservationLowersOnHandOnly() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 10), f.event(.receive, "SKU-1", "S2", 10))
        #expect(f.reserve("held", [("SKU-1", "S1", 4)]).state == .held)
        #expect(f.reserve("other-cell", [("SKU-1", "S2", 4)]).state == .held)
        #expect(f.commit("other-cell").state == .committed)
        // Held (not committed): reserved stays.
        #expect(f.ship("SKU-1", "S1", 3, correlation: "held") == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 7, reserved: 4), sellable: 3)
        // Committed on another cell: this cell's committed is 0 and S2 is untouched.
        #expect(f.ship("SKU-1", "S1", 1, correlation: "other-cell") == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 6, reserved: 4), sellable: 2)
        f.expect("SKU-1", "S2", Buckets(onHand: 10, committed: 4), sellable: 6)
        // Unknown id.
        #expect(f.ship("SKU-1", "S1", 1, correlation: "never-reserved") == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 5, reserved: 4), sellable: 1)
        f.engine.checkInvariants()
    }

    @Test func transferOut() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "DC1", 20))
        f.expect("SKU-1", "DC1", Buckets(onHand: 20), sellable: 20)
        #expect(f.cell("SKU-1", "S1").exists == false)

        let s1 = f.location("S1")
        f.applied(f.event(.transferOut, "SKU-1", "DC1", 6) { $0.toLocation = s1 })
        f.expect("SKU-1", "DC1", Buckets(onHand: 14), sellable: 14)
        f.expect("SKU-1", "S1", Buckets(inbound: 6), sellable: 0, projected: 6)
        #expect(f.cell("SKU-1", "S1").exists)
        #expect(f.counters.eventsAppliedByKind[Int(StockEventKind.transferOut.rawValue)] == 1)
        f.engine.checkInvariants()
    }

    @Test func adjustEveryAdjustableBucket() {
        let f = LedgerFixture()
        f.applied(f.event(.count, "SKU-1", "S1", 10) {
            $0.flags = [.countsDamaged, .countsQuarantine]
            $0.countDamaged = 1
            $0.countQuarantine = 2
        })
        f.expect("SKU-1", "S1", Buckets(onHand: 10, damaged: 1, quarantine: 2), sellable: 7)

        typealias Step = (bucket: Bucket, delta: Int64, after: Buckets, sellable: Int64, projected: Int64, short: Bool)
        let steps: [Step] = [
            (.onHand, -3, Buckets(onHand: 7, damaged: 1, quarantine: 2), 4, 4, false),
            (.damaged, 2, Buckets(onHand: 7, damaged: 3, quarantine: 2), 2, 2, false),
            (.quarantine, -5, Buckets(onHand: 7, damaged: 3), 4, 4, false),
            (.inbound, 4, Buckets(onHand: 7, damaged: 3, inbound: 4), 4, 8, false),
            (.returnPending, 1, Buckets(onHand: 7, damaged: 3, inbound: 4, returnPending: 1), 4, 8, false),
            (.safetyStock, 2, Buckets(onHand: 7, damaged: 3, inbound: 4, returnPending: 1, safetyStock: 2), 2, 6, false),
            (.damaged, -4, Buckets(onHand: 7, inbound: 4, returnPending: 1, safetyStock: 2), 5, 9, false),
            (.inbound, -6, Buckets(onHand: 7, returnPending: 1, safetyStock: 2), 5, 5, false),
            (.returnPending, -3, Buckets(onHand: 7, safetyStock: 2), 5, 5, false),
            (.safetyStock, -5, Buckets(onHand: 7), 7, 7, false),
            (.onHand, -12, Buckets(onHand: -5), 0, 0, true),
        ]
        for step in steps {
            f.applied(f.event(.adjust, "SKU-1", "S1", step.delta) { $0.bucket = step.bucket })
            f.expect("SKU-1", "S1", step.after, sellable: step.sellable, projected: step.projected, short: step.short)
        }
        // onHand 0, damaged 1, quarantine 3, committed 0, reserved 0, inbound 2, returnPending 2, safetyStock 3.
        #expect(f.counters.exceptionUnitsByBucket == [0, 1, 3, 0, 0, 2, 2, 3])
        #expect(f.counters.eventsAppliedByKind[Int(StockEventKind.adjust.rawValue)] == 11)
        #expect(f.counters.shortCells == 1)
        f.engine.checkInvariants()
    }

    @Test func count() {
        let f = LedgerFixture()
        f.applied(f.event(.count, "SKU-1", "S1", 12) {
            $0.flags = [.countsDamaged, .countsQuarantine]
            $0.countDamaged = 1
            $0.countQuarantine = 3
        })
        #expect(f.reserve("r-count", [("SKU-1", "S1", 2)]).state == .held)
        f.expect("SKU-1", "S1", Buckets(onHand: 12, damaged: 1, quarantine: 3, reserved: 2), sellable: 6)

        f.applied(f.event(.count, "SKU-1", "S1", 9))
        f.expect("SKU-1", "S1", Buckets(onHand: 9, damaged: 1, quarantine: 3, reserved: 2), sellable: 3)

        f.applied(f.event(.count, "SKU-1", "S1", 7) {
            $0.flags = [.countsDamaged, .countsQuarantine]
            $0.countDamaged = 2
            $0.countQuarantine = 0
        })
        f.expect("SKU-1", "S1", Buckets(onHand: 7, damaged: 2, reserved: 2), sellable: 3)

        f.applied(f.event(.count, "SKU-1", "S1", 3))
        f.expect("SKU-1", "S1", Buckets(onHand: 3, damaged: 2, reserved: 2), sellable: 0, short: true)
        #expect(f.counters.shortCells == 1)
        #expect(f.counters.exceptionUnitsByBucket == [UInt64](repeating: 0, count: 8))
        f.engine.checkInvariants()
    }

    @Test func countDamagedOnlyLeavesQuarantine() {
        let f = LedgerFixture()
        f.applied(f.event(.count, "SKU-1", "S1", 12) {
            $0.flags = [.countsDamaged, .countsQuarantine]
            $0.countDamaged = 1
            $0.countQuarantine = 3
        })
        f.applied(f.event(.count, "SKU-1", "S1", 12) {
            $0.flags = .countsDamaged
            $0.countDamaged = 4
            $0.countQuarantine = 99 // not flagged: ignored
        })
        f.expect("SKU-1", "S1", Buckets(onHand: 12, damaged: 4, quarantine: 3), sellable: 5)
    }

    @Test func returnAuthorized() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 5))
        f.expect("SKU-1", "S1", Buckets(onHand: 5), sellable: 5)
        f.applied(f.event(.returnAuthorized, "SKU-1", "S1", 3))
        f.expect("SKU-1", "S1", Buckets(onHand: 5, returnPending: 3), sellable: 5)
    }

    @Test func returnReceived() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 5), f.event(.returnAuthorized, "SKU-1", "S1", 3))
        f.expect("SKU-1", "S1", Buckets(onHand: 5, returnPending: 3), sellable: 5)

        f.applied(f.event(.returnReceived, "SKU-1", "S1", 2))
        f.expect("SKU-1", "S1", Buckets(onHand: 7, quarantine: 2, returnPending: 1), sellable: 5)
        #expect(f.exceptionUnits(.returnPending) == 0)

        f.applied(f.event(.returnReceived, "SKU-1", "S1", 4))
        f.expect("SKU-1", "S1", Buckets(onHand: 11, quarantine: 6), sellable: 5)
        #expect(f.exceptionUnits(.returnPending) == 3)
    }

    @Test func dispositionEveryOutcome() {
        let f = LedgerFixture()
        f.applied(f.event(.count, "SKU-1", "S1", 11) {
            $0.flags = .countsQuarantine
            $0.countQuarantine = 6
        })
        f.expect("SKU-1", "S1", Buckets(onHand: 11, quarantine: 6), sellable: 5)

        let steps: [(DispositionOutcome, Int64, Buckets, Int64, UInt64)] = [
            (.restock, 2, Buckets(onHand: 11, quarantine: 4), 7, 0),
            (.damaged, 1, Buckets(onHand: 11, damaged: 1, quarantine: 3), 7, 0),
            (.scrap, 1, Buckets(onHand: 10, damaged: 1, quarantine: 2), 7, 0),
            (.vendor, 1, Buckets(onHand: 9, damaged: 1, quarantine: 1), 7, 0),
            (.damaged, 3, Buckets(onHand: 9, damaged: 4), 5, 2),
        ]
        for (outcome, quantity, after, sellable, exception) in steps {
            f.applied(f.event(.disposition, "SKU-1", "S1", quantity) { $0.outcome = outcome })
            f.expect("SKU-1", "S1", after, sellable: sellable)
            #expect(f.exceptionUnits(.quarantine) == exception, "after \(outcome) \(quantity)")
        }
        #expect(f.counters.eventsAppliedByKind[Int(StockEventKind.disposition.rawValue)] == 5)
    }

    @Test func damage() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 10))
        f.applied(f.event(.damage, "SKU-1", "S1", 3))
        f.expect("SKU-1", "S1", Buckets(onHand: 10, damaged: 3), sellable: 7)
        f.applied(f.event(.damage, "SKU-1", "S1", 8))
        f.expect("SKU-1", "S1", Buckets(onHand: 10, damaged: 11), sellable: 0, short: true)
        #expect(f.counters.shortCells == 1)
    }

    @Test func writeOffEachBucket() {
        let f = LedgerFixture()
        f.applied(f.event(.count, "SKU-1", "S1", 20) {
            $0.flags = [.countsDamaged, .countsQuarantine]
            $0.countDamaged = 4
            $0.countQuarantine = 3
        })
        f.expect("SKU-1", "S1", Buckets(onHand: 20, damaged: 4, quarantine: 3), sellable: 13)

        let steps: [(Bucket, Int64, Buckets, Int64, UInt64)] = [
            (.onHand, 2, Buckets(onHand: 18, damaged: 4, quarantine: 3), 11, 0),
            (.damaged, 3, Buckets(onHand: 15, damaged: 1, quarantine: 3), 11, 0),
            (.quarantine, 3, Buckets(onHand: 12, damaged: 1), 11, 0),
            (.damaged, 2, Buckets(onHand: 10), 10, 1),
        ]
        for (bucket, quantity, after, sellable, exception) in steps {
            f.applied(f.event(.writeOff, "SKU-1", "S1", quantity) { $0.bucket = bucket })
            f.expect("SKU-1", "S1", after, sellable: sellable)
            #expect(f.exceptionUnits(.damaged) == exception, "after writeOff \(bucket) \(quantity)")
        }
        #expect(f.exceptionUnits(.quarantine) == 0)
    }

    @Test func setSafetyStock() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 10))
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        f.applied(f.event(.setSafetyStock, "SKU-1", "S1", 3))
        f.expect("SKU-1", "S1", Buckets(onHand: 10, safetyStock: 3), sellable: 7)
        f.applied(f.event(.setSafetyStock, "SKU-1", "S1", 15))
        f.expect("SKU-1", "S1", Buckets(onHand: 10, safetyStock: 15), sellable: 0, short: false)
        f.applied(f.event(.setSafetyStock, "SKU-1", "S1", 0))
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        #expect(f.counters.shortCells == 0)
    }

    /// The design's own example: 10 on hand, 2 reserved, 1 quarantined, 1 safety stock → 6 sellable.
    @Test func designExampleSellable() {
        let f = LedgerFixture()
        f.applied(
            f.event(.receive, "SKU-1", "S1", 10), f.event(.adjust, "SKU-1", "S1", 1) { $0.bucket = .quarantine },
            f.event(.setSafetyStock, "SKU-1", "S1", 1), f.event(.adjust, "SKU-1", "S1", 5) { $0.bucket = .inbound })
        #expect(f.reserve("r", [("SKU-1", "S1", 2)]).state == .held)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, quarantine: 1, reserved: 2, inbound: 5, safetyStock: 1),
                 sellable: 6, projected: 11)
    }

    /// Exception counters are kept per bucket and summed over shards by `Engine.statistics()`.
    @Test func exceptionCountersSumOverShards() {
        let f = LedgerFixture()
        // Four SKUs on four different shards.
        let names = f.namesOnDistinctShards(["A", "B", "C", "D"])
        let (A, B, C, D) = (names[0], names[1], names[2], names[3])
        f.applied(
            // inbound: 3 past 0
            f.event(.adjust, A, "S1", 3) { $0.bucket = .inbound },
            f.event(.receive, A, "S1", 6) { $0.flags = .closesInbound },
            // returnPending: 3 past 0
            f.event(.returnAuthorized, B, "S1", 1), f.event(.returnReceived, B, "S1", 4),
            // quarantine: 2 past 0
            f.event(.disposition, C, "S1", 2) { $0.outcome = .restock },
            // damaged: 1 past 0
            f.event(.receive, D, "S1", 5), f.event(.writeOff, D, "S1", 1) { $0.bucket = .damaged })
        let shards = Set([A, B, C, D].map { f.engine.shardIndex(of: f.sku($0)) })
        #expect(shards.count == 4)
        #expect(f.counters.exceptionUnitsByBucket == [0, 1, 2, 0, 0, 3, 3, 0])
        f.expect(C, "S1", Buckets(), sellable: 0)
        f.expect(D, "S1", Buckets(onHand: 4), sellable: 4)
    }

    /// The short flag follows the cell both ways and the counter counts the cells short right now.
    @Test func shortFlagAndShortCellCounter() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "A", "S1", 5), f.event(.receive, "B", "S1", 5), f.event(.receive, "C", "S1", 5))
        #expect(f.reserve("a", [("A", "S1", 5)]).state == .held)
        f.expect("A", "S1", Buckets(onHand: 5, reserved: 5), sellable: 0, short: false)
        #expect(f.counters.shortCells == 0)

        f.applied(f.event(.ship, "A", "S1", 1), f.event(.damage, "B", "S1", 6), f.event(.ship, "C", "S1", 6))
        f.expect("A", "S1", Buckets(onHand: 4, reserved: 5), sellable: 0, short: true)
        f.expect("B", "S1", Buckets(onHand: 5, damaged: 6), sellable: 0, short: true)
        f.expect("C", "S1", Buckets(onHand: -1), sellable: 0, short: true)
        #expect(f.counters.shortCells == 3)

        // A SKU query carries the flag of any short cell.
        let answer = f.engine.query([.sku(f.sku("A")), .sku(f.sku("D-unknown"))]).answers
        #expect(answer[0].isShort && !answer[1].isShort)

        // Recovering: a receipt covers A, a write-off removes B's damaged units, a count fixes C.
        f.applied(f.event(.receive, "A", "S1", 1))
        #expect(f.counters.shortCells == 2)
        f.applied(f.event(.writeOff, "B", "S1", 1) { $0.bucket = .damaged })
        f.expect("B", "S1", Buckets(onHand: 4, damaged: 5), sellable: 0, short: true)
        f.applied(f.event(.adjust, "B", "S1", -5) { $0.bucket = .damaged })
        f.expect("B", "S1", Buckets(onHand: 4), sellable: 4, short: false)
        f.applied(f.event(.count, "C", "S1", 0))
        f.expect("C", "S1", Buckets(), sellable: 0, short: false)
        #expect(f.counters.shortCells == 0)

        // Releasing the reservation of a short cell also ends the shortage.
        f.applied(f.event(.ship, "A", "S1", 2))
        #expect(f.counters.shortCells == 1)
        #expect(f.release("a").state == .released)
        f.expect("A", "S1", Buckets(onHand: 3), sellable: 3, short: false)
        #expect(f.counters.shortCells == 0)
        f.engine.checkInvariants()
    }

    /// Event time is informational: it never reorders anything, and the cell keeps the largest.
    @Test func eventTimeAndVersion() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "A", "S1", 1) { $0.eventMilliseconds = 2_000 })
        f.applied(f.event(.receive, "A", "S1", 1) { $0.eventMilliseconds = 1_000 })
        let cell = f.cell("A", "S1").cell
        #expect(cell.onHand == 2)
        #expect(cell.lastEventMilliseconds == 2_000)
        #expect(cell.version == 2)
    }
}
