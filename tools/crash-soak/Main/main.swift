import ATPCrashSoak
import Foundation

/// `crash-soak`: kill -9 cycles against atpd with a reference model (docs/DURABILITY.md, "Crash
/// test"). Stops after N cycles or once S seconds have passed (the cycle under way finishes),
/// whichever comes first; exits 1 at the first violation (keeping the data directory), 0 otherwise.
/// With --keep-going it runs on after violations (the checks resynchronise the model) and exits 1
/// at the end if there were any; a refusal to start always ends the run. Prints a summary.
struct Options {
    static let usage = """
        usage: crash-soak [--cycles N] [--seconds S] [--seed X] [--atpd PATH] [--data-dir DIR]
                          [--snapshot-interval-seconds N] [--durability sync|none|interval:<ms>]
                          [--workload mixed|storm|alternate] [--clients N] [--short-ttl-percent P]
                          [--no-channel] [--expiry-margin-ms M] [--keep-going] [--thread-per-core]
        """
    var cycles = 20
    var seconds = 300
    var seed = UInt64.random(in: 1...UInt64(UInt32.max))
    var atpd: String?
    var dataDirectory: String?
    var extra: [String] = []
    var workload = CrashWorkload()
    var clients = 4
    var expiryMarginMilliseconds: Int64 = 250
    var keepGoing = false

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        func value(_ flag: String) throws -> String {
            guard let next = rest.popFirst() else { throw Usage(message: "\(flag) needs a value") }
            return next
        }
        while let flag = rest.popFirst() {
            switch flag {
            case "--cycles": cycles = try Self.positive(value(flag), flag)
            case "--seconds": seconds = try Self.positive(value(flag), flag)
            case "--seed":
                let text = try value(flag)
                guard let number = UInt64(text) else { throw Usage(message: "--seed must be an unsigned integer, not \(text)") }
                seed = number
            case "--atpd": atpd = try value(flag)
            case "--data-dir": dataDirectory = try value(flag)
            case "--snapshot-interval-seconds", "--durability": extra += [flag, try value(flag)]
            case "--workload":
                let text = try value(flag)
                guard let mode = CrashWorkload.Mode(rawValue: text) else {
                    throw Usage(message: "--workload must be mixed, storm or alternate, not \(text)")
                }
                workload.mode = mode
            case "--clients": clients = try Self.positive(value(flag), flag)
            case "--short-ttl-percent":
                let text = try value(flag)
                guard let percent = Int(text), (0...100).contains(percent) else {
                    throw Usage(message: "--short-ttl-percent must be 0...100, not \(text)")
                }
                workload.shortTTLPercent = percent
            case "--no-channel": workload.channel = nil
            case "--expiry-margin-ms": expiryMarginMilliseconds = Int64(try Self.positive(value(flag), flag))
            case "--keep-going": keepGoing = true
            case "--thread-per-core": extra.append(flag)
            case "-h", "--help": throw Usage(message: "")
            default: throw Usage(message: "unknown argument \(flag)")
            }
        }
    }

    static func positive(_ text: String, _ flag: String) throws -> Int {
        guard let number = Int(text), number >= 1 else { throw Usage(message: "\(flag) must be a positive integer, not \(text)") }
        return number
    }
}

struct Usage: Error {
    var message: String
}

func run() async -> Int32 {
    let options: Options
    do {
        options = try Options(Array(CommandLine.arguments.dropFirst()))
    } catch let usage as Usage {
        if !usage.message.isEmpty { print("crash-soak: \(usage.message)") }
        print(Options.usage)
        return 2
    } catch {
        return 2
    }
    guard let atpd = options.atpd ?? AtpdProcess.executable(near: CommandLine.arguments[0]) else {
        print("crash-soak: no atpd next to this tool; build it or pass --atpd PATH")
        return 2
    }
    let directory = options.dataDirectory ?? NSTemporaryDirectory() + "atp-crash-soak-\(options.seed)"
    // The model starts empty: so must the ledger.
    if let contents = try? FileManager.default.contentsOfDirectory(atPath: directory), !contents.isEmpty {
        print("crash-soak: the data directory \(directory) is not empty; give a new or empty one")
        return 2
    }
    var soak = CrashSoak(atpdPath: atpd, dataDirectory: directory)
    soak.atpdArguments += options.extra
    soak.workload = options.workload
    soak.clients = options.clients
    soak.expiryMarginMilliseconds = options.expiryMarginMilliseconds
    print("crash-soak: seed \(options.seed), up to \(options.cycles) cycles or \(options.seconds) s, data directory \(directory)")
    print("crash-soak: atpd \(atpd) \(soak.atpdArguments.joined(separator: " ")); \(soak.clients) clients; "
          + "kill after \(soak.killDelayMilliseconds) ms; expiry margin \(soak.expiryMarginMilliseconds) ms")
    print("crash-soak: workload \(soak.workload)")
    let deadline = ContinuousClock.now + .seconds(options.seconds)
    var model = CrashModel()
    var generator = SeededGenerator(seed: options.seed)
    var summary = CrashSoakSummary()
    var server: AtpdProcess?
    defer {
        if let server {
            server.send(SIGKILL)
            server.waitForExit()
        }
    }
    do {
        server = try soak.start()
        var cycle = 0
        while cycle < options.cycles && ContinuousClock.now < deadline, let running = server {
            cycle += 1
            let (restarted, report) = try await soak.runCycle(seed: generator.next(), cycle: cycle, server: running, model: &model)
            server = restarted
            summary.add(report, cycle: cycle)
            print("cycle \(cycle): \(report)")
            for violation in report.violations { print("  violation: \(violation)") }
            if restarted == nil || (!report.violations.isEmpty && !options.keepGoing) { break }
        }
    } catch {
        print("crash-soak: \(error) (seed \(options.seed)); data directory kept: \(directory)")
        print("crash-soak summary:\n\(summary)")
        return 1
    }
    print("crash-soak summary (seed \(options.seed)):\n\(summary)")
    if !summary.violationsByKind.isEmpty {
        print("crash-soak: FAILED (seed \(options.seed)); data directory kept: \(directory)")
        return 1
    }
    if let running = server {
        running.send(SIGTERM)
        let status = running.waitForExit()
        server = nil
        print("crash-soak: \(summary.cycles) cycles passed (seed \(options.seed)); atpd stopped with status \(status.map(String.init) ?? "signal")")
    }
    if options.dataDirectory == nil { try? FileManager.default.removeItem(atPath: directory) }
    return 0
}

exit(await run())
