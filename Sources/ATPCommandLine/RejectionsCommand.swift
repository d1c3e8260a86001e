import ATPLedger
import ATPProtocol
import ArgumentParser

/// `atp rejections [--after SEQ] [--limit N] [--follow]`: read the server's rejection log.
public struct RejectionsCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "rejections",
        abstract: "Read the log of rejected events (ingest role), oldest first.",
        discussion: """
            Without --follow, prints up to --limit entries after position --after and stops. With \
            --follow, prints the entries as they arrive, polling every --interval-ms, until interrupted \
            (Ctrl-C); --limit then bounds each poll. With --json, --follow prints one JSON object per line.
            """)

    /// The default number of entries read.
    public static let defaultLimit = 100
    /// Bounds of the poll interval in milliseconds (fast enough to feel live, slow enough not to load the server).
    public static let intervalMillisecondsRange = 50...60_000

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Option(name: .long, help: "Only entries after this log position (0: from the oldest kept).") var after: UInt64 = 0
    @Option(name: .long, help: "The most entries to print (with --follow: per poll).") var limit: Int = RejectionsCommand.defaultLimit
    @Flag(name: .long, help: "Keep polling for new entries until interrupted.") var follow = false
    @Option(name: .customLong("interval-ms"), help: "With --follow: the pause between polls that found nothing, in milliseconds (50 to 60000).")
    var intervalMilliseconds: Int = 1000

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the limit and the interval.
    public func validate() throws {
        if limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if !Self.intervalMillisecondsRange.contains(intervalMilliseconds) {
            throw ValidationError("--interval-ms must be from 50 to 60000, got \(intervalMilliseconds)")
        }
    }

    /// Reads pages until `limit` entries or the end of the log; with `--follow`, forever.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let printer = Printer(context, settings)
        return try await Session.with(settings) { session in
            let pageMax = min(limit, Int(session.hello.batchItemsMax))
            if follow {
                try await followLog(session, pageMax: pageMax, printer: printer)
                return .ok
            }
            var cursor = after
            var entries: [WireRejectedEvent] = []
            var last: RejectionLogReply?
            while entries.count < limit {
                let wanted = UInt32(min(pageMax, limit - entries.count))
                let page = try await read(session, after: cursor, limit: wanted)
                last = page
                guard let newest = page.entries.last else { break }
                entries += page.entries
                cursor = newest.logSequence
            }
            let oldest = last?.oldestKeptSequence ?? 0
            let newest = last?.newestSequence ?? 0
            let dropped = last?.droppedCount ?? 0
            printer.emit(.object([
                ("oldestKeptSequence", .number(oldest)), ("newestSequence", .number(newest)),
                ("droppedCount", .number(dropped)), ("entries", .array(entries.map(RejectionFormatting.json))),
            ])) {
                var lines = ["rejection log: oldest kept \(oldest), newest \(newest), dropped \(dropped); \(entries.count) \(entries.count == 1 ? "entry" : "entries") shown"]
                lines += entries.map(RejectionFormatting.line)
                if entries.count == limit, let shown = entries.last, shown.logSequence < newest {
                    lines.append("more entries follow: atp rejections --after \(shown.logSequence)")
                }
                return lines
            }
            return .ok
        }
    }

    /// Prints entries as they arrive until the task is cancelled (or the process interrupted).
    private func followLog(_ session: Session, pageMax: Int, printer: Printer) async throws {
        var cursor = after
        while !Task.isCancelled {
            let page: RejectionLogReply
            do {
                page = try await read(session, after: cursor, limit: UInt32(pageMax))
            } catch is CancellationError {
                return
            }
            for entry in page.entries {
                printer.emit(RejectionFormatting.json(entry)) { [RejectionFormatting.line(entry)] }
            }
            if let newest = page.entries.last {
                cursor = newest.logSequence
                continue
            }
            do {
                try await Task.sleep(for: .milliseconds(intervalMilliseconds))
            } catch {
                return
            }
        }
    }

    private func read(_ session: Session, after: UInt64, limit: UInt32) async throws -> RejectionLogReply {
        try await session.call("rejection log read") { try await $0.rejections(afterSequence: after, limit: limit) }
    }
}

/// Text and JSON forms of rejection-log entries.
enum RejectionFormatting {
    /// The reason's name, or "reason N" for a code this client does not know.
    static func reasonName(_ code: UInt16) -> String {
        RejectionReason(rawValue: code).map(\.description) ?? "reason \(code)"
    }

    /// One entry as JSON: position, time, reason (name and code), source, event, detail.
    static func json(_ entry: WireRejectedEvent) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("logSequence", .number(entry.logSequence)), ("atMilliseconds", .number(entry.atMilliseconds)),
            ("at", .string(Format.timestamp(milliseconds: entry.atMilliseconds))),
            ("reason", .string(reasonName(entry.reasonCode))), ("reasonCode", .number(entry.reasonCode)),
        ]
        if let logged = entry.event {
            members += [("source", .string(logged.source)), ("event", EventFormatting.json(logged.event))]
        } else {
            members += [("source", .null), ("event", .null)]
        }
        members.append(("detail", .string(entry.detail)))
        return .object(members)
    }

    /// One entry on one line: `#7 2023-11-14T22:13:20.500Z sequenceTooOld wms-eu: adjust SKU-1 at S1 ...`.
    static func line(_ entry: WireRejectedEvent) -> String {
        var text = "#\(entry.logSequence) \(Format.timestamp(milliseconds: entry.atMilliseconds)) \(reasonName(entry.reasonCode))"
        if let logged = entry.event { text += " \(logged.source): \(EventFormatting.summary(logged.event))" }
        if !entry.detail.isEmpty { text += " (\(entry.detail))" }
        return text
    }
}
