import ATPCrashSoak
import Foundation

/// `crash-soak`: kill -9 cycles against atpd with a reference model (docs/DURABILITY.md, "Crash
/// test"). Usage: crash-soak [--cycles N] [--seconds S] [--seed X] [--atpd PATH] [--data-dir DIR]
/// [--snapshot-interval-seconds N] [--durability MODE]. Stops after N cycles or once S seconds have
/// passed (the cycle under way finishes), whichever comes first; exits 1 at the first violation
/// (keeping the data directory), 0 otherwise.
struct Options {
    var cycles = 20
    var seconds = 300
    var seed = UInt64.random(in: 1...UInt64(UInt32.max))
    var atpd: String?
    var dataDirectory: String?
    var extra: [String] = []

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
        print("usage: crash-soak [--cycles N] [--seconds S] [--seed X] [--atpd PATH] [--data-dir DIR] "
              + "[--snapshot-interval-seconds N] [--durability sync|none|interval:<ms>]")
        return 2
    } catch {
        return 2
    }
    guard let atpd = options.atpd ?? AtpdProcess.executable(near: CommandLine.arguments[0]) else {
        print("crash-soak: no atpd next to this tool; build it or pass --atpd PATH")
        return 2
    }
    let directory = options.dataDirectory ?? NSTemporaryDirectory() + "atp-crash-soak-\(options.seed)"
    var soak = CrashSoak(atpdPath: atpd, dataDirectory: directory)
    soak.atpdArguments += options.extra
    print("crash-soak: seed \(options.seed), up to \(options.cycles) cycles or \(options.seconds) s, data directory \(directory)")
    let deadline = ContinuousClock.now + .seconds(options.seconds)
    var model = CrashModel()
    var generator = SeededGenerator(seed: options.seed)
    do {
        var server = try soak.start()
        var cycle = 0
        while cycle < options.cycles && ContinuousClock.now < deadline {
            cycle += 1
            let (restarted, report) = try await soak.runCycle(seed: generator.next(), cycle: cycle, server: server, model: &model)
            print("cycle \(cycle): \(report)")
            if !report.violations.isEmpty || restarted == nil {
                for violation in report.violations { print("  violation: \(violation)") }
                restarted?.send(SIGKILL)
                restarted?.waitForExit()
                print("crash-soak: FAILED at cycle \(cycle) (seed \(options.seed)); data directory kept: \(directory)")
                return 1
            }
            server = restarted!
        }
        server.send(SIGTERM)
        let status = server.waitForExit()
        print("crash-soak: \(cycle) cycles passed (seed \(options.seed)); atpd stopped with status \(status.map(String.init) ?? "signal")")
    } catch {
        print("crash-soak: \(error) (seed \(options.seed)); data directory kept: \(directory)")
        return 1
    }
    if options.dataDirectory == nil { try? FileManager.default.removeItem(atPath: directory) }
    return 0
}

exit(await run())
