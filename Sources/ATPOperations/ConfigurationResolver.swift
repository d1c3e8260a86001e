import ATPLedger
import ATPServer

/// The values atpd's flags may give; nil where a flag was not given.
public struct ATPDOptions: Sendable, Equatable {
    /// `--config`: the JSON configuration file.
    public var configFile: String? = nil
    public var host: String? = nil
    public var port: Int? = nil
    public var shardCount: Int? = nil
    public var workerCount: Int? = nil
    public var ioThreads: Int? = nil
    public var metricsHost: String? = nil
    public var metricsPort: Int? = nil
    public var logLevel: String? = nil
    public var tokensFile: String? = nil
    /// `--demo`: the demo catalogue, demo tokens when none are configured, metrics on 9411.
    public var demo = false

    /// No flags.
    public init() {}
}

/// The configuration in force and where its tokens came from.
public struct ResolvedConfiguration: Sendable, Equatable {
    public var configuration: ServerConfiguration
    public var tokenOrigin: ServerConfiguration.TokenOrigin
}

/// One configuration story (docs/CONFIGURATION.md): defaults, then the file, then the flags; tokens
/// from `ATPD_TOKENS` or `tokensFile` rather than the file; `--demo` fills in what a first run needs.
public enum ConfigurationResolver {
    /// The metrics port `--demo` uses when none is configured.
    public static let demoMetricsPort = 9411

    /// Resolves the effective configuration. Throws `ConfigurationError` naming the key (or flag's
    /// key), the value and the reason for the first bad value.
    public static func resolve(_ options: ATPDOptions, environment: [String: String],
                               coreCount: Int = systemCoreCount()) throws(ConfigurationError) -> ResolvedConfiguration {
        var configuration = try options.configFile.map { path throws(ConfigurationError) in
            try ServerConfiguration(jsonFile: path)
        } ?? ServerConfiguration()
        if let host = options.host { configuration.host = host }
        if let port = options.port { configuration.port = port }
        if let shards = options.shardCount { configuration.ledger.shardCount = shards }
        if let ioThreads = options.ioThreads { configuration.ioThreads = ioThreads }
        if let workers = options.workerCount {
            configuration.ledger.workerCount = workers
        } else if options.configFile == nil {
            // Leave the I/O threads a core: on a 2-core machine, 1 worker + 1 event loop.
            configuration.ledger.workerCount = max(1, min(configuration.ledger.shardCount,
                                                          coreCount - configuration.ioThreads))
        }
        if let host = options.metricsHost { configuration.metricsHost = host }
        if let port = options.metricsPort { configuration.metricsPort = port }
        if options.demo && configuration.metricsPort == nil { configuration.metricsPort = demoMetricsPort }
        if let level = options.logLevel { configuration.logLevel = level }
        if let path = options.tokensFile { configuration.tokensFile = path }
        var origin = try configuration.loadTokens(environment: environment)
        if configuration.tokens.isEmpty && (options.demo || options.configFile == nil) {
            configuration.tokens = ServerConfiguration.demoTokens
            origin = .demo
        }
        try configuration.validate()
        return ResolvedConfiguration(configuration: configuration, tokenOrigin: origin)
    }
}
