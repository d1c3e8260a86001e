import ATPClient
import ATPLedger
import ATPOperations
import ATPProtocol
import ATPServer
import ATPTestSupport
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real atpd on a free loopback port (manual clock) with its metrics and health listener on
/// another free port.
final class OperationsFixture: @unchecked Sendable {
    static let startMilliseconds: Int64 = 1_700_000_000_000

    let server: ATPServer
    let port: Int
    let readiness = ReadinessChecks()
    let metrics: ATPMetrics
    let listener: MetricsHTTPServer
    let metricsPort: Int

    init(configure: (inout ServerConfiguration) -> Void = { _ in }) throws {
        (server, port) = try TestServer.start(configure: configure)
        let server = self.server
        readiness.add("listening") { server.port == nil ? "the protocol port is not bound" : nil }
        metrics = ATPMetrics(server: server, readiness: readiness)
        listener = try MetricsHTTPServer(host: "127.0.0.1", port: 0, metrics: metrics, readiness: readiness)
        metricsPort = listener.port!
    }

    deinit {
        listener.shutdown()
        server.shutdown()
    }

    var engine: Engine { server.engine }

    func connect(token: String = "demo-admin") async throws -> ATPConnection {
        try await ATPConnection.connect(port: port, token: token)
    }

    /// GET `path` from the metrics listener.
    func get(_ path: String) throws -> HTTPAnswer {
        try HTTPAnswer.exchange(port: metricsPort, request: "GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n")
    }

    /// The current exposition, parsed.
    func scrape() throws -> Exposition {
        let answer = try get("/metrics")
        guard answer.status == 200 else { throw TestFailure("GET /metrics answered \(answer.status): \(answer.body)") }
        return Exposition(answer.body)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An HTTP exchange over a plain blocking loopback socket: sends `request`, reads until the server
/// closes (every response of the listener closes its connection).
struct HTTPAnswer: Sendable {
    var status: Int
    var headers: [String: String]
    var body: String

    static func exchange(port: Int, request: String) throws -> HTTPAnswer {
        let raw = try exchangeBytes(port: port, request: Array(request.utf8))
        guard let text = String(bytes: raw, encoding: .utf8), let split = text.range(of: "\r\n\r\n") else {
            throw TestFailure("no HTTP response head in \(raw.count) bytes")
        }
        let headLines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusParts = headLines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw TestFailure("bad status line \(headLines[0])")
        }
        var headers: [String: String] = [:]
        for line in headLines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HTTPAnswer(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    static func exchangeBytes(port: Int, request: [UInt8]) throws -> [UInt8] {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw TestFailure("socket() failed: errno \(errno)") }
        defer { close(socket) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw TestFailure("connect() to port \(port) failed: errno \(errno)") }
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may close early (an oversized request)
            sent += n
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += chunk[0..<n]
        }
        return received
    }
}

/// A Prometheus text exposition, parsed into samples ("name{labels}" → value) and types.
struct Exposition {
    var samples: [String: Double] = [:]
    var types: [String: String] = [:]
    let text: String

    init(_ text: String) {
        self.text = text
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                if parts.count == 4 { types[String(parts[2])] = String(parts[3]) }
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[Self.canonical(String(line[..<space]))] = value
        }
    }

    /// The value of a series: `name` with `labels` in any order; nil when absent.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples[Self.key(name, labels)]
    }

    /// The value or 0 (a series not yet created counts from 0).
    func count(_ name: String, _ labels: [String: String] = [:]) -> Double { value(name, labels) ?? 0 }

    static func key(_ name: String, _ labels: [String: String]) -> String {
        labels.isEmpty ? name : name + "{" + labels.keys.sorted().map { "\($0)=\"\(labels[$0]!)\"" }.joined(separator: ",") + "}"
    }

    /// "name{b="2",a="1"}" → "name{a="1",b="2"}".
    static func canonical(_ series: String) -> String {
        guard let open = series.firstIndex(of: "{"), series.hasSuffix("}") else { return series }
        let name = String(series[..<open])
        let inner = series[series.index(after: open)..<series.index(before: series.endIndex)]
        var labels: [String: String] = [:]
        for pair in inner.split(separator: ",") {
            guard let equals = pair.firstIndex(of: "=") else { continue }
            labels[String(pair[..<equals])] = String(pair[pair.index(after: equals)...]).trimmingCharacters(
                in: CharacterSet(charactersIn: "\""))
        }
        return key(name, labels)
    }
}
