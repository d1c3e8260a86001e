/// What a soak run did over its cycles: operations by kind, unknowns, violations by kind and the
/// cycles (with their seeds) that had them.
public struct CrashSoakSummary: Sendable, CustomStringConvertible {
    /// Cycles run (a cycle whose restart was refused counts).
    public var cycles = 0
    /// Cycles per workload mode.
    public var cyclesByMode: [CrashWorkload.Mode: Int] = [:]
    /// Acknowledged and unknown operations by kind, over every cycle.
    public var acknowledgedByKind: [OperationKind: Int] = [:]
    public var unknownByKind: [OperationKind: Int] = [:]
    /// Reservations found expired after restarts.
    public var foundExpired = 0
    /// Violations by kind, over every cycle.
    public var violationsByKind: [CrashViolation.Kind: Int] = [:]
    /// Cycles with violations: (cycle number, seed, kinds).
    public var failedCycles: [(cycle: Int, seed: UInt64, kinds: String)] = []

    /// An empty summary.
    public init() {}

    /// Adds cycle `cycle`'s report.
    public mutating func add(_ report: CrashSoak.CycleReport, cycle: Int) {
        cycles += 1
        cyclesByMode[report.mode, default: 0] += 1
        acknowledgedByKind.merge(report.acknowledgedByKind, uniquingKeysWith: +)
        unknownByKind.merge(report.unknownByKind, uniquingKeysWith: +)
        foundExpired += report.foundExpired
        for violation in report.violations { violationsByKind[violation.kind, default: 0] += 1 }
        if !report.violations.isEmpty {
            failedCycles.append((cycle, report.seed, CrashSoak.CycleReport.kinds(report.violations)))
        }
    }

    public var description: String {
        let acknowledged = acknowledgedByKind.values.reduce(0, +)
        let unknown = unknownByKind.values.reduce(0, +)
        var lines = [
            "\(cycles) cycles (" + cyclesByMode.keys.sorted { $0.rawValue < $1.rawValue }.map { "\($0) \(cyclesByMode[$0]!)" }
                .joined(separator: ", ") + ")",
            "operations acknowledged \(acknowledged) \(CrashSoak.CycleReport.counts(acknowledgedByKind))",
            "unknown at the kills \(unknown) \(CrashSoak.CycleReport.counts(unknownByKind))",
            "reservations found expired after restarts \(foundExpired)",
        ]
        if violationsByKind.isEmpty {
            lines.append("violations: none")
        } else {
            lines.append("violations: " + violationsByKind.keys.sorted().map { "\($0) \(violationsByKind[$0]!)" }.joined(separator: ", "))
            lines.append("cycles with violations: " + failedCycles.map { "\($0.cycle) (seed \($0.seed): \($0.kinds))" }
                .joined(separator: "; "))
        }
        return lines.joined(separator: "\n")
    }
}
