import ArgumentParser

/// Runs `atp` command lines: parses the arguments, runs the command against a `CommandContext`,
/// prints failures as one line on stderr and returns the exit status (docs/CLI.md).
public enum ATPCommandLine {
    /// Parses and runs one command line (`arguments` without the program name). Never throws and
    /// never exits the process: the caller decides what to do with the status.
    public static func run(arguments: [String], context: CommandContext) async -> ATPExitStatus {
        let command: ParsableCommand
        do {
            command = try ATPCommand.parseAsRoot(arguments)
        } catch {
            return report(parseError: error, output: context.output)
        }
        if let subcommand = command as? any ATPSubcommand {
            return await execute(subcommand, context: context)
        }
        if command is any ATPCommandGroup {
            context.output.write(ATPCommand.helpMessage(for: type(of: command)) + "\n", to: .standardError)
            context.output.errorLine("atp: choose a subcommand (see above)")
            return .usage
        }
        // ArgumentParser's own commands (`atp help ...`) end by throwing a clean exit.
        do {
            var builtIn = command
            try builtIn.run()
            return .ok
        } catch {
            return report(parseError: error, output: context.output)
        }
    }

    /// Runs an already parsed command: resolves its settings, runs it, and turns a thrown error
    /// into its exit status with a one-line message on stderr.
    public static func execute(_ command: any ATPSubcommand, context: CommandContext) async -> ATPExitStatus {
        do {
            let settings = try command.global.settings(environment: context.environment)
            return try await command.execute(in: context, settings: settings)
        } catch let error as CommandLineError {
            context.output.errorLine("atp: \(error.message)")
            return error.status
        } catch is CancellationError {
            context.output.errorLine("atp: interrupted")
            return .connection
        } catch {
            context.output.errorLine("atp: unexpected error: \(error)")
            return .serverError
        }
    }

    /// Help and version requests print to stdout with status 0; every other parse error prints one
    /// line to stderr with status `usage`.
    private static func report(parseError error: Error, output: any OutputSink) -> ATPExitStatus {
        if ATPCommand.exitCode(for: error) == .success {
            output.write(ATPCommand.fullMessage(for: error) + "\n", to: .standardOutput)
            return .ok
        }
        let message = ATPCommand.message(for: error).split(whereSeparator: \.isNewline).joined(separator: " ")
        output.errorLine("atp: \(message) (see '\(helpCommand(for: error))')")
        return .usage
    }

    /// The help command ArgumentParser suggests for the failing subcommand ("atp reserve --help"),
    /// read from its full message; "atp --help" when it suggests none.
    private static func helpCommand(for error: Error) -> String {
        for line in ATPCommand.fullMessage(for: error, columns: 1000).split(whereSeparator: \.isNewline) {
            guard let open = line.range(of: "See '"), let close = line[open.upperBound...].firstIndex(of: "'") else {
                continue
            }
            return String(line[open.upperBound..<close])
        }
        return "atp --help"
    }
}

/// `atp`: the root command. It only groups the subcommands.
public struct ATPCommand: AsyncParsableCommand, ATPCommandGroup {
    /// The command tree and the help's discussion of exit codes and environment.
    public static let configuration = CommandConfiguration(
        commandName: "atp",
        abstract: "Command-line client for the ATP server (atpd).",
        discussion: """
            Exit codes: 0 ok; 1 partial (events rejected, reservation refused or partially granted, \
            commit/release found nothing); 2 usage (bad arguments, unreadable file, malformed input line); \
            3 cannot connect, connection lost or timeout; 4 token refused or role missing; 5 other server error.
            Environment: ATP_HOST, ATP_PORT, ATP_TOKEN give defaults for --host, --port and --token.
            See docs/CLI.md for every command and the event file formats.
            """,
        subcommands: [QueryCommand.self, ReserveCommand.self, CommitCommand.self, ReleaseCommand.self,
                      IngestCommand.self, ChannelCommand.self, RejectionsCommand.self, StatsCommand.self,
                      PingCommand.self, TopCommand.self, ReconcileCommand.self, SnapshotCommand.self])

    @OptionGroup var global: GlobalOptions

    /// The root command (ArgumentParser builds it while parsing).
    public init() {}

    /// Given alone, `atp` prints its help.
    public mutating func run() async throws {
        throw CleanExit.helpRequest(self)
    }
}
