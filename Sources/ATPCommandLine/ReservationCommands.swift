import ATPLedger
import ATPProtocol
import ArgumentParser

/// `atp reserve ID --line ... [--ttl-ms N] [--partial]`: hold units.
public struct ReserveCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "reserve",
        abstract: "Hold units for an order (idempotent by reservation id).",
        discussion: """
            Each --line is SKU@LOCATION=QTY (one location; also location:NAME), SKU@channel:NAME=QTY \
            (the channel's locations in priority order, split allowed) or SKU@channel-nosplit:NAME=QTY \
            (the whole line from one location of the channel). Without --partial the reservation is \
            all-or-nothing. Exit status 1 when refused or partially granted.
            """)

    /// The hold's default duration: 15 minutes.
    public static let defaultTTLMilliseconds: Int64 = 900_000

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The reservation id (the idempotency key, e.g. the order id).") var id: String
    @Option(name: .customLong("line"), help: "A line: SKU@LOCATION=QTY, SKU@channel:NAME=QTY or SKU@channel-nosplit:NAME=QTY. Repeat for more lines.")
    var lines: [String] = []
    @Option(name: .customLong("ttl-ms"), help: "How long the hold lasts, in milliseconds.")
    var ttlMilliseconds: Int64 = ReserveCommand.defaultTTLMilliseconds
    @Flag(name: .long, help: "Grant what is sellable per line instead of all-or-nothing.") var partial = false

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the id, the lines and the ttl.
    public func validate() throws {
        try NameRules.validate(id, kind: .reservation, option: "ID")
        if lines.isEmpty { throw ValidationError("give at least one --line SKU@LOCATION=QTY") }
        _ = try parsedLines()
        if ttlMilliseconds < 1 { throw ValidationError("--ttl-ms must be at least 1, got \(ttlMilliseconds)") }
    }

    private func parsedLines() throws -> [WireReservationLine] {
        try lines.map { text in
            switch ReservationLineSpec.parse(text) {
            case .success(let line): return line
            case .failure(let error): throw ValidationError("--line \(error.message)")
            }
        }
    }

    /// Sends the reservation and prints what each line got.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let request: WireReserveRequest
        do {
            request = WireReserveRequest(id: try ReservationID(id), ttlMilliseconds: ttlMilliseconds,
                                         mode: partial ? .partial : .allOrNothing, lines: try parsedLines())
        } catch {
            throw CommandLineError.usage("\(error)")
        }
        let reply = try await Session.with(settings) { session in
            try await session.call("reserve") { try await $0.reserve(request) }
        }
        return ReservationReport.print(reply, of: .reserve, asked: request.lines, context, settings)
    }
}

/// `atp commit ID`: turn held units into committed units.
public struct CommitCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "commit",
        abstract: "Commit a held reservation (its units become committed, with no expiry).",
        discussion: "Exit status 1 when the id is unknown or the reservation is no longer held.")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The reservation id.") var id: String

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the id.
    public func validate() throws { try NameRules.validate(id, kind: .reservation, option: "ID") }

    /// Sends the commit and prints the reservation's state.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let reservation = try ReservationCommandID.parse(id)
        let reply = try await Session.with(settings) { session in
            try await session.call("commit") { try await $0.commit(reservation) }
        }
        return ReservationReport.print(reply, of: .commit, asked: nil, context, settings)
    }
}

/// `atp release ID`: give held or committed units back.
public struct ReleaseCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a reservation (held or committed units go back to sellable).",
        discussion: "Exit status 1 when the id is unknown to the server.")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The reservation id.") var id: String

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the id.
    public func validate() throws { try NameRules.validate(id, kind: .reservation, option: "ID") }

    /// Sends the release and prints the reservation's state.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let reservation = try ReservationCommandID.parse(id)
        let reply = try await Session.with(settings) { session in
            try await session.call("release") { try await $0.release(reservation) }
        }
        return ReservationReport.print(reply, of: .release, asked: nil, context, settings)
    }
}

/// A reservation id from the command line.
enum ReservationCommandID {
    /// The id; a usage error when it is not 1...64 bytes (validate() has normally caught that).
    static func parse(_ text: String) throws(CommandLineError) -> ReservationID {
        do throws(InvalidNameError) { return try ReservationID(text) } catch { throw .usage("ID: \(error)") }
    }
}

/// Prints a reservation reply and works out the exit status.
enum ReservationReport {
    static func print(_ reply: WireReservationReply, of operation: ReservationOperation,
                      asked: [WireReservationLine]?, _ context: CommandContext,
                      _ settings: ConnectionSettings) -> ATPExitStatus {
        let printer = Printer(context, settings)
        printer.emit(ReservationFormatting.json(reply, asked: asked)) {
            ReservationFormatting.lines(reply, asked: asked)
        }
        let (status, note) = ReservationFormatting.outcome(reply, of: operation)
        if let note { printer.note(note) }
        return status
    }
}
