import ATPLedger
import ATPProtocol
import NIOCore
import NIOPosix
import Synchronization

/// A client that keeps a connection to every core of a thread-per-core atpd and sends each request
/// to the core that owns its SKU (docs/PROTOCOL.md §7.1, "The shard map"), where the server runs it
/// during the read that receives it: no hand-off between cores. When the server gives no port per
/// core, or cannot tell a SKU's shard from its name, everything goes over the first connection,
/// which forwards as needed: the map is an optimisation, never a condition of correctness.
///
/// Routing: a query batch is split by owner, the parts sent at once and the answers put back in
/// the batch's order; a reservation goes to the owner of its first line's SKU; commit and release
/// go where that reservation was sent when this client made it, else to the first connection;
/// everything else (ingest, channels, statistics) goes to the first connection.
public final class ATPShardAwareClient: Sendable {
    /// The connection made first (to the port given); the map came with its `hello`.
    public let first: ATPConnection
    /// The shard map of `first`'s `hello` (`ShardMap.anywhere` from a version-1 server).
    public let map: ShardMap
    /// One connection per owner, by owner number; empty when not shard-aware.
    public let owners: [ATPConnection]
    /// Where each reservation this client made was sent (owner), for its commit and release.
    private let homes = ReservationHomes()

    /// Connects to `host:port`, reads the shard map and, when it names a port for every owner and
    /// places SKUs by name, connects to each owner too. Throws `ATPClientError`.
    public static func connect(host: String = "127.0.0.1", port: Int, token: String, clientName: String = "atp-shard-aware",
                               group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> ATPShardAwareClient {
        let first = try await ATPConnection.connect(host: host, port: port, token: token, clientName: clientName, group: group)
        let map = first.hello.shardMap ?? .anywhere
        var owners: [ATPConnection] = []
        if map.placement == .nameHash && map.owners.allSatisfy({ $0.port != 0 }) {
            do {
                for (index, owner) in map.owners.enumerated() {
                    if map.connectionOwner == index && owner.host.isEmpty {
                        owners.append(first)
                        continue
                    }
                    owners.append(try await ATPConnection.connect(host: owner.host.isEmpty ? host : owner.host,
                                                                  port: Int(owner.port), token: token,
                                                                  clientName: "\(clientName)-\(index)", group: group))
                }
            } catch {
                for connection in owners where connection !== first { await connection.close() }
                await first.close()
                throw error
            }
        }
        return ATPShardAwareClient(first: first, map: map, owners: owners)
    }

    private init(first: ATPConnection, map: ShardMap, owners: [ATPConnection]) {
        self.first = first
        self.map = map
        self.owners = owners
    }

    /// Whether requests go to their SKU's owner (else all go to `first`).
    public var isShardAware: Bool { !owners.isEmpty }

    /// The owner of the SKU named `sku`, or nil when not shard-aware.
    public func owner(ofSKU sku: String) -> Int? { isShardAware ? map.owner(ofSKUNamed: sku) : nil }

    /// The connection to the owner of the SKU named `sku` (`first` when not shard-aware).
    public func connection(forSKU sku: String) -> ATPConnection { owner(ofSKU: sku).map { owners[$0] } ?? first }

    /// Answers a batch of availability queries, each part on its SKUs' owner, answers in the
    /// batch's order (with the cells behind each answer when `includeCells`).
    public func query(_ queries: [WireQuery], includeCells: Bool = false) async throws -> QueryReply {
        guard isShardAware, !queries.isEmpty else { return try await first.query(queries, includeCells: includeCells) }
        var indicesByOwner: [Int: [Int]] = [:]
        for (index, query) in queries.enumerated() {
            indicesByOwner[owner(ofSKU: Self.sku(of: query)) ?? 0, default: []].append(index)
        }
        if indicesByOwner.count == 1, let (owner, _) = indicesByOwner.first {
            return try await owners[owner].query(queries, includeCells: includeCells)
        }
        var answers = [WireQueryAnswer?](repeating: nil, count: queries.count)
        var options: QueryOptions = []
        try await withThrowingTaskGroup(of: ([Int], QueryReply).self) { group in
            for (owner, indices) in indicesByOwner {
                let connection = owners[owner]
                let part = indices.map { queries[$0] }
                group.addTask { (indices, try await connection.query(part, includeCells: includeCells)) }
            }
            for try await (indices, reply) in group {
                guard reply.answers.count == indices.count else {
                    throw ATPClientError.unexpectedReply("\(reply.answers.count) answers to \(indices.count) queries")
                }
                options = reply.options
                for (position, index) in indices.enumerated() { answers[index] = reply.answers[position] }
            }
        }
        return QueryReply(options: options, answers: answers.map { $0! })
    }

    /// Reserves units on the owner of the first line's SKU; idempotent by id.
    public func reserve(_ request: WireReserveRequest) async throws -> WireReservationReply {
        guard isShardAware, let line = request.lines.first, let owner = owner(ofSKU: line.sku) else {
            return try await first.reserve(request)
        }
        homes.set(request.id, owner: owner)
        return try await owners[owner].reserve(request)
    }

    /// Commits a reservation, on the connection its reserve went to when this client made it.
    public func commit(_ id: ReservationID) async throws -> WireReservationReply {
        try await connection(forReservation: id).commit(id)
    }

    /// Releases a reservation, on the connection its reserve went to when this client made it.
    public func release(_ id: ReservationID) async throws -> WireReservationReply {
        let reply = try await connection(forReservation: id).release(id)
        homes.remove(id)
        return reply
    }

    /// Closes every connection.
    public func close() async {
        for connection in owners where connection !== first { await connection.close() }
        await first.close()
    }

    private func connection(forReservation id: ReservationID) -> ATPConnection {
        homes.owner(of: id).map { owners[$0] } ?? first
    }

    private static func sku(of query: WireQuery) -> String {
        switch query {
        case .cell(let sku, _), .sku(let sku), .channel(let sku, _): sku
        }
    }
}

/// The owner each reservation of this client was sent to (at most `capacity` remembered; the
/// oldest is forgotten first, and a forgotten one's commit or release goes to the first connection,
/// which forwards it).
final class ReservationHomes: Sendable {
    private struct State {
        var owners: [ReservationID: Int] = [:]
        var order: [ReservationID] = []
        var start = 0
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 65_536) {
        precondition(capacity >= 1)
        self.capacity = capacity
    }

    /// Entries kept for ordering (tests: bounded by twice the capacity).
    var orderCount: Int { state.withLock { $0.order.count - $0.start } }

    func set(_ id: ReservationID, owner: Int) {
        state.withLock { state in
            if state.owners.updateValue(owner, forKey: id) == nil { state.order.append(id) }
            while state.owners.count > capacity, state.start < state.order.count {
                state.owners[state.order[state.start]] = nil
                state.start += 1
            }
            // Released ids leave `owners` but stay in `order`: compact it before it outgrows twice
            // the capacity, so a client that reserves and releases forever holds bounded memory.
            if state.order.count - state.start > 2 * capacity || state.start > capacity {
                state.order = state.order[state.start...].filter { state.owners[$0] != nil }
                state.start = 0
            }
        }
    }

    func owner(of id: ReservationID) -> Int? { state.withLock { $0.owners[id] } }

    func remove(_ id: ReservationID) { state.withLock { _ = $0.owners.removeValue(forKey: id) } }
}
