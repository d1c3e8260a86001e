import ATPLedger
import ATPProtocol
import ATPSnapshot
import ArgumentParser

/// `atp snapshot now | list | show ID | export ID --csv`: take a snapshot (server, admin token), or
/// read the snapshots of a data directory offline (docs/SNAPSHOT.md, docs/DURABILITY.md).
public struct SnapshotCommand: AsyncParsableCommand, ATPCommandGroup {
    /// The snapshot subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Take a snapshot now, or list, show and export the snapshots of a data directory.",
        subcommands: [SnapshotNowCommand.self, SnapshotListCommand.self, SnapshotShowCommand.self, SnapshotExportCommand.self])

    /// Parsed by ArgumentParser.
    public init() {}

    /// Given alone, prints its help.
    public mutating func run() async throws { throw CleanExit.helpRequest(self) }
}

/// `atp snapshot now`: asks the server for a snapshot and prints what it wrote.
public struct SnapshotNowCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "now", abstract: "Ask the server to take a snapshot now (admin token; the server needs a data directory).")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions

    /// Parsed by ArgumentParser.
    public init() {}

    /// Sends `snapshotNow` and prints the snapshot's id, duration, cells and size.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let taken = try await Session.with(settings) { session in
            try await session.call("snapshot now") { try await $0.snapshotNow() }
        }
        Printer(context, settings).emit(.object([
            ("snapshotID", .uint(taken.snapshotID)), ("durationMilliseconds", .uint(taken.durationMilliseconds)),
            ("cellCount", .uint(taken.cellCount)), ("sizeBytes", .uint(taken.sizeBytes)),
        ])) {
            ["snapshot \(taken.snapshotID) written: \(taken.cellCount) cells, \(taken.sizeBytes) bytes, \(taken.durationMilliseconds) ms"]
        }
        return .ok
    }
}

/// The data directory option of the offline snapshot commands, and the store over it.
struct SnapshotDirectoryOption: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "atpd's data directory (the one holding snapshots/).")
    var dataDirectory: String

    var store: SnapshotStore { SnapshotStore(directory: dataDirectory, configuration: SnapshotStoreConfiguration()) }

    /// A snapshot error as the CLI's: a damaged snapshot is exit status 5, anything else (no such
    /// snapshot, unreadable directory) 2.
    static func commandLineError(_ error: any Error) -> CommandLineError {
        guard let snapshotError = error as? SnapshotError else { return .usage("\(error)") }
        switch snapshotError {
        case .corrupt, .invalidImage, .unsupportedFormat, .lmdb, .missingFile:
            return CommandLineError(status: .serverError, message: "\(snapshotError)")
        default:
            return .usage("\(snapshotError)")
        }
    }

    static func json(_ info: SnapshotInfo) -> JSONValue {
        .object([
            ("id", .uint(info.id)), ("path", .string(info.path)),
            ("cutWallClockMilliseconds", .int(info.cutWallClockMilliseconds)),
            ("cut", .string(Format.timestamp(milliseconds: info.cutWallClockMilliseconds))),
            ("cellCount", .int(Int64(info.cellCount))), ("dataBytes", .int(Int64(info.dataBytes))),
            ("shardCount", .int(Int64(info.shardCount))), ("skuPlacement", .string("\(info.skuPlacement)")),
            ("engineVersion", .string(info.engineVersion)),
            ("formatVersion", .uint(UInt64(info.formatVersion))),
            ("workerMarks", .array(info.workerMarks.map { .uint($0) })),
        ])
    }
}

/// `atp snapshot list --data-dir DIR`: the snapshots, oldest first (reads the directory; no server).
public struct SnapshotListCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the snapshots of a data directory, oldest first (no server needed).")

    /// --json applies; host, port and token are not used.
    @OptionGroup public var global: GlobalOptions
    @OptionGroup var directory: SnapshotDirectoryOption

    /// Parsed by ArgumentParser.
    public init() {}

    /// Reads each snapshot's metadata and prints one line per snapshot.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let store = directory.store
        var infos: [SnapshotInfo] = []
        var damaged: [(UInt64, String)] = []
        do {
            for id in try store.list() {
                do { infos.append(try store.info(id)) } catch { damaged.append((id, "\(error)")) }
            }
        } catch {
            throw SnapshotDirectoryOption.commandLineError(error)
        }
        Printer(context, settings).emit(.object([
            ("snapshots", .array(infos.map(SnapshotDirectoryOption.json))),
            ("damaged", .array(damaged.map { .object([("id", .uint($0.0)), ("error", .string($0.1))]) })),
        ])) {
            if infos.isEmpty && damaged.isEmpty { return ["no snapshots in \(directory.dataDirectory)/snapshots"] }
            var table = TextTable([("ID", .right), ("CUT (UTC)", .left), ("CELLS", .right), ("BYTES", .right)])
            for info in infos {
                table.add([String(info.id), Format.timestamp(milliseconds: info.cutWallClockMilliseconds),
                           String(info.cellCount), String(info.dataBytes)])
            }
            for (id, error) in damaged { table.add([String(id), "damaged: \(error)", "", ""]) }
            return table.renderedLines()
        }
        return damaged.isEmpty ? .ok : .partial
    }
}

/// `atp snapshot show ID --data-dir DIR`: one snapshot's metadata (no server).
public struct SnapshotShowCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show one snapshot's metadata: cut time, cells, size, journal marks (no server needed).")

    /// --json applies; host, port and token are not used.
    @OptionGroup public var global: GlobalOptions
    @OptionGroup var directory: SnapshotDirectoryOption
    @Argument(help: "The snapshot id (atp snapshot list).") var id: UInt64

    /// Parsed by ArgumentParser.
    public init() {}

    /// Reads and prints the snapshot's metadata.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let info: SnapshotInfo
        do { info = try directory.store.info(id) } catch { throw SnapshotDirectoryOption.commandLineError(error) }
        Printer(context, settings).emit(SnapshotDirectoryOption.json(info)) {
            [
                "snapshot \(info.id)",
                "  path            \(info.path)",
                "  cut             \(Format.timestamp(milliseconds: info.cutWallClockMilliseconds))",
                "  cells           \(info.cellCount)",
                "  data bytes      \(info.dataBytes)",
                "  shards          \(info.shardCount), SKUs placed by \(info.skuPlacement)",
                "  journal marks   \(info.workerMarks.map(String.init).joined(separator: " ")) (last record per worker stream)",
                "  engine          \(info.engineVersion), format \(info.formatVersion)",
            ]
        }
        return .ok
    }
}

/// `atp snapshot export ID --csv --data-dir DIR [--output FILE]`: every cell as CSV, streamed.
public struct SnapshotExportCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export every cell of a snapshot as CSV, streaming (millions of cells; no server needed).",
        discussion: "Columns: \(SnapshotStore.csvHeader.dropLast()). The snapshot's checksums are verified; a damaged snapshot ends with exit status 5 and the output is then incomplete.")

    /// Host, port and token are not used.
    @OptionGroup public var global: GlobalOptions
    @OptionGroup var directory: SnapshotDirectoryOption
    @Argument(help: "The snapshot id (atp snapshot list).") var id: UInt64
    @Flag(name: .long, help: "CSV (the one export format; required, so that another can be added later).") var csv = false
    @Option(name: .long, help: "Write to this file (replaced; fsynced) instead of standard output.") var output: String?

    /// Parsed by ArgumentParser.
    public init() {}

    /// --csv is required.
    public func validate() throws {
        if !csv { throw ValidationError("say the format: --csv") }
    }

    /// Streams the cells.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let store = directory.store
        do {
            if let output {
                try store.exportCSV(id, toFileAt: output)
            } else {
                try store.exportCSV(id) { chunk in context.output.write(String(decoding: chunk, as: UTF8.self), to: .standardOutput) }
            }
        } catch {
            throw SnapshotDirectoryOption.commandLineError(error)
        }
        return .ok
    }
}
