#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ATPLedger
import ATPProtocol
import Foundation

/// Tokens from outside the configuration file, so that secrets stay out of it: the environment
/// variable `ATPD_TOKENS` or the file `tokensFile` names. Both use one format (docs/CONFIGURATION.md):
///
/// ```
/// # name:roles:token, one entry a line (or separated by spaces or ';' in ATPD_TOKENS)
/// web-shop:query+reserve:9f2c1e...
/// loader:ingest:41be77...
/// ```
///
/// `roles` joins query, reserve, ingest and admin with `+`; the token is everything after the second
/// colon (it may contain colons, not spaces). Lines starting with `#` and blank lines are skipped.
extension ServerConfiguration {
    /// Where the tokens in force came from.
    public enum TokenOrigin: String, Sendable, Equatable {
        case configurationFile = "configuration file"
        case tokensFile = "tokensFile"
        case environment = "ATPD_TOKENS"
        case demo = "demo tokens"
        case none = "none"
    }

    /// The environment variable that carries tokens.
    public static let tokensEnvironmentVariable = "ATPD_TOKENS"

    /// Replaces `tokens` with those of `ATPD_TOKENS` when it is set and not empty, else with those of
    /// `tokensFile` when one is configured; otherwise leaves them. Returns where they came from
    /// (`.configurationFile` when left, `.none` when there are none). Throws naming the variable or
    /// the file, the entry and what is wrong, never the token itself.
    public mutating func loadTokens(environment: [String: String]) throws(ConfigurationError) -> TokenOrigin {
        if let text = environment[Self.tokensEnvironmentVariable],
           !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            tokens = try Self.parseTokens(text, origin: Self.tokensEnvironmentVariable, oneEntryPerLine: false)
            return .environment
        }
        if let path = tokensFile {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError(key: "tokensFile", value: path, reason: "cannot be read")
            }
            // Secrets every user of the machine may read or change are not secrets: refuse them, as
            // ssh refuses a private key with such a mode.
            var status = stat()
            if stat(path, &status) == 0, status.st_mode & 0o007 != 0 {
                throw ConfigurationError(key: "tokensFile", value: path,
                                         reason: "is open to every user (mode \(String(status.st_mode & 0o777, radix: 8))): "
                                             + "chmod 600 it (or 640 for a service group)")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw ConfigurationError(key: "tokensFile", value: path, reason: "is not UTF-8 text")
            }
            tokens = try Self.parseTokens(text, origin: "tokensFile \(path)", oneEntryPerLine: true)
            return .tokensFile
        }
        return tokens.isEmpty ? .none : .configurationFile
    }

    /// Parses `name:roles:token` entries, one a line, or (`oneEntryPerLine` false) separated by
    /// line breaks, spaces, tabs or `;`. `origin` names the source in errors (the key of a
    /// `ConfigurationError`, with the entry's position).
    public static func parseTokens(_ text: String, origin: String,
                                   oneEntryPerLine: Bool = true) throws(ConfigurationError) -> [TokenGrant] {
        var grants: [TokenGrant] = []
        var position = 0
        let entries = text.split(whereSeparator: { character in
            character.isNewline || (!oneEntryPerLine && (character == " " || character == "\t" || character == ";"))
        })
        for rawEntry in entries {
            let entry = rawEntry.trimmingCharacters(in: .whitespaces)
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            position += 1
            let key = "\(origin) entry \(position)"
            let parts = entry.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else {
                throw ConfigurationError(key: key, value: "(hidden)", reason: "must read name:roles:token")
            }
            let name = String(parts[0])
            guard !name.isEmpty else {
                throw ConfigurationError(key: key, value: "(hidden)", reason: "the name before the first ':' is empty")
            }
            guard !parts[2].contains(where: \.isWhitespace) else {
                throw ConfigurationError(key: key, value: name, reason: "a token must not contain spaces")
            }
            var roles: Roles = []
            for role in parts[1].split(separator: "+", omittingEmptySubsequences: false) {
                switch role {
                case "query": roles.insert(.query)
                case "reserve": roles.insert(.reserve)
                case "ingest": roles.insert(.ingest)
                case "admin": roles.insert(.admin)
                default:
                    throw ConfigurationError(key: key + " (\(name)) roles", value: String(role),
                                             reason: "roles are query, reserve, ingest and admin, joined with '+'")
                }
            }
            grants.append(TokenGrant(token: String(parts[2]), roles: roles, name: name))
        }
        return grants
    }
}
