import ATPLedger
import ATPProtocol
import Foundation

/// The configuration file: JSON, every key optional, unknown keys refused (a typo must not be
/// silently ignored). See docs/CONFIGURATION.md for every key, its default and its unit.
///
/// ```json
/// { "host": "0.0.0.0", "port": 7411, "ioThreads": 1,
///   "ledger": { "shardCount": 64, "workerCount": 2 },
///   "limits": { "frameBytesMax": 16777216, "inFlightRequestsMax": 1024 },
///   "tokens": [ { "name": "web-shop", "token": "…", "roles": ["query", "reserve"] } ] }
/// ```
extension ServerConfiguration {
    /// Keys of the configuration file that decide how atpd starts rather than configure the
    /// server; `ConfigurationResolver` puts them in `ResolvedConfiguration`.
    public struct StartKeys: Sendable, Equatable {
        /// `acceptJournalDamage` (`true` or `false`), nil when the file leaves it out.
        public var acceptJournalDamage: Bool? = nil
    }

    /// Reads a configuration file over the defaults. Throws `ConfigurationError` naming the key.
    public init(jsonFile path: String) throws(ConfigurationError) {
        self = try Self.read(jsonFile: path).configuration
    }

    /// Reads a configuration file over the defaults, and the start keys it gives. Throws
    /// `ConfigurationError` naming the key.
    public static func read(jsonFile path: String) throws(ConfigurationError) -> (configuration: ServerConfiguration,
                                                                                   startKeys: StartKeys) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(key: "(file)", value: path, reason: "cannot be read")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw ConfigurationError(key: "(file)", value: path, reason: "is not valid JSON: \(error.localizedDescription)")
        }
        guard let root = object as? [String: Any] else {
            throw ConfigurationError(key: "(file)", value: path, reason: "must hold a JSON object")
        }
        var configuration = ServerConfiguration()
        let startKeys = try configuration.apply(root)
        try configuration.validate()
        return (configuration, startKeys)
    }

    private mutating func apply(_ root: [String: Any]) throws(ConfigurationError) -> StartKeys {
        var reader = KeyReader(object: root, prefix: "")
        let startKeys = StartKeys(acceptJournalDamage: try reader.bool("acceptJournalDamage"))
        if let host = try reader.string("host") { self.host = host }
        if let port = try reader.int("port") { self.port = port }
        if let threads = try reader.int("ioThreads") { ioThreads = threads }
        if let perCore = try reader.bool("threadPerCore") { threadPerCore = perCore }
        if let base = try reader.int("corePortBase") { corePortBase = base }
        if let wait = try reader.int("inboxWaitMillisecondsMax") { inboxWaitMillisecondsMax = wait }
        if let mark = try reader.int("outboundBytesHighWaterMark") { outboundBytesHighWaterMark = mark }
        if let grace = try reader.int("shutdownGraceMilliseconds") { shutdownGraceMilliseconds = grace }
        if let host = try reader.string("metricsHost") { metricsHost = host }
        if let port = try reader.int("metricsPort") { metricsPort = port }
        if let token = try reader.string("metricsToken") { metricsToken = token }
        if let level = try reader.string("logLevel") { logLevel = level }
        if let path = try reader.string("tokensFile") { tokensFile = path }
        if let path = try reader.string("dataDirectory") { dataDirectory = path }
        if let mode = try reader.string("durability") { durability = mode }
        if let seconds = try reader.int("snapshotIntervalSeconds") { snapshotIntervalSeconds = seconds }
        if let kept = try reader.int("snapshotsKept") { snapshotsKept = kept }
        if var ledger = try reader.object("ledger") {
            if let v = try ledger.int("shardCount") { self.ledger.shardCount = v }
            if let v = try ledger.int("workerCount") {
                self.ledger.workerCount = v
            } else {
                // The default (the machine's cores) is documented as at most shardCount.
                self.ledger.workerCount = min(self.ledger.workerCount, self.ledger.shardCount)
            }
            if let v = try ledger.int("inboxCapacityRequests") { self.ledger.inboxCapacityRequests = v }
            if let v = try ledger.int("internalRingCapacityMessages") { self.ledger.internalRingCapacityMessages = v }
            if let v = try ledger.int("workerSpinIterations") { self.ledger.workerSpinIterations = v }
            if let v = try ledger.int("initialCellsPerShard") { self.ledger.initialCellsPerShard = v }
            if let v = try ledger.int("dedupWindowSequences") { self.ledger.dedupWindowSequences = v }
            if let v = try ledger.int("rejectionLogCapacity") { self.ledger.rejectionLogCapacity = v }
            if let v = try ledger.int("quantityMax") { self.ledger.quantityMax = Int64(v) }
            if let v = try ledger.int("reservationLinesMax") { self.ledger.reservationLinesMax = v }
            if let v = try ledger.int("reservationTTLMillisecondsMax") { self.ledger.reservationTTLMillisecondsMax = Int64(v) }
            if let v = try ledger.int("reservationOutcomeRetentionMilliseconds") {
                self.ledger.reservationOutcomeRetentionMilliseconds = Int64(v)
            }
            if let v = try ledger.int("reservationOutcomesRememberedMaxPerShard") {
                self.ledger.reservationOutcomesRememberedMaxPerShard = v
            }
            try ledger.refuseUnknownKeys()
        }
        if var limits = try reader.object("limits") {
            if let v = try limits.int("frameBytesMax") { self.limits.frameBytesMax = v }
            if let v = try limits.int("batchItemsMax") { self.limits.batchItemsMax = v }
            if let v = try limits.int("inFlightRequestsMax") { self.limits.inFlightRequestsMax = v }
            if let v = try limits.int("connectionsMax") { self.limits.connectionsMax = v }
            if let v = try limits.int("unauthenticatedConnectionsMax") { self.limits.unauthenticatedConnectionsMax = v }
            if let v = try limits.int("handshakeTimeoutMilliseconds") { self.limits.handshakeTimeoutMilliseconds = v }
            if let v = try limits.int("idleTimeoutMilliseconds") { self.limits.idleTimeoutMilliseconds = v }
            if let v = try limits.int("tokenBytesMax") { self.limits.tokenBytesMax = v }
            if let v = try limits.int("handshakeFrameBytesMax") { self.limits.handshakeFrameBytesMax = v }
            try limits.refuseUnknownKeys()
        }
        if let tokens = try reader.array("tokens") {
            self.tokens = []
            for (index, item) in tokens.enumerated() {
                guard let entry = item as? [String: Any] else {
                    throw ConfigurationError(key: "tokens[\(index)]", value: "\(item)", reason: "must be an object")
                }
                var token = KeyReader(object: entry, prefix: "tokens[\(index)].")
                guard let secret = try token.string("token") else {
                    throw ConfigurationError(key: "tokens[\(index)].token", value: "(missing)", reason: "is required")
                }
                let name = try token.string("name") ?? "token-\(index)"
                var roles: Roles = []
                for role in try token.array("roles") ?? [] {
                    switch role as? String {
                    case "query": roles.insert(.query)
                    case "reserve": roles.insert(.reserve)
                    case "ingest": roles.insert(.ingest)
                    case "admin": roles.insert(.admin)
                    default:
                        throw ConfigurationError(key: "tokens[\(index)].roles", value: "\(role)",
                                                 reason: "roles are query, reserve, ingest and admin")
                    }
                }
                try token.refuseUnknownKeys()
                self.tokens.append(TokenGrant(token: secret, roles: roles, name: name))
            }
        }
        try reader.refuseUnknownKeys()
        return startKeys
    }
}

/// Reads typed values from a JSON object, remembering which keys were used.
private struct KeyReader {
    let object: [String: Any]
    let prefix: String
    private var used: Set<String> = []

    init(object: [String: Any], prefix: String) {
        self.object = object
        self.prefix = prefix
    }

    mutating func int(_ key: String) throws(ConfigurationError) -> Int? {
        guard let value = object[key] else { return nil }
        used.insert(key)
        // JSON `true`/`false` are NSNumbers of type "c"; `value is Bool` cannot tell them apart:
        // on Linux it holds for the numbers 0 and 1 too.
        guard let number = value as? NSNumber, String(cString: number.objCType) != "c",
              number.doubleValue == Double(number.int64Value) else {
            throw ConfigurationError(key: prefix + key, value: "\(value)", reason: "must be a whole number")
        }
        return number.intValue
    }

    mutating func bool(_ key: String) throws(ConfigurationError) -> Bool? {
        guard let value = object[key] else { return nil }
        used.insert(key)
        // Only JSON `true`/`false` (NSNumbers of type "c"), not the numbers 0 and 1.
        guard let number = value as? NSNumber, String(cString: number.objCType) == "c" else {
            throw ConfigurationError(key: prefix + key, value: "\(value)", reason: "must be true or false")
        }
        return number.boolValue
    }

    mutating func string(_ key: String) throws(ConfigurationError) -> String? {
        guard let value = object[key] else { return nil }
        used.insert(key)
        guard let string = value as? String else {
            throw ConfigurationError(key: prefix + key, value: "\(value)", reason: "must be a string")
        }
        return string
    }

    mutating func array(_ key: String) throws(ConfigurationError) -> [Any]? {
        guard let value = object[key] else { return nil }
        used.insert(key)
        guard let array = value as? [Any] else {
            throw ConfigurationError(key: prefix + key, value: "\(value)", reason: "must be an array")
        }
        return array
    }

    mutating func object(_ key: String) throws(ConfigurationError) -> KeyReader? {
        guard let value = object[key] else { return nil }
        used.insert(key)
        guard let nested = value as? [String: Any] else {
            throw ConfigurationError(key: prefix + key, value: "\(value)", reason: "must be an object")
        }
        return KeyReader(object: nested, prefix: prefix + key + ".")
    }

    func refuseUnknownKeys() throws(ConfigurationError) {
        if let unknown = object.keys.sorted().first(where: { !used.contains($0) }) {
            throw ConfigurationError(key: prefix + unknown, value: "\(object[unknown]!)", reason: "is not a known key")
        }
    }
}
