import ATPThreads
import Atomics

/// The engine's notion of now, in milliseconds since 1970 (wall-clock based, so reservation expiries
/// survive restarts and clients can read them). Tests use a manual clock and move it by hand.
///
/// The system clock is *steady*: it reads the wall clock once, when it is made, and moves on by the
/// monotonic clock from there. A step of the wall clock while the engine runs (an NTP correction,
/// an operator's `date -s`) therefore neither expires holds early nor keeps them past their ttl
/// (issue 14 item 9): a hold of 15 minutes lasts 15 minutes of elapsed time. It follows the wall
/// clock's rate (the monotonic clock is slewed with it), not its steps; a restart reads the wall
/// clock again, so what a step changed is taken up then.
public final class EngineClock: Sendable {
    private let manualMilliseconds: ManagedAtomic<Int64>?
    /// The wall clock when the steady clock was made, in milliseconds since 1970.
    private let wallStartMilliseconds: Int64
    /// The monotonic clock then, in nanoseconds.
    private let monotonicStartNanoseconds: UInt64
    /// Where monotonic time comes from: nil for the system's (the hot path calls it directly).
    private let monotonicSource: (@Sendable () -> UInt64)?

    private init(manualMilliseconds: ManagedAtomic<Int64>?, wallStartMilliseconds: Int64 = 0,
                 monotonicStartNanoseconds: UInt64 = 0, monotonicSource: (@Sendable () -> UInt64)? = nil) {
        self.manualMilliseconds = manualMilliseconds
        self.wallStartMilliseconds = wallStartMilliseconds
        self.monotonicStartNanoseconds = monotonicStartNanoseconds
        self.monotonicSource = monotonicSource
    }

    /// The system's clock, steady from now: the wall clock read once, moved on by the monotonic clock.
    public static func system() -> EngineClock {
        EngineClock(manualMilliseconds: nil, wallStartMilliseconds: wallClockMilliseconds(),
                    monotonicStartNanoseconds: monotonicNanoseconds())
    }

    /// A steady clock over given sources (tests: a wall clock that steps, a monotonic one that
    /// does not): `wall` is read once, now.
    package static func steady(wall: () -> Int64, monotonicNanoseconds: @escaping @Sendable () -> UInt64) -> EngineClock {
        EngineClock(manualMilliseconds: nil, wallStartMilliseconds: wall(),
                    monotonicStartNanoseconds: monotonicNanoseconds(), monotonicSource: monotonicNanoseconds)
    }

    /// A clock that reads `startMilliseconds` until advanced.
    public static func manual(startMilliseconds: Int64 = 1_700_000_000_000) -> EngineClock {
        EngineClock(manualMilliseconds: ManagedAtomic(startMilliseconds))
    }

    /// Whether this clock only moves when told to.
    public var isManual: Bool { manualMilliseconds != nil }

    /// Now, in milliseconds since 1970. Never goes back.
    @inline(__always) public func nowMilliseconds() -> Int64 {
        if let manualMilliseconds { return manualMilliseconds.load(ordering: .acquiring) }
        let monotonic = monotonicSource?() ?? monotonicNanoseconds()
        return wallStartMilliseconds + Int64((monotonic &- monotonicStartNanoseconds) / 1_000_000)
    }

    /// Moves a manual clock forward. Precondition: the clock is manual and `milliseconds >= 0`.
    public func advance(byMilliseconds milliseconds: Int64) {
        precondition(milliseconds >= 0, "clocks do not go back")
        guard let manualMilliseconds else { preconditionFailure("only a manual clock can be advanced") }
        manualMilliseconds.wrappingIncrement(by: milliseconds, ordering: .releasing)
    }
}
