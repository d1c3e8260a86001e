import ATPLedger

/// Writes a command's result in the form asked for: JSON on one line with `--json`, text for people
/// otherwise. Notes (a refused reservation, rejected events) go to stderr in both forms.
struct Printer {
    let output: any OutputSink
    let json: Bool

    init(_ context: CommandContext, _ settings: ConnectionSettings) {
        output = context.output
        json = settings.json
    }

    /// Prints `value` as JSON or the lines `human` builds.
    func emit(_ value: @autoclosure () -> JSONValue, human: () -> [String]) {
        if json {
            output.line(value().serialized())
        } else {
            for line in human() { output.line(line) }
        }
    }

    /// A one-line note on stderr, prefixed like errors.
    func note(_ message: String) {
        output.errorLine("atp: \(message)")
    }
}

/// Text forms shared by the commands.
enum Format {
    /// A time in milliseconds since 1970 as ISO 8601 UTC with milliseconds: `2023-11-14T22:13:20.500Z`.
    /// Cost: integer arithmetic only (the proleptic Gregorian calendar, no time zone database).
    static func timestamp(milliseconds: Int64) -> String { UTCTime.iso8601(milliseconds: milliseconds) }

    /// A byte count or rate with thousands separators: 1234567 → "1,234,567".
    static func grouped(_ value: some BinaryInteger) -> String { GroupedDigits.text(value) }
}
