import ATPLedger
import ATPProtocol
import ArgumentParser

/// The formats `atp ingest` reads.
public enum EventFileFormat: String, CaseIterable, Sendable, ExpressibleByArgument {
    /// Comma-separated values, with or without a header line.
    case csv
    /// One JSON object per line.
    case jsonl

    /// The format a file name's extension implies: `.csv`; `.jsonl`, `.ndjson` or `.json`. Nil otherwise.
    public static func inferred(fromPath path: String) -> EventFileFormat? {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return nil }
        switch name[name.index(after: dot)...].lowercased() {
        case "csv": return .csv
        case "jsonl", "ndjson", "json": return .jsonl
        default: return nil
        }
    }
}

/// Walks an event file and yields its events with their line numbers. The same file always yields
/// the same events, so a first pass can check the whole file before a second pass sends it.
struct EventFileReader {
    private let file: InputFile
    private var lines: LineScanner
    private var csv = CSVEventParser()
    private let format: EventFileFormat

    init(_ file: InputFile, format: EventFileFormat) {
        self.file = file
        self.format = format
        lines = file.lines()
    }

    /// The next event and its line number, or nil at the end. Throws a usage error naming the
    /// file, the line and the problem.
    mutating func next() throws(CommandLineError) -> (line: Int, event: WireEvent)? {
        while let (number, text) = lines.next() {
            do throws(LineError) {
                let line = try text.get()
                let event = switch format {
                case .csv: try csv.parse(line)
                case .jsonl: try JSONLinesEventParser().parse(line)
                }
                if let event { return (number, event) }
            } catch {
                throw file.error(line: number, error.message)
            }
        }
        return nil
    }

    /// Reads the whole file once and counts its events. Throws at the first bad line.
    static func count(_ file: InputFile, format: EventFileFormat) throws(CommandLineError) -> Int {
        var reader = EventFileReader(file, format: format)
        var count = 0
        while try reader.next() != nil { count += 1 }
        return count
    }
}

/// Text and JSON forms of events, in the event-file vocabulary (so a logged event printed with
/// `--json` can be fixed and fed back as a JSON line).
enum EventFormatting {
    /// The event as a flat JSON object with the `EventField` keys that apply to it.
    static func json(_ event: WireEvent) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("kind", event.kind.map { .string($0.description) } ?? .number(event.kindCode)),
            ("sku", .string(event.sku)), ("location", .string(event.location)),
            ("quantity", .number(event.quantity)), ("sequence", .number(event.sequence)),
        ]
        if let toLocation = event.toLocation { members.append(("to_location", .string(toLocation))) }
        if let correlation = event.correlation { members.append(("correlation", .string(correlation))) }
        if event.eventMilliseconds != 0 { members.append(("event_ms", .number(event.eventMilliseconds))) }
        if let detail = codeDetail(event) { members.append(detail.field == .bucket ? ("bucket", .string(detail.name)) : ("outcome", .string(detail.name))) }
        if event.reasonCode != 0 { members.append(("reason_code", .number(event.reasonCode))) }
        if let value = event.countDamaged { members.append(("count_damaged", .number(value))) }
        if let value = event.countQuarantine { members.append(("count_quarantine", .number(value))) }
        if event.flags.contains(.intoQuarantine) { members.append(("into_quarantine", true)) }
        if event.flags.contains(.closesInbound) { members.append(("closes_inbound", true)) }
        return .object(members)
    }

    /// "receive SKU-1 at DC1 quantity 10 sequence 5", with the fields that apply.
    static func summary(_ event: WireEvent) -> String {
        var text = "\(event.kind?.description ?? "kind \(event.kindCode)") \(event.sku) at \(event.location)"
        if let toLocation = event.toLocation { text += " to \(toLocation)" }
        text += " quantity \(event.quantity) sequence \(event.sequence)"
        if let detail = codeDetail(event) { text += " \(detail.field.rawValue) \(detail.name)" }
        if let correlation = event.correlation { text += " correlation \(correlation)" }
        return text
    }

    /// The bucket or outcome the event's code names, when its kind reads one.
    private static func codeDetail(_ event: WireEvent) -> (field: EventField, name: String)? {
        switch event.kind {
        case .adjust?, .writeOff?:
            return (.bucket, Bucket(rawValue: event.code).map(\.description) ?? "code \(event.code)")
        case .disposition?:
            return (.outcome, DispositionOutcome(rawValue: event.code).map(\.description) ?? "code \(event.code)")
        default:
            return nil
        }
    }
}
