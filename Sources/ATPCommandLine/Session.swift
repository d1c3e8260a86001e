import ATPClient
import ATPProtocol

/// One connection to the server for the length of a command: every call is bounded by the
/// timeout, and every failure becomes a `CommandLineError` with the right exit status.
public final class Session: Sendable {
    /// The authenticated connection.
    public let connection: ATPConnection
    /// Where it goes and how long to wait.
    public let settings: ConnectionSettings

    private init(connection: ATPConnection, settings: ConnectionSettings) {
        self.connection = connection
        self.settings = settings
    }

    /// Connects and authenticates within the timeout. Throws `CommandLineError`: `connection` when
    /// the server cannot be reached or does not answer, `authentication` for a refused token.
    public static func open(_ settings: ConnectionSettings) async throws -> Session {
        do {
            let connection = try await Deadline.run(
                milliseconds: settings.timeoutMilliseconds, what: "connecting to \(settings.endpoint)",
                discardLate: { await $0.close() }
            ) {
                try await ATPConnection.connect(host: settings.host, port: settings.port, token: settings.token,
                                                clientName: "atp-cli")
            }
            return Session(connection: connection, settings: settings)
        } catch let error as ATPClientError {
            throw CommandLineError(error, endpoint: settings.endpoint)
        }
    }

    /// The server's limits and the roles granted, from the handshake.
    public var hello: HelloReply { connection.hello }

    /// Runs `body` against the connection within the timeout; a timeout closes the connection
    /// (nothing else can be trusted on it). Throws `CommandLineError` for every failure.
    public func call<Value: Sendable>(_ what: String,
                                      _ body: @escaping @Sendable (ATPConnection) async throws -> Value) async throws -> Value {
        let connection = self.connection
        do {
            return try await Deadline.run(milliseconds: settings.timeoutMilliseconds, what: what,
                                          onTimeout: { await connection.close() }) {
                try await body(connection)
            }
        } catch let error as ATPClientError {
            throw CommandLineError(error, endpoint: settings.endpoint)
        }
    }

    /// Closes the connection.
    public func close() async { await connection.close() }

    /// Opens a session with `settings`, runs `body`, and closes the session whatever happens.
    public static func with<Value>(_ settings: ConnectionSettings,
                                   _ body: (Session) async throws -> Value) async throws -> Value {
        let session = try await Session.open(settings)
        do {
            let value = try await body(session)
            await session.close()
            return value
        } catch {
            await session.close()
            throw error
        }
    }
}
