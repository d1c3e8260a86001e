import ATPLedger

extension ServerConfiguration {
    /// The longest `interval:<ms>` durability, in milliseconds (the journal's limit, one hour).
    public static let durabilityIntervalMillisecondsMax = 3_600_000

    /// The interval of an `interval:<ms>` durability (also written `<ms>ms`), nil for `sync` and
    /// `none`; throws when `text` is none of the three forms or the interval is out of range.
    public static func durabilityIntervalMilliseconds(_ text: String) throws(ConfigurationError) -> Int? {
        if text == "sync" || text == "none" { return nil }
        var number = Substring(text)
        if number.hasPrefix("interval:") { number = number.dropFirst("interval:".count) }
        if number.hasSuffix("ms") { number = number.dropLast(2) }
        guard let milliseconds = Int(number), milliseconds >= 1, milliseconds <= durabilityIntervalMillisecondsMax else {
            throw ConfigurationError(key: "durability", value: text,
                                     reason: "must be sync, none or interval:<ms> with 1 to \(durabilityIntervalMillisecondsMax) ms")
        }
        return milliseconds
    }

    /// Checks `dataDirectory`, `durability`, `snapshotIntervalSeconds` and `snapshotsKept`.
    func validateDurability() throws(ConfigurationError) {
        if let dataDirectory, dataDirectory.isEmpty {
            throw ConfigurationError(key: "dataDirectory", value: dataDirectory, reason: "must not be empty (leave it out to run in memory)")
        }
        _ = try Self.durabilityIntervalMilliseconds(durability)
        if snapshotIntervalSeconds < 0 || snapshotIntervalSeconds > 31_536_000 {
            throw ConfigurationError(key: "snapshotIntervalSeconds", value: "\(snapshotIntervalSeconds)",
                                     reason: "must be from 0 (no scheduled snapshots) to 31536000 (a year)")
        }
        if snapshotsKept < 1 || snapshotsKept > 1000 {
            throw ConfigurationError(key: "snapshotsKept", value: "\(snapshotsKept)", reason: "must be from 1 to 1000")
        }
    }
}
