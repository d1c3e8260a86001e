import ATPClient
import ATPProtocol
import NIOCore
import NIOPosix
import Testing

/// A request sent on a connection the server has already closed gets an error, never silence: the
/// handler is gone from a closed channel's pipeline, so the client answers it at the hand-over.
@Suite struct ClosedConnectionTests {
    /// Runs `body`, failing the test if it has not finished within `seconds` (a hang would otherwise
    /// block the suite).
    static func withinSeconds<T: Sendable>(_ seconds: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            guard let value = first else { throw ATPClientError.unexpectedReply("no answer within \(seconds) s") }
            return value
        }
    }

    @Test func connectingToAFullServerFailsInsteadOfHanging() async throws {
        let fixture = try ServerFixture { $0.limits.connectionsMax = 1 }
        let holder = try await fixture.connect()
        for _ in 0..<20 {
            let outcome: String = try await Self.withinSeconds(10) {
                do {
                    let connection = try await ATPConnection.connect(port: fixture.port, token: "demo-admin")
                    await connection.close()
                    return "connected"
                } catch let error as ATPClientError {
                    return "refused: \(error)"
                }
            }
            #expect(outcome.hasPrefix("refused"), "\(outcome)")
        }
        await holder.close()
    }

    @Test func aRequestAfterTheServerClosedGetsConnectionClosed() async throws {
        let fixture = try ServerFixture()
        let connection = try await fixture.connect()
        fixture.server.shutdown()
        // Wait until the client has seen the close (the shutdown notice, then end of stream).
        for _ in 0..<200 where connection.isActive { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!connection.isActive)
        let outcome: String = try await Self.withinSeconds(10) {
            do {
                _ = try await connection.ping()
                return "answered"
            } catch let error as ATPClientError {
                return "\(error)"
            }
        }
        #expect(outcome != "answered")
        await connection.close()
    }
}
