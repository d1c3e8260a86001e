import ATPProtocol
import ArgumentParser

/// `atp ping [--count N]`: is the server there, and how fast does it answer.
public struct PingCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "ping", abstract: "Check the connection and print round-trip times in microseconds.")

    /// The most pings one command sends.
    public static let countMax = 100_000

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Option(name: .long, help: "How many pings to send, one after another.") var count: Int = 1

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the count.
    public func validate() throws {
        if !(1...Self.countMax).contains(count) {
            throw ValidationError("--count must be from 1 to \(Self.countMax), got \(count)")
        }
    }

    /// Sends the pings one at a time (each waits for the previous reply) and prints each round trip.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let printer = Printer(context, settings)
        let count = self.count
        return try await Session.with(settings) { session in
            if !printer.json {
                printer.output.line("connected to \(settings.endpoint): protocol \(session.hello.version), roles \(session.hello.roles)")
            }
            var roundTrips: [Int64] = []
            var serverTime: Int64 = 0
            for sequence in 1...count {
                let clock = ContinuousClock()
                let started = clock.now
                serverTime = try await session.call("ping") { try await $0.ping(nonce: UInt64(sequence)) }
                let elapsed = clock.now - started
                let microseconds = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
                roundTrips.append(microseconds)
                if !printer.json {
                    printer.output.line("reply from \(settings.endpoint): seq=\(sequence) time=\(microseconds) µs server_time=\(Format.timestamp(milliseconds: serverTime))")
                }
            }
            let total = roundTrips.reduce(0, +)
            let (low, high, average) = (roundTrips.min() ?? 0, roundTrips.max() ?? 0, total / Int64(roundTrips.count))
            printer.emit(.object([
                ("endpoint", .string(settings.endpoint)), ("version", .number(session.hello.version)),
                ("roles", .array(roleNames(session.hello.roles).map(JSONValue.string))),
                ("serverTimeMilliseconds", .number(serverTime)), ("count", .number(count)),
                ("roundTripsMicroseconds", .array(roundTrips.map(JSONValue.number))),
                ("minMicroseconds", .number(low)), ("averageMicroseconds", .number(average)),
                ("maxMicroseconds", .number(high)),
            ])) {
                count == 1 ? [] : ["\(count) pings: min \(low) µs, avg \(average) µs, max \(high) µs"]
            }
            return .ok
        }
    }

    private func roleNames(_ roles: Roles) -> [String] {
        [(Roles.query, "query"), (.reserve, "reserve"), (.ingest, "ingest"), (.admin, "admin")]
            .filter { roles.contains($0.0) }.map(\.1)
    }
}
