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
    static func timestamp(milliseconds: Int64) -> String {
        let (daysSinceEpoch, millisecondOfDay) = floorDivide(milliseconds, 86_400_000)
        let (year, month, day) = civilDate(daysSinceEpoch: daysSinceEpoch)
        let hour = millisecondOfDay / 3_600_000
        let minute = millisecondOfDay / 60_000 % 60
        let second = millisecondOfDay / 1000 % 60
        let millisecond = millisecondOfDay % 1000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(millisecond, 3))Z"
    }

    /// A byte count or rate with thousands separators: 1234567 → "1,234,567".
    static func grouped(_ value: some BinaryInteger) -> String {
        let digits = String(value.magnitude)
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
            result.append(digit)
        }
        return value < 0 ? "-" + result : result
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (Int64, Int64) {
        var quotient = value / divisor
        var remainder = value % divisor
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }

    /// Howard Hinnant's `civil_from_days`: year, month (1...12), day (1...31).
    private static func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
