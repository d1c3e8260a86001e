@testable import ATPLedger
import Synchronization
import Testing

/// The engine's system clock is steady (issue 14 item 9): it reads the wall clock once and moves on
/// by the monotonic clock, so a step of the wall clock neither expires holds early nor late.
@Suite struct EngineClockTests {
    /// A monotonic source the test moves by hand.
    final class Monotonic: Sendable {
        let nanoseconds = Atomic<UInt64>(5_000_000_000)
        func advance(milliseconds: UInt64) { nanoseconds.add(milliseconds * 1_000_000, ordering: .relaxed) }
        var source: @Sendable () -> UInt64 { { self.nanoseconds.load(ordering: .relaxed) } }
    }

    @Test func aWallClockStepDoesNotMoveTheEngineClock() {
        let monotonic = Monotonic()
        var wall: Int64 = 1_800_000_000_000
        let clock = EngineClock.steady(wall: { wall }, monotonicNanoseconds: monotonic.source)
        #expect(clock.nowMilliseconds() == 1_800_000_000_000)
        wall += 3_600_000  // an NTP step forward of an hour
        monotonic.advance(milliseconds: 5)
        #expect(clock.nowMilliseconds() == 1_800_000_000_005)
        wall -= 7_200_000  // and back
        #expect(clock.nowMilliseconds() == 1_800_000_000_005, "never goes back")
        // The real system clock agrees with the wall clock when nothing steps.
        let system = EngineClock.system()
        #expect(abs(system.nowMilliseconds() - wallClockMilliseconds()) < 1_000)
    }

    /// A hold of one second lasts one second of elapsed time whatever the wall clock does.
    @Test func aHoldExpiresAfterItsTTLOfElapsedTimeNotOfWallTime() {
        let monotonic = Monotonic()
        var configuration = LedgerConfiguration()
        configuration.shardCount = 4
        configuration.workerCount = 1
        let engine = try! Engine(configuration: configuration,
                                 clock: .steady(wall: { 1_800_000_000_000 }, monotonicNanoseconds: monotonic.source))
        defer { engine.shutdown() }
        let sku = try! engine.catalog.sku("SKU-1"), location = try! engine.catalog.location("S1")
        let source = try! engine.catalog.source("feed")
        _ = engine.apply(EventBatch(events: [StockEvent(kind: .receive, sku: sku, location: location, quantity: 10,
                                                    source: source, sequence: 1)]))
        let reply = engine.reserve(ReserveRequest(id: try! ReservationID("R1"),
                                                  lines: [ReservationLine(sku: sku, target: .location(location), quantity: 3)],
                                                  ttlMilliseconds: 1_000, mode: .allOrNothing))
        #expect(reply.state == .held && reply.expiresAtMilliseconds == 1_800_000_001_000)
        monotonic.advance(milliseconds: 999)
        engine.waitUntilIdle()
        #expect(engine.statistics().heldReservations == 1, "999 ms later it is still held")
        monotonic.advance(milliseconds: 1)
        engine.waitUntilIdle()
        #expect(engine.statistics().heldReservations == 0 && engine.statistics().counters.reservationsExpired == 1)
    }
}
