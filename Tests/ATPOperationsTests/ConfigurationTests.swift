import ATPClient
import ATPLedger
import ATPOperations
import ATPProtocol
import ATPServer
import Foundation
import Testing

/// The configuration story: file, flags, environment; every bad value refused with its key.
@Suite struct ConfigurationTests {
    /// Writes `text` to a fresh temporary file and returns its path.
    static func file(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "atp-config-\(UUID().uuidString).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func refusal(file text: String, environment: [String: String] = [:]) throws -> ConfigurationError? {
        var options = ATPDOptions()
        options.configFile = try file(text)
        defer { try? FileManager.default.removeItem(atPath: options.configFile!) }
        do {
            _ = try ConfigurationResolver.resolve(options, environment: environment)
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [
        (#"{"port": 70000}"#, "port", "70000"),
        (#"{"port": "7411"}"#, "port", "7411"),
        (#"{"ioThreads": 0}"#, "ioThreads", "0"),
        (#"{"metricsPort": -1}"#, "metricsPort", "-1"),
        (#"{"port": 9000, "metricsPort": 9000}"#, "metricsPort", "9000"),
        (#"{"logLevel": "loud"}"#, "logLevel", "loud"),
        (#"{"inboxWaitMillisecondsMax": -5}"#, "inboxWaitMillisecondsMax", "-5"),
        (#"{"ledger": {"shardCount": 48}}"#, "ledger.shardCount", "48"),
        (#"{"ledger": {"workerCount": 4, "shardCount": 2}}"#, "ledger.workerCount", "4"),
        (#"{"ledger": {"dedupWindowSequences": 100}}"#, "ledger.dedupWindowSequences", "100"),
        (#"{"limits": {"frameBytesMax": 10}}"#, "limits.frameBytesMax", "10"),
        (#"{"limits": {"handshakeFrameBytesMax": 100}}"#, "limits.handshakeFrameBytesMax", "100"),
        (#"{"limits": {"framesMax": 1}}"#, "limits.framesMax", "1"),
        (#"{"metricPort": 9411}"#, "metricPort", "9411"),
        (#"{"tokens": [{"name": "a", "token": "t", "roles": ["root"]}]}"#, "tokens[0].roles", "root"),
        (#"{"tokens": [{"name": "a", "token": "t1", "roles": ["query"]}, {"name": "a", "token": "t2", "roles": ["query"]}]}"#,
         "tokens[a].name", "a"),
        (#"{"tokensFile": "/nonexistent/atp-tokens"}"#, "tokensFile", "/nonexistent/atp-tokens"),
    ])
    func aBadValueIsRefusedWithItsKeyAndValue(file: String, key: String, value: String) throws {
        let error = try #require(try Self.refusal(file: file))
        #expect(error.key == key)
        #expect(error.value == value)
        #expect(!error.reason.isEmpty)
        #expect(error.description.contains(key))
    }

    @Test(arguments: [
        (#"{"port": true}"#, "port"),
        (#"{"port": 7411.5}"#, "port"),
        (#"{"ledger": 5}"#, "ledger"),
        (#"{"tokens": [{"name": "a", "roles": ["query"]}]}"#, "tokens[0].token"),
        (#"{"ledger": {"inboxCapacityRequests": 1000}}"#, "ledger.inboxCapacityRequests"),
        (#"{"ledger": {"quantityMax": 0}}"#, "ledger.quantityMax"),
        (#"{"limits": {"connectionsMax": 0}}"#, "limits.connectionsMax"),
        (#"{"outboundBytesHighWaterMark": 100}"#, "outboundBytesHighWaterMark"),
        (#"{"shutdownGraceMilliseconds": -1}"#, "shutdownGraceMilliseconds"),
        (#"{"metricsHost": ""}"#, "metricsHost"),
        (#"{"acceptJournalDamage": 1}"#, "acceptJournalDamage"),
        (#"{"acceptJournalDamage": "yes"}"#, "acceptJournalDamage"),
        ("[1, 2]", "(file)"),
        ("{not json", "(file)"),
    ])
    func aBadValueOfAnyTypeIsRefusedWithItsKey(file: String, key: String) throws {
        let error = try #require(try Self.refusal(file: file))
        #expect(error.key == key)
        #expect(!error.reason.isEmpty)
    }

    /// 0 and 1 are numbers, not booleans (Foundation on Linux bridges them to `Bool` too), and a
    /// file that leaves `ledger.workerCount` out gets the same default as no file at all.
    @Test func zeroAndOneAreNumbersAndWorkersDefaultWithinTheShards() throws {
        var options = ATPDOptions()
        options.configFile = try Self.file(#"{"port": 0, "ioThreads": 1, "ledger": {"shardCount": 1}}"#)
        defer { try? FileManager.default.removeItem(atPath: options.configFile!) }
        let resolved = try ConfigurationResolver.resolve(options, environment: [:], coreCount: 8).configuration
        #expect(resolved.port == 0 && resolved.ioThreads == 1 && resolved.ledger.shardCount == 1)
        #expect(resolved.ledger.workerCount == 1)
        let alone = try ServerConfiguration(jsonFile: options.configFile!)
        #expect(alone.ledger.workerCount == 1)

        let wide = try Self.file(#"{"ledger": {"shardCount": 64}}"#)
        defer { try? FileManager.default.removeItem(atPath: wide) }
        options.configFile = wide
        #expect(try ConfigurationResolver.resolve(options, environment: [:], coreCount: 8)
            .configuration.ledger.workerCount == 7)  // the cores less the one I/O thread
        let explicit = try Self.file(#"{"ledger": {"workerCount": 8}}"#)
        defer { try? FileManager.default.removeItem(atPath: explicit) }
        options.configFile = explicit
        #expect(try ConfigurationResolver.resolve(options, environment: [:], coreCount: 2)
            .configuration.ledger.workerCount == 8)
    }

    @Test(arguments: [
        ("--port", "port", "70000"), ("--shards", "ledger.shardCount", "48"), ("--workers", "ledger.workerCount", "0"),
        ("--io-threads", "ioThreads", "0"), ("--metrics-port", "metricsPort", "-1"), ("--log-level", "logLevel", "loud"),
        ("--host", "host", ""), ("--metrics-host", "metricsHost", ""),
        ("--tokens-file", "tokensFile", "/nonexistent/atp-tokens"),
    ])
    func aBadFlagIsRefusedWithItsKeyValueAndFlag(flag: String, key: String, value: String) throws {
        var options = ATPDOptions()
        switch flag {
        case "--port": options.port = Int(value)
        case "--shards": options.shardCount = Int(value)
        case "--workers": options.workerCount = Int(value)
        case "--io-threads": options.ioThreads = Int(value)
        case "--metrics-port": options.metricsPort = Int(value)
        case "--log-level": options.logLevel = value
        case "--host": options.host = value
        case "--metrics-host": options.metricsHost = value
        default: options.tokensFile = value
        }
        do {
            _ = try ConfigurationResolver.resolve(options, environment: [:])
            Issue.record("\(flag) \(value) was accepted")
        } catch {
            #expect(error.key == key)
            #expect(error.value == value)
            #expect(error.reason.hasSuffix("(set by \(flag))"), "\(error.reason)")
        }
    }

    @Test func flagsOverrideTheFileAndAreCheckedToo() throws {
        var options = ATPDOptions()
        options.configFile = try Self.file(#"{"port": 7000, "metricsPort": 9500, "logLevel": "debug"}"#)
        defer { try? FileManager.default.removeItem(atPath: options.configFile!) }
        options.port = 7001
        options.logLevel = "warning"
        let resolved = try ConfigurationResolver.resolve(options, environment: [:])
        #expect(resolved.configuration.port == 7001)
        #expect(resolved.configuration.metricsPort == 9500)
        #expect(resolved.configuration.logLevel == "warning")
        #expect(resolved.configuration.describe().contains("metricsPort = 9500"))
        options.metricsPort = 65_536
        #expect(throws: ConfigurationError(key: "metricsPort", value: "65536", reason: "must be from 0 to 65535 (set by --metrics-port)")) {
            _ = try ConfigurationResolver.resolve(options, environment: [:])
        }
    }

    /// Accepting journal damage that loses records is off unless the flag or the file turns it on;
    /// `--print-config` shows it.
    @Test func acceptJournalDamageComesFromTheFlagOrTheFile() throws {
        let off = try ConfigurationResolver.resolve(ATPDOptions(), environment: [:])
        #expect(!off.acceptJournalDamage)
        #expect(off.describeStartKeys() == "acceptJournalDamage = false")
        var flag = ATPDOptions()
        flag.acceptJournalDamage = true
        #expect(try ConfigurationResolver.resolve(flag, environment: [:]).acceptJournalDamage)
        for (json, expected) in [(#"{"acceptJournalDamage": true}"#, true), (#"{"acceptJournalDamage": false}"#, false)] {
            var options = ATPDOptions()
            options.configFile = try Self.file(json)
            defer { try? FileManager.default.removeItem(atPath: options.configFile!) }
            let resolved = try ConfigurationResolver.resolve(options, environment: [:])
            #expect(resolved.acceptJournalDamage == expected, "\(json)")
            #expect(resolved.describeStartKeys() == "acceptJournalDamage = \(expected)")
            options.acceptJournalDamage = true
            #expect(try ConfigurationResolver.resolve(options, environment: [:]).acceptJournalDamage, "the flag turns it on")
        }
    }

    @Test func demoTurnsMetricsOnAtTheirPortUnlessConfigured() throws {
        var options = ATPDOptions()
        options.demo = true
        #expect(try ConfigurationResolver.resolve(options, environment: [:]).configuration.metricsPort == 9411)
        #expect(try ConfigurationResolver.resolve(ATPDOptions(), environment: [:]).configuration.metricsPort == nil)
        options.metricsPort = 0
        #expect(try ConfigurationResolver.resolve(options, environment: [:]).configuration.metricsPort == 0)
    }

    /// Without --demo, a start without any configuration accepts no token at all: the demo tokens
    /// are everyone's (issue 14 item 11); atpd then refuses to start (AtpdTokensTests).
    @Test func theDemoTokensOnlyWithDemo() throws {
        let bare = try ConfigurationResolver.resolve(ATPDOptions(), environment: [:])
        #expect(bare.configuration.tokens.isEmpty && bare.tokenOrigin == .none)
        var options = ATPDOptions()
        options.demo = true
        let demo = try ConfigurationResolver.resolve(options, environment: [:])
        #expect(demo.tokenOrigin == .demo && demo.configuration.tokens == ServerConfiguration.demoTokens)
        // Configured tokens win over --demo's.
        let configured = try ConfigurationResolver.resolve(options, environment: ["ATPD_TOKENS": "ops:admin:abc"])
        #expect(configured.tokenOrigin == .environment && configured.configuration.tokens.map(\.name) == ["ops"])
    }

    @Test func theMetricsTokenComesFromTheEnvironmentBeforeTheFileAndIsNeverPrinted() throws {
        var options = ATPDOptions()
        options.configFile = try Self.file(#"{"metricsToken": "from-file"}"#)
        defer { try? FileManager.default.removeItem(atPath: options.configFile!) }
        #expect(try ConfigurationResolver.resolve(options, environment: [:]).configuration.metricsToken == "from-file")
        let resolved = try ConfigurationResolver.resolve(options, environment: ["ATPD_METRICS_TOKEN": "from-env"])
        #expect(resolved.configuration.metricsToken == "from-env")
        let printed = resolved.configuration.describe()
        #expect(printed.contains("metricsToken = (hidden)") && !printed.contains("from-env"))
        #expect(try Self.refusal(file: #"{"metricsToken": "two words"}"#)?.key == "metricsToken")
    }

    @Test func tokensComeFromTheEnvironmentBeforeTheFile() throws {
        var options = ATPDOptions()
        options.configFile = try Self.file(#"{"tokens": [{"name": "inline", "token": "in-file", "roles": ["query"]}]}"#)
        defer { try? FileManager.default.removeItem(atPath: options.configFile!) }
        let inline = try ConfigurationResolver.resolve(options, environment: [:])
        #expect(inline.tokenOrigin == .configurationFile)
        #expect(inline.configuration.tokens.map(\.name) == ["inline"])

        let environment = ["ATPD_TOKENS": "web-shop:query+reserve:s3cr:et;loader:ingest:abc123  ops:admin:xyz"]
        let fromEnvironment = try ConfigurationResolver.resolve(options, environment: environment)
        #expect(fromEnvironment.tokenOrigin == .environment)
        #expect(fromEnvironment.configuration.tokens == [
            TokenGrant(token: "s3cr:et", roles: [.query, .reserve], name: "web-shop"),
            TokenGrant(token: "abc123", roles: .ingest, name: "loader"),
            TokenGrant(token: "xyz", roles: .admin, name: "ops"),
        ])
        // --print-config never shows a token.
        let printed = fromEnvironment.configuration.describe()
        #expect(!printed.contains("s3cr:et") && !printed.contains("abc123"))
        #expect(printed.contains("tokens[web-shop] = (hidden)"))
    }

    @Test func aTokensFileKeepsSecretsOutOfTheConfiguration() throws {
        let tokens = try Self.file("# ops tokens\nweb-shop:query:tok-1\n\n  loader:ingest+query:tok-2  \n")
        defer { try? FileManager.default.removeItem(atPath: tokens) }
        var options = ATPDOptions()
        options.tokensFile = tokens
        // Open to every user (the temporary file's 0644): refused, naming the mode and the fix.
        do {
            _ = try ConfigurationResolver.resolve(options, environment: [:])
            Issue.record("a world-readable tokens file was accepted")
        } catch {
            #expect(error.key == "tokensFile" && error.value == tokens)
            #expect(error.reason.contains("mode 644") && error.reason.contains("chmod 600"), "\(error.reason)")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: tokens)
        let resolved = try ConfigurationResolver.resolve(options, environment: [:])
        #expect(resolved.tokenOrigin == .tokensFile)
        #expect(resolved.configuration.tokens.map(\.name) == ["web-shop", "loader"])
        #expect(resolved.configuration.tokens[1].roles == [.ingest, .query])
    }

    @Test(arguments: [
        ("SECRETX", "ATPD_TOKENS entry 1"),
        ("a:query", "ATPD_TOKENS entry 1"),
        (":query:SECRETX", "ATPD_TOKENS entry 1"),
        ("a:query:ok b:superuser:SECRETX", "ATPD_TOKENS entry 2 (b) roles"),
        ("a:query:", "tokens[a]"),
        ("a:query:SECRETX b:ingest:SECRETX", "tokens"),
    ])
    func aBadTokenEntryIsRefusedWithoutShowingTheToken(entry: String, key: String) throws {
        do {
            _ = try ConfigurationResolver.resolve(ATPDOptions(), environment: ["ATPD_TOKENS": entry])
            Issue.record("\(entry) was accepted")
        } catch {
            #expect(error.key == key)
            #expect(!error.description.contains("SECRETX"))
        }
    }

    @Test func anEnvironmentTokenAuthenticatesAgainstARealServer() async throws {
        var resolved = try ConfigurationResolver.resolve(
            ATPDOptions(), environment: ["ATPD_TOKENS": "shop:query:env-secret-1"]).configuration
        resolved.port = 0
        resolved.ledger.workerCount = 1
        resolved.ledger.shardCount = 4
        let server = try ATPServer(configuration: resolved)
        try server.start()
        defer { server.shutdown() }
        let connection = try await ATPConnection.connect(port: server.port!, token: "env-secret-1")
        #expect(connection.hello.roles == .query)
        await connection.close()
        await #expect(throws: (any Error).self) {
            _ = try await ATPConnection.connect(port: server.port!, token: "demo-admin")
        }
    }
}
