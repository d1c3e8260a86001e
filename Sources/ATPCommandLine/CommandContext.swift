import ArgumentParser
import Foundation

/// What a command runs with besides its arguments: where to write and the environment to read
/// defaults from. Injected so that tests run commands in-process and read their output.
public struct CommandContext: Sendable {
    /// Where results, errors and the progress bar go.
    public var output: any OutputSink
    /// The environment (`ATP_HOST`, `ATP_PORT`, `ATP_TOKEN`).
    public var environment: [String: String]

    /// A context from its parts.
    public init(output: any OutputSink, environment: [String: String]) {
        self.output = output
        self.environment = environment
    }
}

/// A leaf command of `atp`: it resolves the global options, does its work and returns the exit
/// status. Failures are thrown as `CommandLineError`; the runner prints them and maps the status.
public protocol ATPSubcommand: AsyncParsableCommand {
    /// The global options (host, port, token, --json, --timeout-ms).
    var global: GlobalOptions { get }
    /// Runs the command. Throws `CommandLineError` (or `CancellationError` when interrupted).
    func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus
}

extension ATPSubcommand {
    /// ArgumentParser's entry point: runs the command against the process's stdout, stderr and
    /// environment, and exits with its status when it is not 0.
    public mutating func run() async throws {
        let status = await ATPCommandLine.execute(self, context: .standard)
        if status != .ok { throw ExitCode(status.rawValue) }
    }
}

/// A command that only groups subcommands (`atp`, `atp query`, `atp channel`). Given alone it
/// prints its help to stderr and ends with the usage status.
public protocol ATPCommandGroup: ParsableCommand {}

extension CommandContext {
    /// The process's stdout, stderr and environment.
    public static var standard: CommandContext {
        CommandContext(output: StandardOutputSink(), environment: ProcessInfo.processInfo.environment)
    }
}
