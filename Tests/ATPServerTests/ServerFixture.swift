import ATPClient
import ATPLedger
import ATPProtocol
import ATPServer

/// A real atpd on a free loopback port with a manual clock, and helpers to talk to it.
final class ServerFixture: @unchecked Sendable {
    let server: ATPServer
    let port: Int

    init(configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.ledger.shardCount = 8
        configuration.ledger.workerCount = 2
        configuration.ledger.workerSpinIterations = 100
        configuration.tokens = ServerConfiguration.demoTokens
        configure(&configuration)
        let engine = try Engine(configuration: configuration.ledger, clock: .manual())
        server = try ATPServer(configuration: configuration, engine: engine)
        try server.start()
        port = server.port!
    }

    deinit { server.shutdown() }

    var engine: Engine { server.engine }

    func connect(token: String = "demo-admin") async throws -> ATPConnection {
        try await ATPConnection.connect(port: port, token: token)
    }
}
