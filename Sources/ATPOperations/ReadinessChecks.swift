import Synchronization

/// The conditions `/readyz` reports: named checks, all of which must hold. atpd adds "listening"
/// (the protocol port is bound); the durability code adds its own ("recovery finished", "journal
/// writable") with `add(_:_:)`. Checks run at each `/readyz` request and scrape: keep them cheap.
public final class ReadinessChecks: Sendable {
    /// A check's answer: nil when it holds, else why not (one line for people).
    public typealias Check = @Sendable () -> String?

    private let checks = Mutex<[(name: String, check: Check)]>([])

    /// No checks: ready.
    public init() {}

    /// Adds a condition. `name` says what it checks ("listening", "recovery").
    public func add(_ name: String, _ check: @escaping Check) {
        checks.withLock { $0.append((name, check)) }
    }

    /// Runs every check.
    public func check() -> ReadinessReport {
        let current = checks.withLock { $0 }
        var failures: [String] = []
        for (name, check) in current {
            if let why = check() { failures.append("\(name): \(why)") }
        }
        return ReadinessReport(failures: failures)
    }
}

/// What `ReadinessChecks.check()` found.
public struct ReadinessReport: Sendable, Equatable {
    /// "name: why" of every condition that does not hold.
    public let failures: [String]
    /// Whether every condition holds.
    public var isReady: Bool { failures.isEmpty }
}
