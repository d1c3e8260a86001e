import ATPLedger
import ATPProtocol
import NIOCore
import NIOPosix
import Synchronization

/// The ATP server: the ledger behind the binary protocol on TCP (docs/PROTOCOL.md).
///
/// Threads: `ioThreads` SwiftNIO event loops decode frames, resolve names and encode replies; the
/// engine's worker threads own the shards; a small thread pool runs the rare blocking calls
/// (channel changes, statistics). Requests reach workers through lock-free inboxes. With
/// `threadPerCore` the event loops are the engine's cores (`ServerEventLoops`): a request for the
/// connection's own core runs where it is read, others travel to their core's inbox.
public final class ATPServer: Sendable {
    /// The ledger this server serves.
    public let engine: Engine
    /// The configuration in force.
    public let configuration: ServerConfiguration
    private let group: MultiThreadedEventLoopGroup
    /// The loops that host the engine's cores (thread-per-core), or nil.
    private let eventLoops: ServerEventLoops?
    private let threadPool: NIOThreadPool
    private let counters: ServerCounters
    /// Per-request counters recorded on the event loops (frames sent by outcome, query latency).
    public let requestMetrics: RequestMetrics
    private let connections = ConnectionRegistry()
    private let serverChannel = Mutex<Channel?>(nil)
    /// The listeners of the cores' own ports (`corePortBase`), by core.
    private let coreChannels = Mutex<[Channel]>([])
    private let stopped = Mutex(false)
    private let snapshot: SnapshotHook?

    /// Creates the server and its engine (or serves `engine` when given). `snapshot` takes a
    /// snapshot for `snapshotNow` (a durable ledger's); without it `snapshotNow` is answered
    /// `notImplemented`. With `threadPerCore`, a given `engine` must run on `eventLoops`' hosts
    /// (made first, `ServerEventLoops(count:)`); without one both are made here. Throws on a bad
    /// configuration.
    public init(configuration: ServerConfiguration, engine: Engine? = nil, eventLoops: ServerEventLoops? = nil,
                snapshot: SnapshotHook? = nil) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.snapshot = snapshot
        counters = ServerCounters(handshakeBudget: configuration.limits.unauthenticatedConnectionsMax)
        if configuration.threadPerCore {
            let loops = eventLoops ?? ServerEventLoops(count: configuration.ledger.workerCount)
            guard loops.count == configuration.ledger.workerCount else {
                throw ConfigurationError(key: "ledger.workerCount", value: "\(configuration.ledger.workerCount)",
                                         reason: "thread-per-core needs one event loop per core; \(loops.count) were made")
            }
            if let engine {
                guard engine.isHosted, engine.configuration.workerCount == loops.count else {
                    throw ConfigurationError(key: "threadPerCore", value: "true",
                                             reason: "the engine given does not run on the server's event loops")
                }
                self.engine = engine
            } else {
                self.engine = try Engine(configuration: configuration.ledger, hosts: loops.coreHosts)
            }
            self.eventLoops = loops
            group = loops.group
        } else {
            if let engine { self.engine = engine } else { self.engine = try Engine(configuration: configuration.ledger) }
            self.eventLoops = nil
            group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.ioThreads)
        }
        requestMetrics = RequestMetrics(group: group)
        threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
    }

    /// Binds the listening socket and starts accepting. Returns the bound address (port 0 picks one).
    @discardableResult
    public func start() throws -> SocketAddress {
        let requestMetrics = self.requestMetrics
        let executor = RequestExecutor(engine: engine, configuration: configuration, threadPool: threadPool,
                                       statisticsExtra: { [counters, requestMetrics] prefix in
                                           counters.entries() + requestMetrics.snapshot().statEntries()
                                               + (ProcessMemory.statisticsMayMatch(prefix)
                                                   ? ProcessMemory.read().statEntries() : []) },
                                       snapshot: snapshot)
        let counters = self.counters
        let registry = self.connections
        let highWater = configuration.outboundBytesHighWaterMark
        let eventLoops = self.eventLoops
        func bootstrap(childGroup: any EventLoopGroup) -> ServerBootstrap {
            ServerBootstrap(group: group, childGroup: childGroup)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: .init(low: highWater / 2, high: highWater))
                .childChannelOption(.maxMessagesPerRead, value: 16)
                // A client that shuts down its sending side after its last request still gets every
                // reply: the handler closes once they are written (`ChannelEvent.inputClosed`).
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    registry.add(channel)
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ConnectionHandler(
                            executor: executor, counters: counters, coreIndex: eventLoops?.coreIndex(of: channel.eventLoop),
                            metrics: requestMetrics.recorder(for: channel.eventLoop),
                            onClose: { registry.remove($0) }))
                    }
                }
        }
        let channel = try bootstrap(childGroup: group).bind(host: configuration.host, port: configuration.port).wait()
        serverChannel.withLock { $0 = channel }
        if let eventLoops, let base = configuration.corePortBase {
            // Core k's own port: its connections are served by core k's loop (the child group).
            var channels: [Channel] = []
            do {
                for core in 0..<eventLoops.count {
                    let loop = eventLoops.loop(ofCore: core)
                    channels.append(try bootstrap(childGroup: loop)
                        .bind(host: configuration.host, port: base == 0 ? 0 : base + core).wait())
                }
            } catch {
                for opened in channels { try? opened.close().wait() }
                try? channel.close().wait()
                serverChannel.withLock { $0 = nil }
                throw error
            }
            coreChannels.withLock { $0 = channels }
            executor.corePorts.set(channels.map { $0.localAddress?.port ?? 0 })
        }
        return channel.localAddress!
    }

    /// The ports of the cores' own listeners, by core (after `start`; empty without `corePortBase`).
    public var corePorts: [Int] { coreChannels.withLock { $0.compactMap { $0.localAddress?.port } } }

    /// Runs `body` on each of the server's event loops in turn and returns what each returned, in
    /// loop order (diagnostics and tests: per-thread counters). Blocks; not on an event loop.
    package func onEveryEventLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) -> [T] {
        var results: [T] = []
        var iterator = group.makeIterator()
        while let loop = iterator.next() {
            if let value = try? loop.submit(body).wait() { results.append(value) }
        }
        return results
    }

    /// The port the server listens on (after `start`).
    public var port: Int? { serverChannel.withLock { $0?.localAddress?.port } }

    /// The server's own counters (connections, frames, in-flight requests, buffered bytes) as the
    /// `server.*` statistics of docs/PROTOCOL.md §7.11. Lock-free; any thread.
    public func serverStatistics() -> [StatEntry] { counters.entries() }

    /// Stops accepting, lets every connection finish what is in flight (up to
    /// `shutdownGraceMilliseconds`), says `shuttingDown` and closes; runs `beforeStoppingEngine`
    /// (a durable server's final snapshot); then stops the engine. Blocks; idempotent.
    public func shutdown(beforeStoppingEngine: () -> Void = {}) {
        let first = stopped.withLock { stopped -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        if let channel = serverChannel.withLock({ $0 }) { try? channel.close().wait() }
        for channel in coreChannels.withLock({ $0 }) { try? channel.close().wait() }
        for channel in connections.all {
            channel.pipeline.fireUserInboundEventTriggered(ServerShutdownEvent())
        }
        let deadline = NIODeadline.now() + .milliseconds(Int64(configuration.shutdownGraceMilliseconds))
        while !connections.all.isEmpty && NIODeadline.now() < deadline {
            usleep(5000)
        }
        for channel in connections.all { channel.close(promise: nil) }
        beforeStoppingEngine()
        engine.shutdown()
        try? threadPool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }
}

/// The open connections, so that shutdown can reach each one.
final class ConnectionRegistry: Sendable {
    private let channels = Mutex<[ObjectIdentifier: Channel]>([:])

    func add(_ channel: Channel) { channels.withLock { $0[ObjectIdentifier(channel)] = channel } }
    func remove(_ id: ObjectIdentifier) { channels.withLock { _ = $0.removeValue(forKey: id) } }
    var all: [Channel] { channels.withLock { Array($0.values) } }
}

#if canImport(Glibc)
import Glibc
#endif
