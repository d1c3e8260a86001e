import ATPProtocol
import Atomics
import NIOCore
import NIOPosix

/// A small pool of connections used round-robin, so that many concurrent callers spread their
/// requests (each connection pipelines its own). A connection the server closed (its idle timeout,
/// a restart, `shuttingDown`) is replaced on its next use, and `request(_:)` sends a request once
/// more on a new connection when its connection went away before the answer: every ATP request may
/// be sent twice (reserve, commit and release are idempotent by id; an ingest's events already
/// applied come back as duplicates; queries, channel changes and stats read or set the same state;
/// a second `snapshotNow` takes another snapshot).
public final class ATPClientPool: Sendable {
    private let slots: [Slot]
    private let next = ManagedAtomic<Int>(0)
    /// Connections opened to replace closed ones, since the pool was made (shared with the slots).
    private let reconnections: ManagedAtomic<Int>

    /// Opens `size` connections. Throws `ATPClientError` when any fails.
    public static func connect(host: String = "127.0.0.1", port: Int, token: String, size: Int = 4,
                               group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ATPClientPool {
        precondition(size >= 1, "a pool needs at least one connection")
        let reconnections = ManagedAtomic<Int>(0)
        var slots: [Slot] = []
        for index in 0..<size {
            let slot = Slot(host: host, port: port, token: token, clientName: "atp-pool-\(index)", group: group,
                            reconnections: reconnections)
            _ = try await slot.connected()
            slots.append(slot)
        }
        return ATPClientPool(slots: slots, reconnections: reconnections)
    }

    private init(slots: [Slot], reconnections: ManagedAtomic<Int>) {
        self.slots = slots
        self.reconnections = reconnections
    }

    /// The next connection, round-robin; a closed one is replaced first. Throws when a replacement
    /// cannot connect.
    public func connection() async throws -> ATPConnection {
        try await nextSlot().connected()
    }

    /// Sends a request on the next connection and waits for the reply; when that connection went away
    /// before the answer, sends it once more on its replacement (see the type's comment). The
    /// replacement is forced: a connection the server has just closed may not look closed yet.
    public func request(_ request: Request) async throws -> Reply {
        let slot = nextSlot()
        let connection = try await slot.connected()
        do {
            return try await connection.request(request)
        } catch let error as ATPClientError where error.isConnectionLoss {
            return try await slot.connected(replacing: connection).request(request)
        }
    }

    private func nextSlot() -> Slot {
        slots[next.loadThenWrappingIncrement(ordering: .relaxed) % slots.count]
    }

    /// Connections opened to replace ones the server closed.
    public var reconnectionCount: Int { reconnections.load(ordering: .relaxed) }

    /// Closes every connection.
    public func close() async {
        for slot in slots { await slot.close() }
    }

    /// One place in the pool: its connection, replaced when found closed. An actor, so that callers
    /// finding it closed at once open one replacement between them.
    private actor Slot {
        let host: String
        let port: Int
        let token: String
        let clientName: String
        let group: EventLoopGroup
        let reconnections: ManagedAtomic<Int>
        private var current: ATPConnection? = nil
        private var replacing: Task<ATPConnection, Error>? = nil
        private var closed = false

        init(host: String, port: Int, token: String, clientName: String, group: EventLoopGroup,
             reconnections: ManagedAtomic<Int>) {
            self.host = host
            self.port = port
            self.token = token
            self.clientName = clientName
            self.group = group
            self.reconnections = reconnections
        }

        /// The open connection, connecting first when there is none, it closed, or it is `failed`
        /// (a connection a request just lost; counted in `reconnections` when replaced).
        func connected(replacing failed: ATPConnection? = nil) async throws -> ATPConnection {
            if let current, current.isActive, current !== failed { return current }
            guard !closed else { throw ATPClientError.connectionClosed }
            if let replacing { return try await replacing.value }
            let (host, port, token, clientName, group) = (host, port, token, clientName, group)
            let task = Task {
                try await ATPConnection.connect(host: host, port: port, token: token, clientName: clientName, group: group)
            }
            replacing = task
            defer { replacing = nil }
            let connection = try await task.value
            if current != nil { reconnections.wrappingIncrement(ordering: .relaxed) }
            current = connection
            return connection
        }

        func close() async {
            closed = true
            await current?.close()
        }
    }
}

extension ATPClientError {
    /// The connection went away before the answer: closed by the peer, or closed with a notice that
    /// it will not serve more (`idleTimeout`, `shuttingDown`).
    var isConnectionLoss: Bool {
        switch self {
        case .connectionClosed: true
        case .server(let reply): reply.code == .idleTimeout || reply.code == .shuttingDown
        default: false
        }
    }
}
