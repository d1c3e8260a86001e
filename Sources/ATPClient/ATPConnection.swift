import ATPLedger
import ATPProtocol
import NIOCore
import NIOPosix

/// One authenticated connection to atpd. Requests may be pipelined: send many without waiting;
/// each completes when its reply arrives (replies may come back out of order).
///
/// Cost: an `async` request is a continuation plus one hop to the event loop; for the highest
/// rates use `send(_:completion:)` from the event loop (see `eventLoop`) and batch requests.
public final class ATPConnection: Sendable {
    /// The channel to the server.
    let channel: Channel
    /// What the server granted and its limits (from the `hello` reply).
    public let hello: HelloReply

    /// The event loop the connection's callbacks run on.
    public var eventLoop: EventLoop { channel.eventLoop }

    private init(channel: Channel, hello: HelloReply) {
        self.channel = channel
        self.hello = hello
    }

    /// Connects and runs the handshake. Throws `ATPClientError` (for example `.server` with
    /// `unauthenticated` for a refused token).
    public static func connect(host: String = "127.0.0.1", port: Int, token: String, clientName: String = "atp-client",
                               group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               frameBytesMax: Int = ProtocolLimits().frameBytesMax) async throws -> ATPConnection {
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ClientHandler(frameBytesMax: frameBytesMax))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw ATPClientError.connectFailed("\(host):\(port): \(error)")
        }
        let connection = ATPConnection(channel: channel, hello: HelloReply(roles: [], serverTimeMilliseconds: 0, limits: ProtocolLimits()))
        let reply = try await connection.request(Request.hello(HelloRequest(token: Array(token.utf8), clientName: clientName)))
        guard case .hello(let hello) = reply else {
            try? await channel.close()
            throw ATPClientError.unexpectedReply("\(reply) to hello")
        }
        return ATPConnection(channel: channel, hello: hello)
    }

    /// Sends a request; `completion` runs once on the connection's event loop.
    public func send(_ request: Request, completion: @escaping @Sendable (Result<Reply, ATPClientError>) -> Void) {
        channel.writeAndFlush(OutboundRequest(request: request, completion: completion),
                              promise: Self.handOver(completion, on: channel.eventLoop))
    }

    /// Sends several requests with one flush; each completion runs once on the event loop.
    public func send(_ requests: [(Request, @Sendable (Result<Reply, ATPClientError>) -> Void)]) {
        for (request, completion) in requests {
            channel.write(OutboundRequest(request: request, completion: completion),
                          promise: Self.handOver(completion, on: channel.eventLoop))
        }
        channel.flush()
    }

    /// The promise of a request's hand-over to the connection's handler. The handler succeeds it as
    /// soon as it owns the request (from then on it answers the completion, with an error if the
    /// connection fails). A channel that has closed no longer has the handler in its pipeline, so
    /// the write fails before reaching it: the completion then gets `.connectionClosed` here, instead
    /// of never running.
    private static func handOver(_ completion: @escaping @Sendable (Result<Reply, ATPClientError>) -> Void,
                                 on eventLoop: EventLoop) -> EventLoopPromise<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenFailure { _ in completion(.failure(.connectionClosed)) }
        return promise
    }

    /// Sends a request and waits for its reply. Throws `ATPClientError`.
    public func request(_ request: Request) async throws -> Reply {
        try await withCheckedThrowingContinuation { continuation in
            send(request) { continuation.resume(with: $0) }
        }
    }

    /// Closes the connection.
    public func close() async {
        try? await channel.close()
    }

    /// Whether the connection is open.
    public var isActive: Bool { channel.isActive }
}
