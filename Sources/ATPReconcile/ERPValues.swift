import ATPLedger

/// Parsers for the typed fields of an ERP row, working on the field's bytes (no allocation).
enum ERPValues {
    /// The largest quantity a cell can hold (its buckets are 32-bit).
    static let quantityMax = Int64(Int32.max)
    /// The largest unit cost accepted, in millionths (10^12 currency units).
    static let unitCostMicrosMax: Int64 = 1_000_000_000_000_000_000

    /// A quantity: optional `+`, digits, optionally `.` followed by zeros only (`12.000` is 12).
    static func quantity(_ field: UnsafeRawBufferPointer) -> Result<Int64, BadRow.Problem> {
        var index = 0
        let count = field.count
        var negative = false
        if index < count && (field[index] == UInt8(ascii: "+") || field[index] == UInt8(ascii: "-")) {
            negative = field[index] == UInt8(ascii: "-")
            index += 1
        }
        let digitsStart = index
        var value: Int64 = 0
        var overflow = false
        while index < count, field[index] &- 48 < 10 {
            if value <= quantityMax { value = value * 10 + Int64(field[index] &- 48) } else { overflow = true }
            index += 1
        }
        let hasDigits = index > digitsStart
        if index < count && field[index] == UInt8(ascii: ".") {
            index += 1
            var fractionIsZero = true
            let fractionStart = index
            while index < count, field[index] &- 48 < 10 {
                if field[index] != UInt8(ascii: "0") { fractionIsZero = false }
                index += 1
            }
            guard fractionIsZero, hasDigits || index > fractionStart else {
                return .failure(.init(.nonIntegerQuantity, "is not a whole number"))
            }
        }
        guard index == count, hasDigits else { return .failure(.init(.nonIntegerQuantity, "is not a whole number")) }
        if negative && (value != 0 || overflow) { return .failure(.init(.negativeQuantity, "is negative")) }
        if overflow || value > quantityMax {
            return .failure(.init(.nonIntegerQuantity, "is out of range (0 to \(quantityMax))"))
        }
        return .success(value)
    }

    /// A unit cost in millionths: digits, optionally `.` and 1 to 6 decimals; not negative.
    static func unitCostMicros(_ field: UnsafeRawBufferPointer) -> Result<Int64, BadRow.Problem> {
        let invalid = BadRow.Problem(.invalidUnitCost, "is not a non-negative decimal with at most 6 decimals")
        var index = 0
        let count = field.count
        if index < count && field[index] == UInt8(ascii: "+") { index += 1 }
        if index < count && field[index] == UInt8(ascii: "-") { return .failure(.init(.invalidUnitCost, "is negative")) }
        var units: Int64 = 0
        let unitsStart = index
        while index < count, field[index] &- 48 < 10 {
            units = units * 10 + Int64(field[index] &- 48)
            if units > unitCostMicrosMax / 1_000_000 { return .failure(.init(.invalidUnitCost, "is too large")) }
            index += 1
        }
        var micros: Int64 = 0
        var decimals = 0
        let hasUnits = index > unitsStart
        if index < count && field[index] == UInt8(ascii: ".") {
            index += 1
            while index < count, field[index] &- 48 < 10 {
                decimals += 1
                if decimals > 6 { return .failure(invalid) }
                micros = micros * 10 + Int64(field[index] &- 48)
                index += 1
            }
            if decimals == 0 && !hasUnits { return .failure(invalid) }
        }
        guard index == count, hasUnits || decimals > 0 else { return .failure(invalid) }
        for _ in decimals..<6 { micros *= 10 }
        return .success(units * 1_000_000 + micros)
    }

    /// An as_of: milliseconds since 1970 (digits only), a date `YYYY-MM-DD` (midnight UTC), or
    /// `YYYY-MM-DDTHH:MM[:SS[.fff]][Z]` (`T` or a space; UTC).
    static func asOfMilliseconds(_ field: UnsafeRawBufferPointer) -> Result<Int64, BadRow.Problem> {
        let invalid = BadRow.Problem(.invalidAsOf, "is not a date (YYYY-MM-DD), a UTC date-time (YYYY-MM-DDTHH:MM:SSZ) or milliseconds since 1970")
        let count = field.count
        if count > 0 && count <= 15 && field.allSatisfy({ $0 &- 48 < 10 }) {
            var value: Int64 = 0
            for byte in field { value = value * 10 + Int64(byte &- 48) }
            return .success(value)
        }
        var reader = DigitReader(field)
        guard let year = reader.number(4), reader.skip("-"), let month = reader.number(2), reader.skip("-"),
              let day = reader.number(2), (1...12).contains(month), (1...31).contains(day)
        else { return .failure(invalid) }
        var milliseconds = CivilTime.daysSinceEpoch(year: year, month: month, day: day) * 86_400_000
        if reader.isAtEnd { return .success(milliseconds) }
        guard reader.skip("T") || reader.skip(" "), let hour = reader.number(2), reader.skip(":"),
              let minute = reader.number(2), hour < 24, minute < 60
        else { return .failure(invalid) }
        milliseconds += (hour * 60 + minute) * 60_000
        if reader.skip(":") {
            guard let second = reader.number(2), second < 61 else { return .failure(invalid) }
            milliseconds += second * 1000
            if reader.skip(".") {
                guard let fraction = reader.number(3) else { return .failure(invalid) }
                milliseconds += fraction
            }
        }
        _ = reader.skip("Z")
        return reader.isAtEnd ? .success(milliseconds) : .failure(invalid)
    }

    private struct DigitReader {
        let bytes: UnsafeRawBufferPointer
        var index = 0
        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }
        var isAtEnd: Bool { index == bytes.count }

        mutating func number(_ digits: Int) -> Int64? {
            guard bytes.count - index >= digits else { return nil }
            var value: Int64 = 0
            for _ in 0..<digits {
                guard bytes[index] &- 48 < 10 else { return nil }
                value = value * 10 + Int64(bytes[index] &- 48)
                index += 1
            }
            return value
        }

        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
            index += 1
            return true
        }
    }
}

extension BadRow {
    /// A problem found in one field, before the field's name and the line are known.
    struct Problem: Error, Equatable {
        var kind: BadRowProblem
        var message: String
        init(_ kind: BadRowProblem, _ message: String) {
            self.kind = kind
            self.message = message
        }
    }
}

/// The calendar arithmetic the reports and the ERP reader use (shared with the CLI).
typealias CivilTime = UTCTime

/// Text forms of numbers shared by the report writers.
enum NumberText {
    /// An amount in millionths as a decimal with at least 2 and at most 6 decimals: 12500000 → "12.50".
    static func decimal(micros: Int128) -> String {
        let negative = micros < 0
        let magnitude = negative ? -micros : micros
        var fraction = String(Int(magnitude % 1_000_000))
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.count > 2 && fraction.hasSuffix("0") { fraction.removeLast() }
        return (negative ? "-" : "") + String(magnitude / 1_000_000) + "." + fraction
    }

    /// An integer with thousands separators: 1234567 → "1,234,567".
    static func grouped(_ value: some BinaryInteger) -> String { GroupedDigits.text(value) }

    /// A percentage with two decimals: 99.5 → "99.50".
    static func percent(_ part: Int, of whole: Int) -> String {
        guard whole > 0 else { return "100.00" }
        let hundredths = (Int128(part) * 10_000 * 2 + Int128(whole)) / (Int128(whole) * 2)
        let fraction = String(Int(hundredths % 100))
        return String(hundredths / 100) + "." + (fraction.count == 1 ? "0" + fraction : fraction)
    }
}
