import Atomics

/// The engine's notion of now, in milliseconds since 1970 (wall clock, so reservation expiries
/// survive restarts). Tests use a manual clock and move it by hand.
public final class EngineClock: Sendable {
    private let manualMilliseconds: ManagedAtomic<Int64>?

    private init(manualMilliseconds: ManagedAtomic<Int64>?) {
        self.manualMilliseconds = manualMilliseconds
    }

    /// The system's real-time clock.
    public static func system() -> EngineClock { EngineClock(manualMilliseconds: nil) }

    /// A clock that reads `startMilliseconds` until advanced.
    public static func manual(startMilliseconds: Int64 = 1_700_000_000_000) -> EngineClock {
        EngineClock(manualMilliseconds: ManagedAtomic(startMilliseconds))
    }

    /// Whether this clock only moves when told to.
    public var isManual: Bool { manualMilliseconds != nil }

    /// Now, in milliseconds since 1970.
    @inline(__always) public func nowMilliseconds() -> Int64 {
        if let manualMilliseconds { return manualMilliseconds.load(ordering: .acquiring) }
        return wallClockMilliseconds()
    }

    /// Moves a manual clock forward. Precondition: the clock is manual and `milliseconds >= 0`.
    public func advance(byMilliseconds milliseconds: Int64) {
        precondition(milliseconds >= 0, "clocks do not go back")
        guard let manualMilliseconds else { preconditionFailure("only a manual clock can be advanced") }
        manualMilliseconds.wrappingIncrement(by: milliseconds, ordering: .releasing)
    }
}
