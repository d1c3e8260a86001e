import ATPClient
import ATPLedger
import ATPProtocol
import ATPServer
import ATPTestSupport
import Synchronization

/// A real atpd on a free loopback port with a manual clock, and helpers to talk to it.
final class ServerFixture: @unchecked Sendable {
    let server: ATPServer
    let port: Int

    init(configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        (server, port) = try TestServer.start(configure: configure)
    }

    deinit { server.shutdown() }

    var engine: Engine { server.engine }

    func connect(token: String = "demo-admin") async throws -> ATPConnection {
        try await ATPConnection.connect(port: port, token: token)
    }

    /// A connection whose client accepts frames up to `frameBytesMax` only (a client that takes the
    /// server's announced limit at its word).
    func connect(token: String = "demo-admin", frameBytesMax: Int) async throws -> ATPConnection {
        try await ATPConnection.connect(port: port, token: token, frameBytesMax: frameBytesMax)
    }

    /// A raw loopback connection, not authenticated.
    func raw(autoRead: Bool = true) async throws -> RawClient {
        try await RawClient.connect(port: port, autoRead: autoRead)
    }

    /// A raw loopback connection after a successful `hello` (request id 1).
    func rawAuthenticated(token: String = "demo-admin") async throws -> RawClient {
        let client = try await RawClient.connect(port: port)
        let reply = try await client.hello(token: token)
        guard case .hello = reply else {
            await client.close()
            throw ATPClientError.unexpectedReply("\(reply) to hello")
        }
        return client
    }
}

extension ATPConnection {
    /// Makes `locations` known to the server, as their first events would (a channel may only name
    /// known locations): a count of 0 of the SKU `LOCATIONS-SEED` at each, from the source
    /// `locations-seed` with sequences from `firstSequence`.
    func nameLocations(_ locations: [String], firstSequence: UInt64 = 1) async throws {
        let events = locations.enumerated().map { index, location in
            WireEvent(kind: .count, sku: "LOCATIONS-SEED", location: location, quantity: 0,
                      sequence: firstSequence + UInt64(index))
        }
        for start in stride(from: 0, to: events.count, by: 1_000) {
            let part = Array(events[start..<min(start + 1_000, events.count)])
            let reply = try await ingest(source: "locations-seed", events: part)
            guard reply.appliedCount == part.count else {
                throw ATPClientError.unexpectedReply("locations not named: \(reply.rejections)")
            }
        }
    }

    /// The value of one statistic (u64 and i64 alike), or nil when the server does not report it.
    func stat(_ name: String) async throws -> Int64? {
        for entry in try await stats(prefix: name) where entry.name == name {
            switch entry.value {
            case .unsigned(let value): return Int64(clamping: value)
            case .signed(let value): return value
            }
        }
        return nil
    }

    /// Every statistic as a dictionary.
    func statsByName(prefix: String = "") async throws -> [String: Int64] {
        var result: [String: Int64] = [:]
        for entry in try await stats(prefix: prefix) {
            switch entry.value {
            case .unsigned(let value): result[entry.name] = Int64(clamping: value)
            case .signed(let value): result[entry.name] = value
            }
        }
        return result
    }
}

/// Runs `body` until it returns true or `seconds` pass; returns its last answer.
func eventually(seconds: Double = 10, _ body: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await body() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await body()
}

extension ATPConnection {
    /// The server's `server.requests.inFlight` without the stats request that reads it (that one
    /// is in flight itself while the statistics are gathered).
    func requestsInFlightBesidesThisOne() async throws -> Int64 {
        guard let inFlight = try await stat("server.requests.inFlight") else {
            throw ATPClientError.unexpectedReply("stats without server.requests.inFlight")
        }
        return inFlight - 1
    }
}
