import ATPLedger
import ATPProtocol
import ArgumentParser

/// `atp ingest FILE --source NAME [--format csv|jsonl] [--batch N]`: send stock events from a file.
public struct IngestCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Send stock events from a CSV or JSON-lines file (ingest role).",
        discussion: """
            The whole file is checked before anything is sent: a malformed line stops the command with \
            its line number (exit status 2) and nothing is sent. Events then go in batches of --batch \
            (at most the server's batchItemsMax), a few batches in flight. Exit status 1 when the server \
            rejected some events; they are listed with their line numbers. Sending a file again is safe: \
            events are deduplicated by source and sequence. See docs/CLI.md for the file formats.
            """)

    /// The default events per ingest frame.
    public static let defaultBatch = 1000
    /// The most rejected events listed in human output (JSON lists them all).
    public static let rejectionsListedMax = 20

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The event file (.csv, or .jsonl / .ndjson / .json for JSON lines).") var file: String
    @Option(name: .long, help: "The source (feed) the events come from: the deduplication key with each sequence.")
    var source: String
    @Option(name: .long, help: "csv or jsonl (default: from the file's extension).") var format: EventFileFormat?
    @Option(name: .long, help: "Events per batch (capped at the server's batchItemsMax).") var batch: Int = IngestCommand.defaultBatch

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the source, the batch size and that the format is known.
    public func validate() throws {
        try NameRules.validate(source, kind: .source, option: "--source")
        if batch < 1 { throw ValidationError("--batch must be at least 1, got \(batch)") }
        if format == nil && EventFileFormat.inferred(fromPath: file) == nil {
            throw ValidationError("cannot tell the format of \(file) from its extension; pass --format csv or --format jsonl")
        }
    }

    /// Checks the whole file, then sends it and prints the summary.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        guard let format = format ?? EventFileFormat.inferred(fromPath: file) else {
            throw CommandLineError.usage("cannot tell the format of \(file) from its extension; pass --format csv or --format jsonl")
        }
        let input = try InputFile.read(file)
        let total = try EventFileReader.count(input, format: format)
        let printer = Printer(context, settings)
        let tally = try await Session.with(settings) { session in
            var progress = ProgressBar(output: context.output, total: total, unit: "events",
                                       isEnabled: context.output.isErrorTerminal && !settings.json)
            defer { progress.finish() }
            var run = IngestRun(session: session, source: source, total: total,
                                reader: EventFileReader(input, format: format), batchMax: batch)
            return try await run.send { progress.update(done: $0) }
        }
        let summary = IngestSummary(file: file, format: format, source: source, tally: tally)
        printer.emit(summary.json) { summary.lines(rejectionsListedMax: Self.rejectionsListedMax) }
        if tally.rejections.isEmpty { return .ok }
        printer.note("\(tally.rejections.count) of \(tally.eventsSent) events rejected")
        return .partial
    }
}

/// What an ingest run came to.
struct IngestTally: Sendable {
    var eventsSent = 0
    var batches = 0
    var applied = 0
    var duplicates = 0
    /// (file line, reason code) of every rejected event, in file order.
    var rejections: [(line: Int, reasonCode: UInt16)] = []
    var elapsedNanoseconds: Int64 = 0
}

/// Sends an event file in pipelined batches and adds up the replies.
struct IngestRun {
    let session: Session
    let source: String
    let total: Int
    var reader: EventFileReader
    let batchMax: Int

    /// Bytes of an ingest frame before its events: header 10, source with its length byte, count 4.
    var frameHeadBytes: Int { 10 + 1 + source.utf8.count + 4 }

    /// Sends every event; `progress` gets the number of events answered so far after each reply.
    /// Throws `CommandLineError`; when batches were already answered, the message says how many
    /// events were acknowledged and that sending again is safe.
    mutating func send(progress: (Int) -> Void) async throws -> IngestTally {
        let eventsPerBatch = max(1, min(batchMax, Int(session.hello.batchItemsMax)))
        let frameBytesMax = Int(session.hello.frameBytesMax)
        var tally = IngestTally()
        var pending: (line: Int, event: WireEvent)?
        let clock = ContinuousClock()
        let started = clock.now
        do {
            try await ReplyPipeline.run(session: session, what: "ingest", next: { () throws -> ([Int], Request)? in
                var lines: [Int] = []
                var events: [WireEvent] = []
                var bytes = frameHeadBytes
                while events.count < eventsPerBatch {
                    guard let item = try pending ?? reader.next() else { break }
                    pending = nil
                    let eventBytes = EventBuilder.wireBytes(item.event)
                    if !events.isEmpty && bytes + eventBytes > frameBytesMax {
                        pending = item
                        break
                    }
                    bytes += eventBytes
                    lines.append(item.line)
                    events.append(item.event)
                }
                if events.isEmpty { return nil }
                tally.eventsSent += events.count
                tally.batches += 1
                return (lines, .ingest(IngestRequest(source: source, events: events)))
            }, receive: { lines, reply in
                try Self.add(reply, lines: lines, to: &tally)
                progress(tally.applied + tally.duplicates + tally.rejections.count)
            })
        } catch let error as CommandLineError {
            let acknowledged = tally.applied + tally.duplicates + tally.rejections.count
            guard tally.batches > 0 else { throw error }
            throw CommandLineError(status: error.status, message: "\(error.message); \(acknowledged) of \(total) events "
                + "were acknowledged before that; sending the file again is safe (events are deduplicated by source and sequence)")
        }
        tally.elapsedNanoseconds = Self.nanoseconds(clock.now - started)
        tally.rejections.sort { $0.line < $1.line }
        return tally
    }

    /// Adds one batch's reply. Throws when the reply does not account for the batch's events.
    static func add(_ reply: Reply, lines: [Int], to tally: inout IngestTally) throws {
        guard case .ingest(let answer) = reply,
              Int(answer.appliedCount) + Int(answer.duplicateCount) + answer.rejections.count == lines.count,
              answer.rejections.allSatisfy({ Int($0.index) < lines.count })
        else {
            throw CommandLineError(status: .serverError,
                                   message: "the server's answer to a batch of \(lines.count) events does not add up")
        }
        tally.applied += Int(answer.appliedCount)
        tally.duplicates += Int(answer.duplicateCount)
        for rejection in answer.rejections {
            tally.rejections.append((lines[Int(rejection.index)], rejection.reasonCode))
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}

/// The summary `atp ingest` prints.
struct IngestSummary {
    let file: String
    let format: EventFileFormat
    let source: String
    let tally: IngestTally

    var elapsedMilliseconds: Int64 { tally.elapsedNanoseconds / 1_000_000 }

    /// Events per second over the send phase (0 when nothing was sent).
    var eventsPerSecond: Int64 {
        guard tally.elapsedNanoseconds > 0 else { return 0 }
        return Int64(Double(tally.eventsSent) * 1e9 / Double(tally.elapsedNanoseconds))
    }

    /// Rejected events per reason name, in reason-code order.
    var rejectedByReason: [(name: String, count: Int)] {
        var counts: [UInt16: Int] = [:]
        for rejection in tally.rejections { counts[rejection.reasonCode, default: 0] += 1 }
        return counts.sorted { $0.key < $1.key }.map { (RejectionFormatting.reasonName($0.key), $0.value) }
    }

    var json: JSONValue {
        .object([
            ("file", .string(file)), ("format", .string(format.rawValue)), ("source", .string(source)),
            ("eventsSent", .number(tally.eventsSent)), ("batches", .number(tally.batches)),
            ("applied", .number(tally.applied)), ("duplicates", .number(tally.duplicates)),
            ("rejected", .number(tally.rejections.count)),
            ("rejectedByReason", .object(rejectedByReason.map { ($0.name, .number($0.count)) })),
            ("elapsedMilliseconds", .number(elapsedMilliseconds)), ("eventsPerSecond", .number(eventsPerSecond)),
            ("rejections", .array(tally.rejections.map { rejection in
                .object([("line", .number(rejection.line)), ("reason", .string(RejectionFormatting.reasonName(rejection.reasonCode))),
                         ("reasonCode", .number(rejection.reasonCode))])
            })),
        ])
    }

    func lines(rejectionsListedMax: Int) -> [String] {
        let batches = tally.batches == 1 ? "1 batch" : "\(tally.batches) batches"
        var lines = ["ingested \(file) (\(format.rawValue)) as source \(source): \(tally.eventsSent) events in \(batches)"]
        let width = String(max(tally.eventsSent, 1)).count
        func row(_ label: String, _ value: Int) -> String {
            let text = String(value)
            return "  " + label + String(repeating: " ", count: 12 - label.count)
                + String(repeating: " ", count: max(0, width - text.count)) + text
        }
        lines += [row("applied", tally.applied), row("duplicates", tally.duplicates),
                  row("rejected", tally.rejections.count)]
        for (name, count) in rejectedByReason { lines.append("      \(name): \(count)") }
        lines.append("  elapsed     \(Format.grouped(elapsedMilliseconds)) ms (\(Format.grouped(eventsPerSecond)) events/s)")
        guard !tally.rejections.isEmpty else { return lines }
        lines.append("rejected events:")
        for rejection in tally.rejections.prefix(rejectionsListedMax) {
            let explanation = RejectionReason(rawValue: rejection.reasonCode).map { ": \($0.explanation)" } ?? ""
            lines.append("  line \(rejection.line): \(RejectionFormatting.reasonName(rejection.reasonCode))\(explanation)")
        }
        if tally.rejections.count > rejectionsListedMax {
            lines.append("  ... and \(tally.rejections.count - rejectionsListedMax) more (--json lists them all)")
        }
        return lines
    }
}
