import ATPLedger
import ATPProtocol
import ArgumentParser
import Foundation

/// `atp channel`: define, show and remove sales channels.
public struct ChannelCommand: AsyncParsableCommand, ATPCommandGroup {
    /// The channel subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "channel", abstract: "Define, show and remove sales channels.",
        subcommands: [ChannelSetCommand.self, ChannelShowCommand.self, ChannelRemoveCommand.self])

    /// Parsed by ArgumentParser.
    public init() {}

    /// Given alone, prints its help.
    public mutating func run() async throws { throw CleanExit.helpRequest(self) }
}

/// `atp channel set NAME --locations A,B,C [--buffer N] [--cap N]` (needs the admin role).
public struct ChannelSetCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Define or replace a channel (admin role).")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The channel name (1 to 32 bytes).") var name: String
    @Option(name: .long, help: "The channel's locations in priority order, comma-separated, no repeats.")
    var locations: String
    @Option(name: .long, help: "Units held back from the channel (bufferUnits).") var buffer: Int64 = 0
    @Option(name: .long, help: "Percentage of the remaining units offered, 1 to 100 (capPercent).") var cap: Int = 100

    /// Parsed by ArgumentParser.
    public init() {}

    /// The locations, split and trimmed.
    var locationList: [String] {
        locations.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
    }

    /// Checks the name, the locations, the buffer and the cap.
    public func validate() throws {
        try NameRules.validate(name, kind: .channel, option: "NAME")
        var seen: Set<String> = []
        for location in locationList {
            try NameRules.validate(location, kind: .location, option: "--locations")
            if !seen.insert(location).inserted { throw ValidationError("--locations: \(location) is listed twice") }
        }
        if buffer < 0 { throw ValidationError("--buffer must be 0 or more, got \(buffer)") }
        if !(1...100).contains(cap) { throw ValidationError("--cap must be from 1 to 100, got \(cap)") }
    }

    /// Sends the definition and prints it.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let definition = WireChannelDefinition(name: name, bufferUnits: buffer, capPercent: UInt8(cap),
                                               locations: locationList)
        try await Session.with(settings) { session in
            try await session.call("channel set") { try await $0.setChannel(definition) }
        }
        Printer(context, settings).emit(ChannelFormatting.json(definition)) {
            ["channel \(name) set: \(ChannelFormatting.summary(definition))"]
        }
        return .ok
    }
}

/// `atp channel show [NAME]`.
public struct ChannelShowCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show one channel, or every channel.",
        discussion: "An unknown NAME ends with exit status 5 (the server answers notFound).")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The channel (all channels when omitted).") var name: String?

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the name.
    public func validate() throws {
        if let name { try NameRules.validate(name, kind: .channel, option: "NAME") }
    }

    /// Asks and prints the definitions.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let name = self.name
        // Sorted by name, whatever order the server keeps them in, so output is stable.
        let definitions = try await Session.with(settings) { session in
            try await session.call("channel show") { try await $0.channels(name) }
        }.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        Printer(context, settings).emit(.array(definitions.map(ChannelFormatting.json))) {
            if definitions.isEmpty { return ["no channels defined"] }
            var table = TextTable([("CHANNEL", .left), ("BUFFER", .right), ("CAP", .right), ("LOCATIONS", .left)])
            for definition in definitions {
                table.add([definition.name, String(definition.bufferUnits), "\(definition.capPercent)%",
                           definition.locations.joined(separator: ", ")])
            }
            return table.renderedLines()
        }
        return .ok
    }
}

/// `atp channel remove NAME` (needs the admin role).
public struct ChannelRemoveCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove a channel (admin role).",
        discussion: "An unknown NAME ends with exit status 5 (the server answers notFound).")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The channel.") var name: String

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the name.
    public func validate() throws { try NameRules.validate(name, kind: .channel, option: "NAME") }

    /// Removes the channel.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let name = self.name
        try await Session.with(settings) { session in
            try await session.call("channel remove") { try await $0.removeChannel(name) }
        }
        Printer(context, settings).emit(.object([("removed", .string(name))])) { ["channel \(name) removed"] }
        return .ok
    }
}

/// Text and JSON forms of channel definitions.
enum ChannelFormatting {
    /// `{"name", "bufferUnits", "capPercent", "locations"}`, the protocol's field names.
    static func json(_ definition: WireChannelDefinition) -> JSONValue {
        .object([("name", .string(definition.name)), ("bufferUnits", .number(definition.bufferUnits)),
                 ("capPercent", .number(definition.capPercent)),
                 ("locations", .array(definition.locations.map(JSONValue.string)))])
    }

    /// "3 locations (DC1, S1, S2), buffer 2 units, cap 100%".
    static func summary(_ definition: WireChannelDefinition) -> String {
        let count = definition.locations.count
        return "\(count) location\(count == 1 ? "" : "s") (\(definition.locations.joined(separator: ", "))), "
            + "buffer \(definition.bufferUnits) unit\(definition.bufferUnits == 1 ? "" : "s"), cap \(definition.capPercent)%"
    }
}
