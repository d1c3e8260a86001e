import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The operations listener: a small HTTP/1.1 server on its own port and thread, apart from the
/// protocol's event loops.
///
/// - `GET /metrics`: the Prometheus text format 0.0.4 (`ATPMetrics.scrape()`, run on a thread pool);
///   with a `bearerToken`, only for a request that carries `Authorization: Bearer <token>` (401
///   otherwise): the counters tell who reserves what, and the listener may face a network;
/// - `GET /healthz`: 200 while the process serves HTTP at all;
/// - `GET /readyz`: 200 when every `ReadinessChecks` condition holds, else 503 with the reasons;
/// - any other path: 404; a method other than GET or HEAD: 405.
///
/// Bounded: a connection may send at most `requestBytesMax` bytes (one request and its headers);
/// more is answered 413 and the connection closed. Every response closes its connection.
///
/// It can start before there is anything to measure (`init(host:port:readiness:)`): `/healthz` and
/// `/readyz` answer at once, so a recovery that takes minutes shows as "not ready" with its reason,
/// and `/metrics` answers 503 until `attach(_:)` gives it the server's metrics.
public final class MetricsHTTPServer: Sendable {
    /// Bytes a client may send on one connection.
    public static let requestBytesMax = 16 * 1024

    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let channel: Channel

    /// The bound address (port 0 picks a free one).
    public var localAddress: SocketAddress? { channel.localAddress }
    /// The bound port.
    public var port: Int? { channel.localAddress?.port }

    private let metrics: MetricsSlot

    /// Binds `host:port` and serves `metrics` (to holders of `bearerToken` when given). Throws when
    /// the address cannot be bound.
    public convenience init(host: String, port: Int, metrics: ATPMetrics, readiness: ReadinessChecks,
                            bearerToken: String? = nil) throws {
        try self.init(host: host, port: port, readiness: readiness, bearerToken: bearerToken)
        attach(metrics)
    }

    /// Binds `host:port` and serves health and readiness; `/metrics` answers 503 until `attach(_:)`,
    /// and with `bearerToken` only to requests that carry it. Throws when the address cannot be bound.
    public init(host: String, port: Int, readiness: ReadinessChecks, bearerToken: String? = nil) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        threadPool.start()
        let metrics = MetricsSlot()
        let routes = MetricsRoutes(metrics: metrics, readiness: readiness, threadPool: threadPool,
                                   bearerToken: bearerToken)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(RequestSizeLimiter(bytesMax: Self.requestBytesMax))
                    try sync.configureHTTPServerPipeline(withErrorHandling: true)
                    try sync.addHandler(MetricsHTTPHandler(routes: routes))
                }
            }
        do {
            channel = try bootstrap.bind(host: host, port: port).wait()
        } catch {
            try? threadPool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
        self.threadPool = threadPool
        self.metrics = metrics
    }

    /// Serves `metrics` at `/metrics` from now on. Any thread.
    public func attach(_ metrics: ATPMetrics) {
        self.metrics.value.withLock { $0 = metrics }
    }

    /// Stops listening and ends the listener's threads. Blocks; call once.
    public func shutdown() {
        try? channel.close().wait()
        try? threadPool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }
}

/// The metrics a listener serves, once there are some.
final class MetricsSlot: Sendable {
    let value = Mutex<ATPMetrics?>(nil)
}

/// What each path answers.
struct MetricsRoutes: Sendable {
    let metrics: MetricsSlot
    let readiness: ReadinessChecks
    let threadPool: NIOThreadPool
    /// The token `/metrics` requires, or nil (open, the default: the listener binds 127.0.0.1).
    let bearerToken: String?

    struct Response: Sendable {
        var status: HTTPResponseStatus
        var contentType: String
        var body: [UInt8]
        /// Headers beyond the content type, length and `Connection: close`.
        var headers: [(name: String, value: String)] = []

        static func text(_ status: HTTPResponseStatus, _ text: String) -> Response {
            Response(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
        }
    }

    /// Whether `authorization` (the request's `Authorization` header, if any) is `Bearer <token>`;
    /// compared in constant time. True when no token is configured.
    func authorizes(_ authorization: String?) -> Bool {
        guard let bearerToken else { return true }
        guard let authorization, authorization.hasPrefix("Bearer ") else { return false }
        let given = Array(authorization.utf8.dropFirst("Bearer ".utf8.count))
        let expected = Array(bearerToken.utf8)
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in 0..<expected.count { difference |= expected[index] ^ (index < given.count ? given[index] : 0) }
        return difference == 0
    }

    func respond(method: HTTPMethod, uri: String, authorization: String? = nil,
                 on eventLoop: EventLoop) -> EventLoopFuture<Response> {
        guard method == .GET || method == .HEAD else {
            return eventLoop.makeSucceededFuture(.text(.methodNotAllowed, "only GET and HEAD are served\n"))
        }
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        switch path {
        case "/metrics":
            guard authorizes(authorization) else {
                var refusal = Response.text(.unauthorized, "metrics need Authorization: Bearer <metricsToken>\n")
                refusal.headers = [("WWW-Authenticate", "Bearer realm=\"atpd metrics\"")]
                return eventLoop.makeSucceededFuture(refusal)
            }
            guard let metrics = self.metrics.value.withLock({ $0 }) else {
                return eventLoop.makeSucceededFuture(.text(.serviceUnavailable, "no metrics yet: atpd is starting\n"))
            }
            return threadPool.runIfActive(eventLoop: eventLoop) {
                Response(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: metrics.scrape())
            }
        case "/healthz":
            return eventLoop.makeSucceededFuture(.text(.ok, "ok\n"))
        case "/readyz":
            let report = readiness.check()
            if report.isReady { return eventLoop.makeSucceededFuture(.text(.ok, "ready\n")) }
            return eventLoop.makeSucceededFuture(
                .text(.serviceUnavailable, "not ready\n" + report.failures.map { $0 + "\n" }.joined()))
        default:
            return eventLoop.makeSucceededFuture(.text(.notFound, "not found: try /metrics, /healthz or /readyz\n"))
        }
    }
}

/// Answers one request per connection, then closes it.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: MetricsRoutes
    private var request: HTTPRequestHead? = nil
    private var answered = false

    init(routes: MetricsRoutes) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break  // bounded by RequestSizeLimiter; no route takes a body
        case .end:
            guard let head = request, !answered else { return }
            answered = true
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            routes.respond(method: head.method, uri: head.uri, authorization: head.headers.first(name: "Authorization"),
                           on: context.eventLoop).whenComplete { result in
                let (handler, context) = loopBound.value
                switch result {
                case .success(let response): handler.write(response, head: head, context: context)
                case .failure: handler.write(.text(.serviceUnavailable, "shutting down\n"), head: head, context: context)
                }
            }
        }
    }

    /// A request NIO could not parse has been answered 400 by NIO's error handler: close.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func write(_ response: MetricsRoutes.Response, head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: "\(response.body.count)")
        headers.add(name: "Connection", value: "close")
        for header in response.headers { headers.add(name: header.name, value: header.value) }
        let responseHead = HTTPResponseHead(version: head.version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                          promise: nil)
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in loopBound.value.close(promise: nil) }
    }
}

/// Closes a connection that sends more than `bytesMax` bytes, after a 413 answer: the listener never
/// holds more than that per connection, whatever a client sends.
final class RequestSizeLimiter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let bytesMax: Int
    private var received = 0
    private var refused = false

    init(bytesMax: Int) { self.bytesMax = bytesMax }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        received += unwrapInboundIn(data).readableBytes
        guard received <= bytesMax else {
            refused = true
            let body = "request larger than \(bytesMax) bytes\n"
            let response = "HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            // This handler is first in the pipeline: written from its context, the bytes go straight
            // to the socket, past the HTTP encoders. Then only the output is closed and the rest of
            // the request is read and dropped, so the client sees the answer rather than a reset;
            // the connection is closed for good a second later whatever the client does.
            let buffer = context.channel.allocator.buffer(string: response)
            context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in
                loopBound.value.close(mode: .output, promise: nil)
            }
            context.eventLoop.scheduleTask(in: .seconds(1)) { loopBound.value.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
    }
}
