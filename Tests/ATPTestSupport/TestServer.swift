import ATPLedger
import ATPServer

/// The server the end-to-end suites run against: a real atpd on a free loopback port, 8 shards on 2
/// workers that spin briefly, the demo tokens, and a manual engine clock the tests move themselves.
public enum TestServer {
    /// The configuration before `configure` adjusts it.
    public static func configuration() -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.ledger.shardCount = 8
        configuration.ledger.workerCount = 2
        configuration.ledger.workerSpinIterations = 100
        configuration.tokens = ServerConfiguration.demoTokens
        return configuration
    }

    /// Builds the server with `configure` applied, starts it, and returns it with its bound port.
    public static func start(configure: (inout ServerConfiguration) -> Void) throws -> (server: ATPServer, port: Int) {
        var configuration = configuration()
        configure(&configuration)
        let engine = try Engine(configuration: configuration.ledger, clock: .manual())
        let server = try ATPServer(configuration: configuration, engine: engine)
        try server.start()
        guard let port = server.port else {
            server.shutdown()
            throw TestServerError.notListening
        }
        return (server, port)
    }
}

/// Why a test server could not be started.
public enum TestServerError: Error {
    /// `start()` returned but no port is bound.
    case notListening
}
