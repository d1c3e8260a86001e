/// UTC calendar arithmetic for the tools' text output and input (the proleptic Gregorian calendar,
/// integer arithmetic only, no time zone database, no Foundation): Howard Hinnant's
/// `days_from_civil` and `civil_from_days`.
public enum UTCTime {
    /// Days from 1970-01-01 to the date (month 1...12, day 1...31; not range-checked here).
    public static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `daysSinceEpoch` days after 1970-01-01: year, month (1...12), day (1...31).
    public static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
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

    /// Milliseconds since 1970 as ISO 8601 UTC with milliseconds: `2023-11-14T22:13:20.500Z`
    /// (times before 1970 too).
    public static func iso8601(milliseconds: Int64) -> String {
        var days = milliseconds / 86_400_000
        var millisecondOfDay = milliseconds % 86_400_000
        if millisecondOfDay < 0 {
            days -= 1
            millisecondOfDay += 86_400_000
        }
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(millisecondOfDay / 3_600_000, 2)):"
            + "\(pad(millisecondOfDay / 60_000 % 60, 2)):\(pad(millisecondOfDay / 1000 % 60, 2))."
            + "\(pad(millisecondOfDay % 1000, 3))Z"
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// Integers as people read them in tables and summaries.
public enum GroupedDigits {
    /// `value` with thousands separators: 1234567 → "1,234,567", -1000 → "-1,000".
    public static func text(_ value: some BinaryInteger) -> String {
        let digits = String(value.magnitude)
        var result = ""
        result.reserveCapacity(digits.count + digits.count / 3 + 1)
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
            result.append(digit)
        }
        return value < 0 ? "-" + result : result
    }
}
