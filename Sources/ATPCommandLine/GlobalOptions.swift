import ArgumentParser

/// Options every command takes: where the server is, the token, the output form and the timeout.
/// They may stand before or after the subcommand (`atp --port 7411 ping` or `atp ping --port 7411`).
public struct GlobalOptions: ParsableArguments, Sendable {
    /// The default port: the same as atpd's (`ServerConfiguration.port`).
    public static let defaultPort = 7411
    /// The default host.
    public static let defaultHost = "127.0.0.1"
    /// The token used when neither `--token` nor `ATP_TOKEN` gives one: atpd's demo admin token,
    /// so that a first run against `atpd --demo` works.
    public static let defaultToken = "demo-admin"
    /// The default time to wait for the server, per request, in milliseconds.
    public static let defaultTimeoutMilliseconds = 10_000

    @Option(name: .long, help: "Server address (default $ATP_HOST, else 127.0.0.1).")
    var host: String?

    @Option(name: .long, help: "Server port (default $ATP_PORT, else 7411).")
    var port: Int?

    @Option(name: .long, help: "Access token (default $ATP_TOKEN, else demo-admin).")
    var token: String?

    @Flag(name: .long, help: "Print results as JSON on stdout (for scripts).")
    var json = false

    @Option(name: .customLong("timeout-ms"), help: "How long to wait for the server, per request, in milliseconds.")
    var timeoutMilliseconds: Int = GlobalOptions.defaultTimeoutMilliseconds

    /// Options with their defaults.
    public init() {}

    /// Checks the ranges ArgumentParser cannot.
    public func validate() throws {
        if let port, !(1...65_535).contains(port) { throw ValidationError("--port must be from 1 to 65535, got \(port)") }
        if timeoutMilliseconds < 1 { throw ValidationError("--timeout-ms must be at least 1, got \(timeoutMilliseconds)") }
        if let host, host.isEmpty { throw ValidationError("--host must not be empty") }
    }

    /// The effective settings: flags first, then the environment (`ATP_HOST`, `ATP_PORT`,
    /// `ATP_TOKEN`), then the defaults. Throws a usage error for an unusable `ATP_PORT`.
    public func settings(environment: [String: String]) throws(CommandLineError) -> ConnectionSettings {
        var resolvedPort = GlobalOptions.defaultPort
        if let port {
            resolvedPort = port
        } else if let text = environment["ATP_PORT"], !text.isEmpty {
            guard let value = Int(text), (1...65_535).contains(value) else {
                throw .usage("ATP_PORT must be a port number from 1 to 65535, got \(text.debugDescription)")
            }
            resolvedPort = value
        }
        let environmentHost = environment["ATP_HOST"].flatMap { $0.isEmpty ? nil : $0 }
        let environmentToken = environment["ATP_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return ConnectionSettings(host: host ?? environmentHost ?? GlobalOptions.defaultHost, port: resolvedPort,
                                  token: token ?? environmentToken ?? GlobalOptions.defaultToken,
                                  timeoutMilliseconds: timeoutMilliseconds, json: json)
    }
}

/// Where and how to reach the server, resolved from flags, environment and defaults.
public struct ConnectionSettings: Sendable, Equatable {
    /// Server address.
    public var host: String
    /// Server port.
    public var port: Int
    /// The token sent in `hello`.
    public var token: String
    /// How long to wait for the server, per request (and for connecting), in milliseconds.
    public var timeoutMilliseconds: Int
    /// Whether results are printed as JSON.
    public var json: Bool

    /// "host:port", for messages.
    public var endpoint: String { "\(host):\(port)" }
}
