import ATPLedger
import ATPProtocol

/// A token a client presents in `hello`, and the roles it grants.
public struct TokenGrant: Sendable, Equatable {
    /// The secret, compared in constant time.
    public var token: String
    /// What the token may do.
    public var roles: Roles
    /// A name for logs (never the token itself).
    public var name: String

    public init(token: String, roles: Roles, name: String) {
        self.token = token
        self.roles = roles
        self.name = name
    }
}

/// Everything `atpd` is configured with. Defaults are documented per field; `validate()` refuses a
/// bad value naming its key.
public struct ServerConfiguration: Sendable, Equatable {
    /// Address to listen on. Default "127.0.0.1".
    public var host: String = "127.0.0.1"
    /// TCP port; 0 picks a free one (tests). Default 7411.
    public var port: Int = 7411
    /// Event-loop (I/O) threads. Default 1: on small machines the shard workers need the other cores.
    /// Ignored with `threadPerCore`, where there is one event loop per core.
    public var ioThreads: Int = 1
    /// Thread-per-core: the engine's cores run on the server's event loops (one per
    /// `ledger.workerCount`), and a request whose shards are on the connection's own core is
    /// executed where it is read, with no hand-off to another thread. Default false.
    public var threadPerCore: Bool = false
    /// With `threadPerCore`, core `k` also listens on port `corePortBase + k`: a connection there
    /// is served by that core, and the `hello` reply's shard map (protocol version 2) tells
    /// shard-aware clients which port owns which SKUs. 0 picks free ports (tests). Default nil (no
    /// port per core: every connection goes to the cores in turn and forwards what is not its own).
    public var corePortBase: Int? = nil
    /// The ledger's shards, workers and limits.
    public var ledger = LedgerConfiguration()
    /// Frame, batch, in-flight and connection limits.
    public var limits = ProtocolLimits()
    /// Tokens accepted in `hello`. Empty means no client can authenticate.
    public var tokens: [TokenGrant] = []
    /// How long a request may wait for room in a full shard inbox before the client gets
    /// `serverBusy`, in milliseconds. Default 2,000.
    public var inboxWaitMillisecondsMax: Int = 2000
    /// Bytes of replies queued on a connection before the server stops reading from it (a slow
    /// reader). Default 4 MiB.
    public var outboundBytesHighWaterMark: Int = 4 << 20
    /// How long a clean shutdown waits for in-flight requests, in milliseconds. Default 10,000.
    public var shutdownGraceMilliseconds: Int = 10_000
    /// Address of the metrics and health HTTP listener. Default "127.0.0.1".
    public var metricsHost: String = "127.0.0.1"
    /// TCP port of the metrics and health HTTP listener (`/metrics`, `/healthz`, `/readyz`); nil
    /// turns it off, 0 picks a free port. Default nil (off; `atpd --demo` uses 9411).
    public var metricsPort: Int? = nil
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <metricsToken>`
    /// (`/healthz` and `/readyz` stay open). The environment variable `ATPD_METRICS_TOKEN` wins over
    /// the file. Default nil (open: the listener binds 127.0.0.1 by default).
    public var metricsToken: String? = nil
    /// Lowest level logged: trace, debug, info, notice, warning, error or critical. Default "info".
    public var logLevel: String = "info"
    /// The levels `logLevel` accepts, lowest first (swift-log's).
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    /// A file holding the tokens (one `name:roles:token` a line; docs/CONFIGURATION.md), so that
    /// secrets stay out of the configuration file. Default nil.
    public var tokensFile: String? = nil
    /// The data directory (journal, snapshots; docs/DURABILITY.md); nil runs in memory. Default nil
    /// (`./atp-data` with `atpd --demo`).
    public var dataDirectory: String? = nil
    /// The journal's durability: `sync`, `none` or `interval:<ms>` (docs/DURABILITY.md says what
    /// each can lose). Default "sync".
    public var durability: String = "sync"
    /// Seconds between scheduled snapshots; 0 turns the schedule off. Default 300.
    public var snapshotIntervalSeconds: Int = 300
    /// Snapshots kept (older ones, and the journal segments only they needed, are deleted). Default 3.
    public var snapshotsKept: Int = 3

    public init() {}

    /// The tokens a first run uses when no configuration names any (printed at start):
    /// `demo-admin` (every role), `demo-query`, `demo-reserve` (reserve and query), `demo-ingest`.
    public static let demoTokens: [TokenGrant] = [
        TokenGrant(token: "demo-admin", roles: .all, name: "demo-admin"),
        TokenGrant(token: "demo-query", roles: .query, name: "demo-query"),
        TokenGrant(token: "demo-reserve", roles: [.reserve, .query], name: "demo-reserve"),
        TokenGrant(token: "demo-ingest", roles: .ingest, name: "demo-ingest"),
    ]

    /// Throws on the first value out of range.
    public func validate() throws(ConfigurationError) {
        if host.isEmpty { throw ConfigurationError(key: "host", value: host, reason: "must not be empty") }
        if port < 0 || port > 65_535 {
            throw ConfigurationError(key: "port", value: "\(port)", reason: "must be from 0 to 65535")
        }
        if ioThreads < 1 || ioThreads > 256 {
            throw ConfigurationError(key: "ioThreads", value: "\(ioThreads)", reason: "must be from 1 to 256")
        }
        if inboxWaitMillisecondsMax < 0 {
            throw ConfigurationError(key: "inboxWaitMillisecondsMax", value: "\(inboxWaitMillisecondsMax)",
                                     reason: "must be >= 0")
        }
        if outboundBytesHighWaterMark < 4096 {
            throw ConfigurationError(key: "outboundBytesHighWaterMark", value: "\(outboundBytesHighWaterMark)",
                                     reason: "must be >= 4096")
        }
        if shutdownGraceMilliseconds < 0 {
            throw ConfigurationError(key: "shutdownGraceMilliseconds", value: "\(shutdownGraceMilliseconds)",
                                     reason: "must be >= 0")
        }
        if metricsHost.isEmpty {
            throw ConfigurationError(key: "metricsHost", value: metricsHost, reason: "must not be empty")
        }
        if let corePortBase {
            guard threadPerCore else {
                throw ConfigurationError(key: "corePortBase", value: "\(corePortBase)",
                                         reason: "needs threadPerCore (a port per core serves that core's connections)")
            }
            let last = corePortBase + ledger.workerCount - 1
            if corePortBase < 0 || (corePortBase > 0 && last > 65_535) {
                throw ConfigurationError(key: "corePortBase", value: "\(corePortBase)",
                                         reason: "the ports \(corePortBase)...\(last) (one per core) must be from 1 to 65535, or 0")
            }
            if corePortBase > 0 && (corePortBase...last).contains(port) {
                throw ConfigurationError(key: "corePortBase", value: "\(corePortBase)",
                                         reason: "the ports \(corePortBase)...\(last) (one per core) must not include port \(port)")
            }
            if corePortBase > 0, let metricsPort, metricsHost == host, (corePortBase...last).contains(metricsPort) {
                throw ConfigurationError(key: "corePortBase", value: "\(corePortBase)",
                                         reason: "the ports \(corePortBase)...\(last) (one per core) must not include metricsPort \(metricsPort)")
            }
        }
        if let metricsPort {
            if metricsPort < 0 || metricsPort > 65_535 {
                throw ConfigurationError(key: "metricsPort", value: "\(metricsPort)", reason: "must be from 0 to 65535")
            }
            if metricsPort != 0 && metricsPort == port && metricsHost == host {
                throw ConfigurationError(key: "metricsPort", value: "\(metricsPort)",
                                         reason: "must differ from port (the protocol listener uses it)")
            }
        }
        if !Self.logLevels.contains(logLevel) {
            throw ConfigurationError(key: "logLevel", value: logLevel,
                                     reason: "must be one of \(Self.logLevels.joined(separator: ", "))")
        }
        if let metricsToken, metricsToken.isEmpty || metricsToken.contains(where: \.isWhitespace) {
            throw ConfigurationError(key: "metricsToken", value: "(hidden)", reason: "must be non-empty, without spaces")
        }
        if let tokensFile, tokensFile.isEmpty {
            throw ConfigurationError(key: "tokensFile", value: tokensFile, reason: "must not be empty")
        }
        try validateDurability()
        var names = Set<String>()
        for grant in tokens {
            if grant.token.isEmpty || grant.token.utf8.count > limits.tokenBytesMax {
                throw ConfigurationError(key: "tokens[\(grant.name)]", value: "(hidden)",
                                         reason: "a token is 1 to \(limits.tokenBytesMax) bytes")
            }
            if !names.insert(grant.name).inserted {
                throw ConfigurationError(key: "tokens[\(grant.name)].name", value: grant.name,
                                         reason: "two tokens have this name; names tell them apart in logs")
            }
        }
        if Set(tokens.map(\.token)).count != tokens.count {
            throw ConfigurationError(key: "tokens", value: "(hidden)",
                                     reason: "two entries have the same token; each token grants one set of roles")
        }
        // The ledger's and the limits' own checks name their keys without the section: add it, so
        // the key reads as it is written in the configuration file.
        do {
            try ledger.validate()
        } catch {
            throw ConfigurationError(key: "ledger." + error.key, value: error.value, reason: error.reason)
        }
        do {
            try limits.validate()
        } catch {
            throw ConfigurationError(key: "limits." + error.key, value: error.value, reason: error.reason)
        }
    }

    /// The roles `token` grants, or nil. Compares every configured token in constant time.
    func roles(forToken token: [UInt8]) -> (roles: Roles, name: String)? {
        var found: (Roles, String)? = nil
        for grant in tokens {
            let expected = Array(grant.token.utf8)
            var difference = UInt8(expected.count == token.count ? 0 : 1)
            for i in 0..<max(expected.count, token.count) {
                difference |= (i < expected.count ? expected[i] : 0) ^ (i < token.count ? token[i] : 0)
            }
            if difference == 0 { found = (grant.roles, grant.name) }
        }
        return found
    }
}

extension ServerConfiguration {
    /// The effective configuration as lines of `key = value` (tokens hidden), for `--print-config`.
    public func describe() -> String {
        var lines = [
            "host = \(host)", "port = \(port)", "ioThreads = \(ioThreads)", "threadPerCore = \(threadPerCore)",
            "corePortBase = \(corePortBase.map { "\($0)" } ?? "off")",
            "inboxWaitMillisecondsMax = \(inboxWaitMillisecondsMax)",
            "outboundBytesHighWaterMark = \(outboundBytesHighWaterMark)",
            "shutdownGraceMilliseconds = \(shutdownGraceMilliseconds)",
            "metricsHost = \(metricsHost)", "metricsPort = \(metricsPort.map { "\($0)" } ?? "off")",
            "metricsToken = \(metricsToken == nil ? "(none: /metrics is open)" : "(hidden)")",
            "logLevel = \(logLevel)", "tokensFile = \(tokensFile ?? "(none)")",
            "dataDirectory = \(dataDirectory ?? "(none: in memory)")", "durability = \(durability)",
            "snapshotIntervalSeconds = \(snapshotIntervalSeconds)", "snapshotsKept = \(snapshotsKept)",
            "ledger.shardCount = \(ledger.shardCount)", "ledger.workerCount = \(ledger.workerCount)",
            "ledger.inboxCapacityRequests = \(ledger.inboxCapacityRequests)",
            "ledger.internalRingCapacityMessages = \(ledger.internalRingCapacityMessages)",
            "ledger.workerSpinIterations = \(ledger.workerSpinIterations)",
            "ledger.initialCellsPerShard = \(ledger.initialCellsPerShard)",
            "ledger.dedupWindowSequences = \(ledger.dedupWindowSequences)",
            "ledger.rejectionLogCapacity = \(ledger.rejectionLogCapacity)",
            "ledger.quantityMax = \(ledger.quantityMax)",
            "ledger.reservationLinesMax = \(ledger.reservationLinesMax)",
            "ledger.reservationTTLMillisecondsMax = \(ledger.reservationTTLMillisecondsMax)",
            "ledger.reservationOutcomeRetentionMilliseconds = \(ledger.reservationOutcomeRetentionMilliseconds)",
            "ledger.reservationOutcomesRememberedMaxPerShard = \(ledger.reservationOutcomesRememberedMaxPerShard)",
            "limits.frameBytesMax = \(limits.frameBytesMax)", "limits.batchItemsMax = \(limits.batchItemsMax)",
            "limits.inFlightRequestsMax = \(limits.inFlightRequestsMax)",
            "limits.connectionsMax = \(limits.connectionsMax)", "limits.tokenBytesMax = \(limits.tokenBytesMax)",
            "limits.unauthenticatedConnectionsMax = \(limits.unauthenticatedConnectionsMax)",
            "limits.handshakeTimeoutMilliseconds = \(limits.handshakeTimeoutMilliseconds)",
            "limits.idleTimeoutMilliseconds = \(limits.idleTimeoutMilliseconds)",
            "limits.handshakeFrameBytesMax = \(limits.handshakeFrameBytesMax)",
        ]
        for grant in tokens { lines.append("tokens[\(grant.name)] = (hidden) roles \(grant.roles)") }
        return lines.joined(separator: "\n")
    }
}
