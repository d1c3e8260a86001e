#if canImport(Glibc)
import Glibc
#endif
import ATPLedger
import ATPServer

/// The server the end-to-end suites run against: a real atpd on a free loopback port, 8 shards on 2
/// workers that spin briefly, the demo tokens, and a manual engine clock the tests move themselves.
public enum TestServer {
    /// Whether the suites run every server thread-per-core (`ATP_TEST_THREAD_PER_CORE=1`): the
    /// whole end-to-end suite once more over the inline request path.
    public static let threadPerCoreByDefault = getenv("ATP_TEST_THREAD_PER_CORE").map { String(cString: $0) == "1" } ?? false

    /// The configuration before `configure` adjusts it.
    public static func configuration() -> ServerConfiguration {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.ledger.shardCount = 8
        configuration.ledger.workerCount = 2
        configuration.ledger.workerSpinIterations = 100
        configuration.tokens = ServerConfiguration.demoTokens
        configuration.threadPerCore = threadPerCoreByDefault
        return configuration
    }

    /// Builds the server with `configure` applied, starts it, and returns it with its bound port.
    public static func start(configure: (inout ServerConfiguration) -> Void) throws -> (server: ATPServer, port: Int) {
        var configuration = configuration()
        configure(&configuration)
        let loops = configuration.threadPerCore ? ServerEventLoops(count: configuration.ledger.workerCount) : nil
        let engine = try Engine(configuration: configuration.ledger, clock: .manual(), hosts: loops?.coreHosts)
        let server = try ATPServer(configuration: configuration, engine: engine, eventLoops: loops)
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
