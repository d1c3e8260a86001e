import ATPLedger
import Dispatch
import Testing

/// One test per reservation outcome (docs/SEMANTICS.md §6).
@Suite struct ReservationTests {
    static let start: Int64 = 1_700_000_000_000

    /// A cell SKU-1 @ S1 with 10 units on hand.
    func tenOnHand(configure: (inout LedgerConfiguration) -> Void = { _ in }) -> LedgerFixture {
        let f = LedgerFixture(configure: configure)
        f.applied(f.event(.receive, "SKU-1", "S1", 10))
        return f
    }

    /// The worked example of §6, row by row.
    @Test func workedExample() {
        let f = tenOnHand()
        let r1 = f.reserve("R1", [("SKU-1", "S1", 4)])
        #expect(r1.state == .held && r1.grantedUnits == 4 && r1.expiresAtMilliseconds == Self.start + 60_000)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 4), sellable: 6)

        let r2 = f.reserve("R2", [("SKU-1", "S1", 8)])
        #expect(r2.state == .refused && r2.grantedUnits == 0)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 4), sellable: 6)

        let r3 = f.reserve("R3", [("SKU-1", "S1", 8)], mode: .partial)
        #expect(r3.state == .held && r3.grantedUnits == 6 && !r3.isFullyGranted)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 10), sellable: 0)

        #expect(f.commit("R1").state == .committed)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4, reserved: 6), sellable: 0)

        #expect(f.release("R3").state == .released)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4), sellable: 6)

        #expect(f.ship("SKU-1", "S1", 3, correlation: "R1") == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 7, committed: 1), sellable: 6)

        let released = f.release("R1")
        #expect(released.state == .released && released.error == nil && !released.replayed)
        f.expect("SKU-1", "S1", Buckets(onHand: 7), sellable: 7)

        let c = f.counters
        #expect(c.reservationsGranted == 1 && c.reservationsPartial == 1 && c.reservationsRefused == 1)
        #expect(c.reservationsCommitted == 1 && c.reservationsReleased == 2 && c.reservationsExpired == 0)
        f.engine.checkInvariants()
    }

    /// A commit or release takes the reservation out of the expiry queue at once (issue 14: entries
    /// of a 7-day ttl stayed until their deadline): after settling every one of 200 week-long
    /// reservations nothing is queued to expire (the invariants check queued == held), and
    /// advancing the clock a week expires nothing.
    @Test func settlingCancelsTheExpiry() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 1_000))
        let week: Int64 = 7 * 24 * 3600 * 1000
        for n in 0..<200 {
            #expect(f.reserve("W\(n)", [("SKU-1", "S1", 1)], ttl: week).state == .held)
        }
        f.engine.checkInvariants()
        #expect(f.engine.statistics().heldReservations == 200)
        for n in 0..<200 {
            #expect((n % 2 == 0 ? f.commit("W\(n)") : f.release("W\(n)")).error == nil)
        }
        f.engine.checkInvariants()
        #expect(f.engine.statistics().heldReservations == 0)
        f.engine.advanceClock(byMilliseconds: week + 1)
        f.engine.waitUntilIdle()
        #expect(f.counters.reservationsExpired == 0)
        f.expect("SKU-1", "S1", Buckets(onHand: 1_000, committed: 100), sellable: 900)
    }

    @Test func granted() {
        let f = tenOnHand()
        let reply = f.reserve("R1", [("SKU-1", "S1", 4)])
        #expect(reply.state == .held)
        #expect(reply.error == nil && !reply.replayed)
        #expect(reply.isFullyGranted && reply.grantedUnits == 4)
        #expect(reply.lines == [LineGrant(requested: 4, granted: 4,
                                          allocations: [LineAllocation(location: f.location("S1"), quantity: 4)])])
        #expect(reply.expiresAtMilliseconds == Self.start + 60_000)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 4), sellable: 6)
        let stats = f.engine.statistics()
        #expect(stats.counters.reservationsGranted == 1)
        #expect(stats.heldReservations == 1 && stats.holds == 1)
    }

    @Test func partial() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 4)]).state == .held)
        let reply = f.reserve("R3", [("SKU-1", "S1", 8)], mode: .partial)
        #expect(reply.state == .held && reply.error == nil)
        #expect(reply.lines == [LineGrant(requested: 8, granted: 6,
                                          allocations: [LineAllocation(location: f.location("S1"), quantity: 6)])])
        #expect(!reply.isFullyGranted)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 10), sellable: 0)
        #expect(f.counters.reservationsPartial == 1)

        // Partial with nothing left: refused.
        let none = f.reserve("R4", [("SKU-1", "S1", 1)], mode: .partial)
        #expect(none.state == .refused && none.grantedUnits == 0)
        #expect(f.counters.reservationsRefused == 1)
    }

    @Test func refusedAllOrNothing() {
        let f = tenOnHand()
        f.applied(f.event(.receive, "SKU-1", "S2", 3))
        #expect(f.reserve("R1", [("SKU-1", "S1", 4)]).state == .held)
        // The second line cannot be covered: the first (which could) is not granted either.
        let reply = f.reserve("R2", [("SKU-1", "S2", 2), ("SKU-1", "S1", 8)])
        #expect(reply.state == .refused && reply.error == nil)
        #expect(reply.lines == [LineGrant(requested: 2), LineGrant(requested: 8)])
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 4), sellable: 6)
        f.expect("SKU-1", "S2", Buckets(onHand: 3), sellable: 3)
        let stats = f.engine.statistics()
        #expect(stats.counters.reservationsRefused == 1)
        #expect(stats.heldReservations == 1 && stats.holds == 1)
        f.engine.checkInvariants()
    }

    @Test func idempotentReplay() {
        let f = tenOnHand()
        let first = f.reserve("R1", [("SKU-1", "S1", 4)])
        f.engine.advanceClock(byMilliseconds: 10)
        // The same id with other lines, ttl and mode: the first answer, nothing changes.
        let again = f.reserve("R1", [("SKU-1", "S1", 9)], ttl: 5, mode: .partial)
        #expect(again.replayed && again.state == .held && again.error == nil)
        #expect(again.lines == first.lines)
        #expect(again.expiresAtMilliseconds == first.expiresAtMilliseconds)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 4), sellable: 6)
        #expect(f.counters.reservationsGranted == 1)

        // A refused id replays as refused, even once stock is there.
        #expect(f.reserve("R2", [("SKU-1", "S1", 7)]).state == .refused)
        #expect(f.release("R1").state == .released)
        let refusedAgain = f.reserve("R2", [("SKU-1", "S1", 7)])
        #expect(refusedAgain.state == .refused && refusedAgain.replayed)
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        f.engine.checkInvariants()
    }

    @Test func commit() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 4)]).state == .held)
        let reply = f.commit("R1")
        #expect(reply.state == .committed && reply.error == nil && !reply.replayed)
        #expect(reply.grantedUnits == 4 && reply.expiresAtMilliseconds == 0)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4), sellable: 6)
        // Committed units do not expire.
        f.engine.advanceClock(byMilliseconds: 120_000)
        f.engine.waitUntilIdle()
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4), sellable: 6)
        let stats = f.engine.statistics()
        #expect(stats.counters.reservationsCommitted == 1 && stats.counters.reservationsExpired == 0)
        #expect(stats.heldReservations == 0 && stats.holds == 1)
        // A reserve replay answers the state now.
        let replay = f.reserve("R1", [("SKU-1", "S1", 4)])
        #expect(replay.replayed && replay.state == .committed && replay.grantedUnits == 4)
        f.engine.checkInvariants()
    }

    @Test func commitReplay() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 4)]).state == .held)
        #expect(f.commit("R1").state == .committed)
        let again = f.commit("R1")
        #expect(again.state == .committed && again.replayed && again.error == nil)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4), sellable: 6)
        #expect(f.counters.reservationsCommitted == 1)
    }

    @Test func commitAfterExpiry() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 4)], ttl: 1_000).state == .held)
        // At exactly the deadline the reservation is expired, whether or not the timer ran yet.
        f.engine.advanceClock(byMilliseconds: 1_000)
        let reply = f.commit("R1")
        #expect(reply.error == .notHeld(.expired))
        #expect(reply.state == .expired && !reply.replayed)
        f.engine.waitUntilIdle()
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        #expect(f.counters.reservationsExpired == 1 && f.counters.reservationsCommitted == 0)
    }

    @Test func commitAfterRelease() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 4)]).state == .held)
        #expect(f.release("R1").state == .released)
        let reply = f.commit("R1")
        #expect(reply.error == .notHeld(.released) && reply.state == .released)
        #expect(f.commit("R-refused-source").error == .unknownReservation)
        #expect(f.reserve("R2", [("SKU-1", "S1", 11)]).state == .refused)
        #expect(f.commit("R2").error == .notHeld(.refused))
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
    }

    @Test func release() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 4)]).state == .held)
        let reply = f.release("R1")
        #expect(reply.state == .released && reply.error == nil && !reply.replayed)
        #expect(reply.grantedUnits == 4 && reply.expiresAtMilliseconds == 0)
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        let again = f.release("R1")
        #expect(again.state == .released && again.replayed && again.error == nil)
        let stats = f.engine.statistics()
        #expect(stats.counters.reservationsReleased == 1)
        #expect(stats.heldReservations == 0 && stats.holds == 0 && stats.rememberedReservations == 1)
        f.engine.checkInvariants()
    }

    @Test func releaseAfterCommitReturnsCommittedUnits() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 4)]).state == .held)
        #expect(f.commit("R1").state == .committed)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4), sellable: 6)
        let reply = f.release("R1")
        #expect(reply.state == .released && reply.error == nil)
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        #expect(f.engine.statistics().holds == 0)
        f.engine.checkInvariants()
    }

    @Test func releaseOfUnknownID() {
        let f = tenOnHand()
        let reply = f.release("never")
        #expect(reply.error == .unknownReservation)
        #expect(reply.state == .refused && reply.lines.isEmpty && !reply.replayed)
        #expect(f.engine.statistics().rememberedReservations == 0)
    }

    @Test func commitOfUnknownID() {
        let f = tenOnHand()
        let reply = f.commit("never")
        #expect(reply.error == .unknownReservation)
        #expect(reply.state == .refused && reply.lines.isEmpty && !reply.replayed)
        // It stays unknown: a later reserve is a new reservation.
        let reserve = f.reserve("never", [("SKU-1", "S1", 1)])
        #expect(reserve.state == .held && !reserve.replayed)
    }

    @Test func expiryByTheEngine() {
        let f = tenOnHand()
        let reply = f.reserve("R1", [("SKU-1", "S1", 3)], ttl: 1_000)
        #expect(reply.expiresAtMilliseconds == Self.start + 1_000)
        f.engine.advanceClock(byMilliseconds: 999)
        f.engine.waitUntilIdle()
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 3), sellable: 7)
        #expect(f.engine.statistics().heldReservations == 1)

        f.engine.advanceClock(byMilliseconds: 1)
        f.engine.waitUntilIdle()
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        let stats = f.engine.statistics()
        #expect(stats.counters.reservationsExpired == 1)
        #expect(stats.heldReservations == 0 && stats.holds == 0)
        f.engine.checkInvariants()
    }

    @Test func expiryAcrossShards() {
        let f = tenOnHand()
        f.applied(f.event(.receive, "SKU-2", "S1", 10))
        #expect(f.engine.shardIndex(of: f.sku("SKU-1")) != f.engine.shardIndex(of: f.sku("SKU-2")))
        // An id whose home is neither SKU's shard.
        let id = f.reservationID(homeShard: 5)
        #expect(f.reserve(id, [("SKU-1", "S1", 2), ("SKU-2", "S1", 3)], ttl: 500).isFullyGranted)
        f.engine.advanceClock(byMilliseconds: 500)
        f.engine.waitUntilIdle()
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        f.expect("SKU-2", "S1", Buckets(onHand: 10), sellable: 10)
        f.engine.checkInvariants()
    }

    @Test func lateRetryAfterExpiryReturnsRememberedOutcome() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 3)], ttl: 1_000).state == .held)
        f.engine.advanceClock(byMilliseconds: 5_000)
        f.engine.waitUntilIdle()
        let retry = f.reserve("R1", [("SKU-1", "S1", 3)], ttl: 1_000)
        #expect(retry.state == .expired && retry.replayed && retry.grantedUnits == 3 && retry.expiresAtMilliseconds == 0)
        let release = f.release("R1")
        #expect(release.state == .expired && release.replayed && release.error == nil)
        #expect(f.commit("R1").error == .notHeld(.expired))
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
        #expect(f.counters.reservationsExpired == 1 && f.counters.reservationsGranted == 1)
    }

    @Test func lateRetryAfterReleaseReturnsRememberedOutcome() {
        let f = tenOnHand()
        #expect(f.reserve("R1", [("SKU-1", "S1", 3)]).state == .held)
        #expect(f.release("R1").state == .released)
        f.engine.advanceClock(byMilliseconds: 3_600_000)
        let retry = f.reserve("R1", [("SKU-1", "S1", 3)])
        #expect(retry.state == .released && retry.replayed)
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
    }

    @Test func forgettingAfterTheRetentionWindow() {
        let f = tenOnHand { $0.reservationOutcomeRetentionMilliseconds = 1_000 }
        let id = f.reservationID(homeShard: 3)
        let other1 = f.reservationID(homeShard: 3, skipping: [id])
        let other2 = f.reservationID(homeShard: 3, skipping: [id, other1])
        #expect(f.reserve(id, [("SKU-1", "S1", 3)]).state == .held)
        #expect(f.release(id).state == .released)

        // At the end of the window the outcome is still remembered, even after another settle.
        f.engine.advanceClock(byMilliseconds: 1_000)
        #expect(f.reserve(other1, [("SKU-1", "S1", 99)]).state == .refused)
        #expect(f.commit(id).error == .notHeld(.released))

        // Past the window it is dropped at the next settle on its home shard.
        f.engine.advanceClock(byMilliseconds: 1)
        #expect(f.reserve(other2, [("SKU-1", "S1", 99)]).state == .refused)
        #expect(f.commit(id).error == .unknownReservation)
        #expect(f.release(id).error == .unknownReservation)
        let fresh = f.reserve(id, [("SKU-1", "S1", 2)])
        #expect(fresh.state == .held && !fresh.replayed && fresh.grantedUnits == 2)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 2), sellable: 8)
        f.engine.checkInvariants()
    }

    /// Retention 0 (SEMANTICS §6): "after the window" is strict, so a settle in the same
    /// millisecond still remembers the outcome and the first settle a millisecond later drops it.
    @Test func retentionZeroRemembersWithinTheSameMillisecond() {
        let f = tenOnHand { $0.reservationOutcomeRetentionMilliseconds = 0 }
        let id = f.reservationID(homeShard: 2)
        let other1 = f.reservationID(homeShard: 2, skipping: [id])
        let other2 = f.reservationID(homeShard: 2, skipping: [id, other1])
        #expect(f.reserve(id, [("SKU-1", "S1", 3)]).state == .held)
        #expect(f.release(id).state == .released)
        #expect(f.reserve(other1, [("SKU-1", "S1", 99)]).state == .refused)
        #expect(f.commit(id).error == .notHeld(.released), "same millisecond: still remembered")
        f.engine.advanceClock(byMilliseconds: 1)
        #expect(f.reserve(other2, [("SKU-1", "S1", 99)]).state == .refused)
        #expect(f.commit(id).error == .unknownReservation, "one millisecond later: forgotten")
        f.engine.checkInvariants()
    }

    /// A committed outcome is forgotten like the others; its unshipped committed units stay on the
    /// cell until shipped, and the id cannot hold units on that shard again while they do.
    @Test func forgottenCommittedReservation() {
        let f = tenOnHand { $0.reservationOutcomeRetentionMilliseconds = 1_000 }
        let id = f.reservationID(homeShard: 6)
        let other = f.reservationID(homeShard: 6, skipping: [id])
        #expect(f.reserve(id, [("SKU-1", "S1", 4)]).state == .held)
        #expect(f.commit(id).state == .committed)
        f.engine.advanceClock(byMilliseconds: 1_001)
        #expect(f.reserve(other, [("SKU-1", "S1", 99)]).state == .refused)

        #expect(f.release(id).error == .unknownReservation)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4), sellable: 6)
        let reuse = f.reserve(id, [("SKU-1", "S1", 2)])
        #expect(reuse.state == .refused && reuse.grantedUnits == 0 && !reuse.replayed)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, committed: 4), sellable: 6)
        f.engine.checkInvariants()

        // The shipment still finds the committed units by the id.
        #expect(f.ship("SKU-1", "S1", 4, correlation: id) == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 6), sellable: 6)
        f.engine.checkInvariants()
    }

    @Test func invalidRequests() {
        let f = tenOnHand {
            $0.reservationLinesMax = 3
            $0.quantityMax = 1_000
            $0.reservationTTLMillisecondsMax = 10_000
        }
        let sku = f.sku("SKU-1")
        let s1 = f.location("S1")
        func line(_ quantity: Int64) -> ReservationLine { ReservationLine(sku: sku, target: .location(s1), quantity: quantity) }
        let cases: [(String, [ReservationLine], Int64, ReservationRequestProblem)] = [
            ("no-lines", [], 1_000, .noLines),
            ("too-many", [line(1), line(1), line(1), line(1)], 1_000, .tooManyLines),
            ("zero", [line(1), line(0)], 1_000, .quantityNotPositive),
            ("negative", [line(-1)], 1_000, .quantityNotPositive),
            ("too-large", [line(1_001)], 1_000, .quantityTooLarge),
            ("ttl-zero", [line(1)], 0, .ttlOutOfRange),
            ("ttl-negative", [line(1)], -5, .ttlOutOfRange),
            ("ttl-long", [line(1)], 10_001, .ttlOutOfRange),
        ]
        for (id, lines, ttl, problem) in cases {
            let reply = f.engine.reserve(ReserveRequest(id: f.rid(id), lines: lines, ttlMilliseconds: ttl, mode: .partial))
            #expect(reply.error == .invalidRequest(problem), "\(id)")
            #expect(reply.state == .refused && reply.lines.isEmpty && !reply.replayed, "\(id)")
        }
        // The boundaries are accepted.
        let ok = f.engine.reserve(ReserveRequest(id: f.rid("ok"), lines: [line(1), line(1), line(1)],
                                                 ttlMilliseconds: 10_000, mode: .allOrNothing))
        #expect(ok.state == .held && ok.grantedUnits == 3)
        // Nothing was recorded: the ids are still unknown and a valid request with one works.
        #expect(f.commit("zero").error == .unknownReservation)
        let retry = f.engine.reserve(ReserveRequest(id: f.rid("zero"), lines: [line(2)], ttlMilliseconds: 1_000,
                                                    mode: .allOrNothing))
        #expect(retry.state == .held && !retry.replayed)
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 5), sellable: 5)
        let c = f.counters
        #expect(c.reservationsRefused == 0 && c.reservationsGranted == 2)
    }

    @Test func crossShardAllOrNothingRefusedLeavesNothingHeld() {
        let f = LedgerFixture()
        // A, B, C on three different shards, on workers 0, 1, 0.
        let names = f.namesOnDistinctShards(["A", "B", "C"])
        let (A, B, C) = (names[0], names[1], names[2])
        f.applied(f.event(.receive, A, "S1", 5), f.event(.receive, B, "S1", 1), f.event(.receive, C, "S1", 7))
        for home in 0..<8 {
            let id = f.reservationID(homeShard: home)
            let reply = f.reserve(id, [(A, "S1", 5), (C, "S1", 7), (B, "S1", 2)])
            #expect(reply.state == .refused && reply.grantedUnits == 0, "home \(home)")
            #expect(reply.lines.allSatisfy { $0.allocations.isEmpty }, "home \(home)")
            // Nothing is held when the answer arrives.
            f.expect(A, "S1", Buckets(onHand: 5), sellable: 5)
            f.expect(B, "S1", Buckets(onHand: 1), sellable: 1)
            f.expect(C, "S1", Buckets(onHand: 7), sellable: 7)
            let stats = f.engine.statistics()
            #expect(stats.holds == 0 && stats.heldReservations == 0, "home \(home)")
            // A replay stays refused.
            #expect(f.reserve(id, [(A, "S1", 1)]).state == .refused)
        }
        #expect(f.counters.reservationsRefused == 8)
        // The same lines that fit are granted across shards.
        let fits = f.reserve("fits", [(A, "S1", 5), (C, "S1", 7), (B, "S1", 1)])
        #expect(fits.isFullyGranted && fits.state == .held)
        f.expect(A, "S1", Buckets(onHand: 5, reserved: 5), sellable: 0)
        f.expect(B, "S1", Buckets(onHand: 1, reserved: 1), sellable: 0)
        f.expect(C, "S1", Buckets(onHand: 7, reserved: 7), sellable: 0)
        #expect(f.engine.statistics().holds == 3)
        f.engine.checkInvariants()
    }

    /// Concurrent all-or-nothing requests over two shards: no cell ever goes short (an oversell would
    /// make it short), refused requests hold nothing, and the cells end holding exactly the grants.
    @Test func crossShardConcurrencyNeverOversells() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "A", "S1", 40), f.event(.receive, "B", "S1", 25))
        let a = f.sku("A"), b = f.sku("B"), s1 = f.location("S1")
        let requests = 4
        let perThread = 40
        let grantedA = Counter(), grantedB = Counter(), anomalies = Counter(), refusals = Counter()
        let engine = f.engine
        DispatchQueue.concurrentPerform(iterations: requests + 1) { thread in
            if thread == requests {
                // A reader: the cells are never short while requests run.
                for _ in 0..<200 {
                    let answers = engine.query([.cell(a, s1), .cell(b, s1)]).answers
                    if answers[0].isShort || answers[1].isShort { anomalies.add(1) }
                }
                return
            }
            for n in 0..<perThread {
                let quantityA = Int64(1 + (n + thread) % 3)
                let quantityB = Int64(1 + (n * 7 + thread) % 2)
                let request = ReserveRequest(
                    id: try! ReservationID("t\(thread)-\(n)"),
                    lines: [ReservationLine(sku: a, target: .location(s1), quantity: quantityA),
                            ReservationLine(sku: b, target: .location(s1), quantity: quantityB)],
                    ttlMilliseconds: 60_000, mode: .allOrNothing)
                let reply = engine.reserve(request)
                if reply.state == .held && reply.isFullyGranted {
                    grantedA.add(quantityA)
                    grantedB.add(quantityB)
                } else if reply.state == .refused && reply.grantedUnits == 0 {
                    refusals.add(1)
                } else {
                    anomalies.add(1)
                }
            }
        }
        #expect(anomalies.value == 0)
        #expect(refusals.value > 0, "demand exceeds supply, so some requests are refused")
        let cellA = f.cell("A", "S1").cell, cellB = f.cell("B", "S1").cell
        #expect(Int64(cellA.reserved) == grantedA.value && Int64(cellB.reserved) == grantedB.value)
        #expect(cellA.reserved <= 40 && cellB.reserved <= 25)
        #expect(f.engine.statistics().counters.shortCells == 0)
        f.engine.checkInvariants()
    }

    @Test func multipleLinesOnTheSameCell() {
        let f = tenOnHand()
        let refused = f.reserve("R1", [("SKU-1", "S1", 6), ("SKU-1", "S1", 6)])
        #expect(refused.state == .refused)
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)

        let partial = f.reserve("R2", [("SKU-1", "S1", 6), ("SKU-1", "S1", 6)], mode: .partial)
        #expect(partial.state == .held && partial.lines.map(\.granted) == [6, 4])
        f.expect("SKU-1", "S1", Buckets(onHand: 10, reserved: 10), sellable: 0)
        #expect(f.engine.statistics().holds == 1)

        #expect(f.commit("R2").state == .committed)
        #expect(f.ship("SKU-1", "S1", 7, correlation: "R2") == .applied)
        f.expect("SKU-1", "S1", Buckets(onHand: 3, committed: 3), sellable: 0)
        #expect(f.release("R2").state == .released)
        f.expect("SKU-1", "S1", Buckets(onHand: 3), sellable: 3)
        f.engine.checkInvariants()
    }

    @Test func linesNamingUnknownThingsGetNothing() {
        let f = tenOnHand()
        let unknownLines = [
            ReservationLine(sku: .unknown, target: .location(f.location("S1")), quantity: 1),
            ReservationLine(sku: f.sku("SKU-1"), target: .location(.unknown), quantity: 1),
            ReservationLine(sku: f.sku("SKU-1"), target: .channel(.unknown, allowSplit: true), quantity: 1),
            ReservationLine(sku: f.sku("SKU-1"), target: .location(f.location("no-cell-here")), quantity: 1),
        ]
        for (n, line) in unknownLines.enumerated() {
            let reply = f.engine.reserve(ReserveRequest(id: f.rid("u\(n)"), lines: [line], ttlMilliseconds: 1_000,
                                                        mode: .partial))
            #expect(reply.state == .refused && reply.grantedUnits == 0 && reply.error == nil, "line \(n)")
        }
        f.expect("SKU-1", "S1", Buckets(onHand: 10), sellable: 10)
    }

    /// Many buyers, one cell: partial requests fill exactly the sellable units, never more.
    @Test func neverGrantsMoreThanSellable() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "HOT", "S1", 100), f.event(.damage, "HOT", "S1", 3),
                  f.event(.setSafetyStock, "HOT", "S1", 5))
        #expect(f.cell("HOT", "S1").sellable == 92)
        let hot = f.sku("HOT"), s1 = f.location("S1")
        let granted = Counter(), anomalies = Counter()
        let engine = f.engine
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for n in 0..<30 {
                let quantity = Int64(1 + (n + thread) % 3)
                let reply = engine.reserve(ReserveRequest(
                    id: try! ReservationID("b\(thread)-\(n)"),
                    lines: [ReservationLine(sku: hot, target: .location(s1), quantity: quantity)],
                    ttlMilliseconds: 60_000, mode: .partial))
                if reply.grantedUnits > quantity { anomalies.add(1) }
                granted.add(reply.grantedUnits)
            }
        }
        #expect(anomalies.value == 0)
        #expect(granted.value == 92)
        f.expect("HOT", "S1", Buckets(onHand: 100, damaged: 3, reserved: 92, safetyStock: 5), sellable: 0)
        #expect(f.reserve("late", [("HOT", "S1", 1)]).state == .refused)
        f.engine.checkInvariants()
    }
}

/// A thread-safe sum for concurrent tests.
final class Counter: @unchecked Sendable {
    private let lock = DispatchQueue(label: "counter")
    private var total: Int64 = 0
    func add(_ value: Int64) { lock.sync { total += value } }
    var value: Int64 { lock.sync { total } }
}
