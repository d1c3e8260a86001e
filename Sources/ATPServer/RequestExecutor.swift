import ATPLedger
import ATPProtocol
import NIOCore
import NIOPosix
import Synchronization

/// Appends one reply frame to the connection's outbound buffer; runs on the connection's event loop.
typealias ReplyWriter = @Sendable (inout ByteBuffer) -> Void

/// What `RequestExecutor.execute` did.
enum ExecuteOutcome {
    /// Started; `reply` will be called exactly once, on any thread.
    case started
    /// The engine's inbox is full: nothing happened; try again shortly.
    case inboxFull
}

/// Turns decoded requests into engine calls and their results into reply frames. Runs on an event
/// loop; names are resolved there (lock-free catalog lookups), replies are encoded there too (the
/// closure handed to `reply`), so shard workers only do ledger work. Blocking engine calls (channel
/// changes, statistics) go to a thread pool.
struct RequestExecutor: Sendable {
    let engine: Engine
    let configuration: ServerConfiguration
    let threadPool: NIOThreadPool
    /// Server-level statistics (connections, frames, process memory) added to the engine's in `stats`
    /// replies, given the request's prefix so that costly ones nobody asked for are not read.
    let statisticsExtra: @Sendable (_ prefix: String) -> [StatEntry]
    /// Takes a snapshot for `snapshotNow`; nil when the server runs in memory.
    let snapshot: SnapshotHook?
    /// The port of each core's own listener, once bound (the shard map of `hello`).
    var corePorts = CorePorts()
    /// The most cells one batch of a read's queries copies out of a core (`cellsMax`, computed once:
    /// reading `configuration` per request copies the whole struct).
    let queryCellsMax: Int

    init(engine: Engine, configuration: ServerConfiguration, threadPool: NIOThreadPool,
         statisticsExtra: @escaping @Sendable (_ prefix: String) -> [StatEntry], snapshot: SnapshotHook?) {
        self.engine = engine
        self.configuration = configuration
        self.threadPool = threadPool
        self.statisticsExtra = statisticsExtra
        self.snapshot = snapshot
        queryCellsMax = Self.cellsMax(frameBytesMax: configuration.limits.frameBytesMax,
                                      outboundBytesHighWaterMark: configuration.outboundBytesHighWaterMark)
    }

    /// Starts one authenticated request (not hello).
    func execute(_ request: Request, requestID: UInt32, opcode: Opcode, eventLoop: EventLoop,
                 reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) -> ExecuteOutcome {
        switch request {
        case .hello:
            reply(Self.error(.invalidRequest, "already authenticated", opcode: opcode, requestID: requestID))
            return .started
        case .ping(let ping):
            let pong = Reply.ping(PingReply(nonce: ping.nonce, serverTimeMilliseconds: engine.clock.nowMilliseconds()))
            reply { pong.encode(opcode: opcode, requestID: requestID, into: &$0) }
            return .started
        case .query(let query):
            let pending = PendingQuery(request: query, requestID: requestID, kind: QueryRequestKind(query))
            return executeQueries([pending]) { encoded in reply { $0.writeImmutableBuffer(encoded.bytes) } }
        case .reserve(let reserve):
            return executeReserve(reserve, requestID: requestID, opcode: opcode, reply: reply)
        case .commit(let id):
            return submitReservation(opcode: opcode, requestID: requestID, reply: reply) { engine.submitCommit(id, completion: $0) }
        case .release(let id):
            return submitReservation(opcode: opcode, requestID: requestID, reply: reply) { engine.submitRelease(id, completion: $0) }
        case .ingest(let ingest):
            return executeIngest(ingest, requestID: requestID, opcode: opcode, reply: reply)
        case .rejectionLogRead(let read):
            let page = rejectionLogReply(read)
            reply { Reply.rejectionLog(page).encode(opcode: opcode, requestID: requestID, into: &$0) }
            return .started
        case .channelSet(let definition):
            executeChannelSet(definition, requestID: requestID, opcode: opcode, eventLoop: eventLoop, reply: reply)
            return .started
        case .channelShow(let name):
            reply(channelShowReply(name, requestID: requestID, opcode: opcode))
            return .started
        case .channelRemove(let name):
            executeChannelRemove(name, requestID: requestID, opcode: opcode, eventLoop: eventLoop, reply: reply)
            return .started
        case .stats(let prefix):
            executeStats(prefix: prefix, requestID: requestID, opcode: opcode, eventLoop: eventLoop, reply: reply)
            return .started
        case .snapshotNow:
            executeSnapshotNow(requestID: requestID, opcode: opcode, eventLoop: eventLoop, reply: reply)
            return .started
        }
    }

    /// The answer to `hello`, and the roles granted (nil when the connection must close).
    /// `coreIndex` is the core that serves the connection (thread-per-core), for the shard map.
    func handshake(_ hello: HelloRequest, requestID: UInt32, coreIndex: Int?) -> (writer: ReplyWriter, roles: Roles?) {
        guard let version = ProtocolVersion.negotiate(clientMin: hello.versionMin, clientMax: hello.versionMax) else {
            let speaks = "\(ProtocolVersion.supported.lowerBound)...\(ProtocolVersion.supported.upperBound)"
            return (Self.error(.unsupportedVersion, "this server speaks protocol versions \(speaks)", opcode: .hello,
                               requestID: requestID), nil)
        }
        guard hello.token.count <= configuration.limits.tokenBytesMax,
              let grant = configuration.roles(forToken: hello.token) else {
            return (Self.error(.unauthenticated, "the token was refused", opcode: .hello, requestID: requestID), nil)
        }
        let limits = configuration.limits
        let answer = Reply.hello(HelloReply(
            version: version, roles: grant.roles, serverTimeMilliseconds: engine.clock.nowMilliseconds(),
            frameBytesMax: UInt32(limits.frameBytesMax), batchItemsMax: UInt32(limits.batchItemsMax),
            inFlightRequestsMax: UInt32(limits.inFlightRequestsMax),
            shardMap: version >= 2 ? shardMap(connectionCore: coreIndex) : nil))
        return ({ answer.encode(opcode: .hello, requestID: requestID, into: &$0) }, grant.roles)
    }

    /// The shard map of a `hello` reply (docs/PROTOCOL.md §7.1): the engine's placement, one owner
    /// per core with its own port when it has one, shard `s` owned by core `s mod cores`.
    func shardMap(connectionCore: Int?) -> ShardMap {
        let ledger = engine.configuration
        let ports = corePorts.ports
        let owners = (0..<ledger.workerCount).map { core in
            ShardMap.Owner(port: core < ports.count ? UInt16(ports[core]) : 0)
        }
        return ShardMap(placement: ledger.skuPlacement == .nameHash ? .nameHash : .serverOnly,
                        shardCount: ledger.shardCount, owners: owners,
                        shardOwners: (0..<ledger.shardCount).map { UInt16($0 % ledger.workerCount) },
                        connectionOwner: connectionCore)
    }

    /// A writer for an error reply.
    static func error(_ code: ErrorCode, _ message: String, opcode: Opcode, requestID: UInt32) -> ReplyWriter {
        let reply = Reply.error(ErrorReply(code: code, message: message))
        return { reply.encode(opcode: opcode, requestID: requestID, into: &$0) }
    }

    /// Runs a blocking engine call on the thread pool and replies from its result.
    func runBlocking(eventLoop: EventLoop, requestID: UInt32, opcode: Opcode,
                     reply: @escaping @Sendable (@escaping ReplyWriter) -> Void,
                     _ body: @escaping @Sendable () -> ReplyWriter) {
        threadPool.runIfActive(eventLoop: eventLoop, body).whenComplete { result in
            switch result {
            case .success(let writer): reply(writer)
            case .failure: reply(Self.error(.shuttingDown, "the server is shutting down", opcode: opcode, requestID: requestID))
            }
        }
    }
}

/// The port of each core's own listener (`ServerConfiguration.corePortBase`), set once they are
/// bound; empty before, and without ports per core. Shared by every copy of the executor.
final class CorePorts: Sendable {
    private let bound = Mutex<[Int]>([])

    /// The ports by core index (empty: none yet, or none configured).
    var ports: [Int] { bound.withLock { $0 } }

    /// Records the bound ports, by core index.
    func set(_ ports: [Int]) { bound.withLock { $0 = ports } }
}
