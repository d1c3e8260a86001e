import ATPLedger
import ATPServer
import Foundation

/// The values atpd's flags may give; nil where a flag was not given.
public struct ATPDOptions: Sendable, Equatable {
    /// `--config`: the JSON configuration file.
    public var configFile: String? = nil
    /// `--host`: `host`.
    public var host: String? = nil
    /// `--port`: `port`.
    public var port: Int? = nil
    /// `--shards`: `ledger.shardCount`.
    public var shardCount: Int? = nil
    /// `--workers`: `ledger.workerCount`.
    public var workerCount: Int? = nil
    /// `--io-threads`: `ioThreads`.
    public var ioThreads: Int? = nil
    /// `--thread-per-core`: `threadPerCore` (true when given; nil leaves the file's or the default).
    public var threadPerCore: Bool? = nil
    /// `--core-port-base`: `corePortBase`.
    public var corePortBase: Int? = nil
    /// `--metrics-host`: `metricsHost`.
    public var metricsHost: String? = nil
    /// `--metrics-port`: `metricsPort`.
    public var metricsPort: Int? = nil
    /// `--log-level`: `logLevel`.
    public var logLevel: String? = nil
    /// `--tokens-file`: `tokensFile`.
    public var tokensFile: String? = nil
    /// `--demo`: the demo catalogue, demo tokens when none are configured, metrics on 9411.
    public var demo = false
    /// `--accept-journal-damage`: `acceptJournalDamage` (the flag can only turn it on).
    public var acceptJournalDamage = false

    /// No flags.
    public init() {}
}

/// The configuration in force and where its tokens came from.
public struct ResolvedConfiguration: Sendable, Equatable {
    /// The effective configuration, checked.
    public var configuration: ServerConfiguration
    /// Where `configuration.tokens` came from (printed by `--print-config` and at start).
    public var tokenOrigin: ServerConfiguration.TokenOrigin
    /// Whether recovery may accept journal damage that loses acknowledged records, setting the
    /// damaged bytes aside (`--accept-journal-damage` or the file's `acceptJournalDamage`; default
    /// false: atpd refuses to start and says what is damaged). docs/DURABILITY.md, "Damaged journals".
    public var acceptJournalDamage = false

    /// The start keys as `key = value` lines, for `--print-config` after `configuration.describe()`.
    public func describeStartKeys() -> String {
        "acceptJournalDamage = \(acceptJournalDamage)"
    }
}

/// One configuration story (docs/CONFIGURATION.md): defaults, then the file, then the flags; tokens
/// from `ATPD_TOKENS` or `tokensFile` rather than the file; `--demo` fills in what a first run needs.
public enum ConfigurationResolver {
    /// The metrics port `--demo` uses when none is configured.
    public static let demoMetricsPort = 9411

    /// Resolves the effective configuration. Throws `ConfigurationError` naming the key, the value
    /// and the reason for the first bad value; when a flag set the value, the reason names the flag.
    public static func resolve(_ options: ATPDOptions, environment: [String: String],
                               coreCount: Int = systemCoreCount()) throws(ConfigurationError) -> ResolvedConfiguration {
        let file = try options.configFile.map { path throws(ConfigurationError) in
            try ServerConfiguration.read(jsonFile: path)
        }
        var configuration = file?.configuration ?? ServerConfiguration()
        if let host = options.host { configuration.host = host }
        if let port = options.port { configuration.port = port }
        if let shards = options.shardCount { configuration.ledger.shardCount = shards }
        if let ioThreads = options.ioThreads { configuration.ioThreads = ioThreads }
        if let perCore = options.threadPerCore { configuration.threadPerCore = perCore }
        if let base = options.corePortBase { configuration.corePortBase = base }
        if let workers = options.workerCount {
            configuration.ledger.workerCount = workers
        } else if !(options.configFile.map(fileSetsWorkerCount) ?? false) {
            // Thread-per-core: a core (event loop and shards) per CPU. Otherwise leave the I/O
            // threads a core: on a 2-core machine, 1 worker + 1 event loop.
            let cores = configuration.threadPerCore ? coreCount : coreCount - configuration.ioThreads
            configuration.ledger.workerCount = max(1, min(configuration.ledger.shardCount, cores))
        }
        if let host = options.metricsHost { configuration.metricsHost = host }
        if let port = options.metricsPort { configuration.metricsPort = port }
        if options.demo && configuration.metricsPort == nil { configuration.metricsPort = demoMetricsPort }
        if let token = environment["ATPD_METRICS_TOKEN"], !token.isEmpty { configuration.metricsToken = token }
        if let level = options.logLevel { configuration.logLevel = level }
        if let path = options.tokensFile { configuration.tokensFile = path }
        do {
            var origin = try configuration.loadTokens(environment: environment)
            // The demo tokens only with --demo: a server started without configuration must not
            // accept tokens everyone knows (atpd refuses to start with no tokens at all).
            if configuration.tokens.isEmpty && options.demo {
                configuration.tokens = ServerConfiguration.demoTokens
                origin = .demo
            }
            try configuration.validate()
            let acceptJournalDamage = options.acceptJournalDamage || file?.startKeys.acceptJournalDamage == true
            return ResolvedConfiguration(configuration: configuration, tokenOrigin: origin,
                                         acceptJournalDamage: acceptJournalDamage)
        } catch {
            guard let flag = options.flag(setting: error.key) else { throw error }
            throw ConfigurationError(key: error.key, value: error.value, reason: error.reason + " (set by \(flag))")
        }
    }

    /// Whether the configuration file gives `ledger.workerCount` itself (it was read and checked
    /// already, so anything unreadable here counts as "no").
    private static func fileSetsWorkerCount(_ path: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let ledger = root["ledger"] as? [String: Any] else { return false }
        return ledger["workerCount"] != nil
    }
}

extension ATPDOptions {
    /// The flag that set the configuration key `key` in these options, or nil (the value came
    /// from the file or a default).
    func flag(setting key: String) -> String? {
        let flags: [(key: String, given: Bool, flag: String)] = [
            ("host", host != nil, "--host"), ("port", port != nil, "--port"),
            ("ledger.shardCount", shardCount != nil, "--shards"), ("ledger.workerCount", workerCount != nil, "--workers"),
            ("ioThreads", ioThreads != nil, "--io-threads"), ("metricsHost", metricsHost != nil, "--metrics-host"),
            ("metricsPort", metricsPort != nil, "--metrics-port"), ("logLevel", logLevel != nil, "--log-level"),
            ("tokensFile", tokensFile != nil, "--tokens-file"),
            ("threadPerCore", threadPerCore != nil, "--thread-per-core"),
            ("corePortBase", corePortBase != nil, "--core-port-base"),
        ]
        return flags.first { $0.key == key && $0.given }?.flag
    }
}
