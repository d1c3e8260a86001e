#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser
import ATPLedger
import ATPSimulator

/// Runs the deterministic simulator (docs/SIMULATOR.md) over many seeds, or one seed again.
@main
struct SimulatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atp-sim",
        abstract: "Runs the ledger's deterministic crash simulator over seeds; a failing seed prints the command that replays it.")

    @Option(help: "Run only this seed (with --verbose, prints what it did).")
    var seed: UInt64?

    @Option(help: "The first seed of a range.")
    var first: UInt64 = 1

    @Option(help: "How many seeds to run from --first.")
    var seeds: Int = 1000

    @Option(help: "Stop after this many seconds (0: no limit); no new seed starts after it.")
    var seconds: Int = 0

    @Option(help: "Scheduler steps per seed.")
    var steps: Int = SimulationOptions(seed: 0).steps

    @Flag(help: "No crashes or journal faults.")
    var noFaults = false

    @Flag(help: "Print every seed's summary.")
    var verbose = false

    mutating func run() throws {
        installCrashReport()
        let started = monotonicMilliseconds()
        if let seed {
            let result = simulate(seed)
            print(result)
            if !result.violations.isEmpty { throw ExitCode(1) }
            return
        }
        var passed = 0
        var totals = SimulationResult(seed: 0)
        for seed in first..<(first + UInt64(max(seeds, 0))) {
            if seconds > 0 && monotonicMilliseconds() - started > Int64(seconds) * 1000 { break }
            let result = simulate(seed)
            if verbose { print(result) }
            if !result.violations.isEmpty {
                print(result)
                print("atp-sim: seed \(seed) FAILED after \(passed) passing seeds; replay: \(result.replayCommand)")
                throw ExitCode(1)
            }
            passed += 1
            totals.add(result)
        }
        let elapsed = Double(monotonicMilliseconds() - started) / 1000
        let rate = (Double(passed) / max(elapsed, 0.001) * 10).rounded() / 10
        let seconds = (elapsed * 10).rounded() / 10
        print("atp-sim: \(passed) seeds passed (\(first)..<\(first + UInt64(passed))) in \(seconds) s (\(rate) seeds/s): "
              + "\(totals.totalsDescription); 0 violations")
    }

    private func simulate(_ seed: UInt64) -> SimulationResult {
        var options = SimulationOptions(seed: seed)
        options.steps = steps
        options.faults = !noFaults
        CrashReport.prepare("atp-sim: seed \(seed) stopped on an invariant; replay: \(options.replayCommand)\n")
        return Simulation.run(options)
    }
}

/// What to print if an engine invariant stops the process mid-seed (a precondition traps): the
/// message is prepared before each seed, and written from the signal handler with write(2) only.
enum CrashReport {
    nonisolated(unsafe) static var message: [UInt8] = []
    nonisolated(unsafe) static var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 512)
    nonisolated(unsafe) static var length = 0

    static func prepare(_ text: String) {
        let bytes = Array(text.utf8.prefix(512))
        for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        length = bytes.count
    }
}

private func installCrashReport() {
    for signal in [SIGILL, SIGTRAP, SIGABRT, SIGSEGV] {
        _ = Glibc.signal(signal) { number in
            _ = write(2, CrashReport.buffer, CrashReport.length)
            Glibc.signal(number, SIG_DFL)
            raise(number)
        }
    }
}
