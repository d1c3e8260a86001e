import ATPLedger
import ATPProtocol
import ArgumentParser
import Foundation

/// `atp stats [PREFIX]`: the server's statistics.
public struct StatsCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Show the server's statistics, optionally only those starting with PREFIX.",
        discussion: "docs/PROTOCOL.md §7.11 lists the names (events.applied, reservations.held, server.*, ...).")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "Only statistics whose name starts with this (e.g. events. or reservations.).")
    var prefix: String = ""

    /// Parsed by ArgumentParser.
    public init() {}

    /// The prefix travels as a name: at most 64 bytes.
    public func validate() throws {
        if prefix.utf8.count > 64 { throw ValidationError("PREFIX is \(prefix.utf8.count) bytes long; the maximum is 64") }
    }

    /// Asks and prints the statistics in the server's order.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let prefix = self.prefix
        let entries = try await Session.with(settings) { session in
            try await session.call("stats") { try await $0.stats(prefix: prefix) }
        }
        Printer(context, settings).emit(.object(entries.map { ($0.name, value($0.value)) })) {
            if entries.isEmpty { return ["no statistics\(prefix.isEmpty ? "" : " start with \(prefix.debugDescription)")"] }
            var table = TextTable([("NAME", .left), ("VALUE", .right)])
            for entry in entries {
                switch entry.value {
                case .unsigned(let number): table.add([entry.name, Self.text(of: entry.name, number)])
                case .signed(let number): table.add([entry.name, String(number)])
                }
            }
            return table.renderedLines()
        }
        return .ok
    }

    /// A value as the table shows it: the allocator's code with its name, thousandths with the
    /// ratio they stand for (docs/PROTOCOL.md §7.11, `process.memory.*`); other numbers as they are.
    static func text(of name: String, _ number: UInt64) -> String {
        if name == "process.memory.allocator" {
            switch number {
            case 0: return "0 (glibc)"
            case 1: return "1 (jemalloc)"
            default: return String(number)
            }
        }
        if name.hasPrefix("process.memory."), name.hasSuffix("Permille") {
            let ratio = Double(number) / 1000
            return "\(number) (\(String(format: "%.3f", ratio)))"
        }
        return String(number)
    }

    private func value(_ value: StatValue) -> JSONValue {
        switch value {
        case .unsigned(let number): .number(number)
        case .signed(let number): .number(number)
        }
    }
}
