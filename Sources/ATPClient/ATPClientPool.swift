import ATPProtocol
import Atomics
import NIOCore
import NIOPosix

/// A small pool of connections used round-robin, so that many concurrent callers spread their
/// requests (each connection pipelines its own).
public final class ATPClientPool: Sendable {
    /// The pooled connections.
    public let connections: [ATPConnection]
    private let next = ManagedAtomic<Int>(0)

    /// Opens `size` connections. Throws `ATPClientError` when any fails.
    public static func connect(host: String = "127.0.0.1", port: Int, token: String, size: Int = 4,
                               group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ATPClientPool {
        precondition(size >= 1, "a pool needs at least one connection")
        var connections: [ATPConnection] = []
        for index in 0..<size {
            connections.append(try await ATPConnection.connect(host: host, port: port, token: token,
                                                               clientName: "atp-pool-\(index)", group: group))
        }
        return ATPClientPool(connections: connections)
    }

    init(connections: [ATPConnection]) {
        self.connections = connections
    }

    /// The next connection, round-robin.
    public func connection() -> ATPConnection {
        connections[next.loadThenWrappingIncrement(ordering: .relaxed) % connections.count]
    }

    /// Sends a request on the next connection and waits for the reply.
    public func request(_ request: Request) async throws -> Reply {
        try await connection().request(request)
    }

    /// Closes every connection.
    public func close() async {
        for connection in connections { await connection.close() }
    }
}
