import Foundation
import Logging

/// A swift-log handler that writes one line per message:
///
/// `2026-01-31T12:00:00.123Z info atpd: recovered cells=5000 durationMilliseconds=12`
///
/// UTC time, level, label, message, then the metadata as `key=value` pairs sorted by key (values
/// with spaces, quotes or `=` are quoted, like logfmt). Lines go to standard error unless a sink is
/// given (tests).
public struct KeyValueLogHandler: LogHandler {
    /// Where finished lines go.
    public typealias Sink = @Sendable (String) -> Void

    /// Lowest level written.
    public var logLevel: Logger.Level
    /// Metadata attached to every line of this logger.
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let sink: Sink

    /// A handler for `label` at `level`, writing to `sink` (standard error by default).
    public init(label: String, level: Logger.Level = .info, sink: Sink? = nil) {
        self.label = label
        self.logLevel = level
        self.sink = sink ?? KeyValueLogHandler.standardError
    }

    /// Writes one line to standard error (a single `write`, so lines of threads never interleave).
    public static let standardError: Sink = { line in
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// Metadata of this logger.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Formats and writes one event.
    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        if let error = event.error { merged["error"] = .string("\(error)") }
        sink(Self.format(time: Date(), level: event.level, label: label, message: event.message.description,
                         metadata: merged))
    }

    /// The line for one event (without the newline).
    public static func format(time: Date, level: Logger.Level, label: String, message: String,
                              metadata: Logger.Metadata) -> String {
        var line = "\(timestamp(time)) \(level) \(label): \(message)"
        for key in metadata.keys.sorted() {
            guard let value = metadata[key] else { continue }
            line += " \(key)=\(quoted("\(value)"))"
        }
        return line
    }

    /// A value as logfmt writes it: bare when it is one plain word, else in quotes with `"` and `\`
    /// escaped and line breaks as `\n`.
    static func quoted(_ value: String) -> String {
        let plain = !value.isEmpty && !value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\\" || $0.isNewline }
        if plain { return value }
        var escaped = "\""
        for character in value {
            switch character {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            default: escaped.append(character)
            }
        }
        return escaped + "\""
    }

    private static func timestamp(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec),
                      Int(milliseconds % 1000))
    }
}

extension Logger.Level {
    /// The level named `name` (trace, debug, info, notice, warning, error, critical), or nil.
    public init?(configurationName name: String) {
        self.init(rawValue: name)
    }
}
