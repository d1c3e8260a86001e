import ATPClient
import ATPLedger
import ATPProtocol
import Dispatch
import Foundation
import Histogram
import NIOCore
import NIOPosix

// atp-load: measures atpd over loopback with the project's client library. Scenarios:
//   rtt        one connection, one request at a time (unpipelined single-cell query round trips)
//   pipelined  single-cell queries, `--depth` in flight on each of `--connections`
//   batch      query frames of `--batch` cells, `--depth` frames in flight per connection
//   ingest     event frames of `--batch` events (fresh sequences), `--depth` in flight
// Requests are sent from the event loop as replies complete (a closed loop), so the client adds
// one callback per reply and one flush per read. Targets the demo catalogue (atpd --demo).
//
//   atp-load --port 7411 --scenario pipelined --depth 64 --connections 4 --seconds 5

struct Options {
    var host = "127.0.0.1"
    var port = 7411
    var token = "demo-admin"
    var scenario = "rtt"
    var seconds = 5.0
    var depth = 1
    var connections = 1
    var batch = 1000
    var json = false

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            let value = iterator.next() ?? ""
            switch flag {
            case "--host": host = value
            case "--port": port = Int(value) ?? port
            case "--token": token = value
            case "--scenario": scenario = value
            case "--seconds": seconds = Double(value) ?? seconds
            case "--depth": depth = max(1, Int(value) ?? depth)
            case "--connections": connections = max(1, Int(value) ?? connections)
            case "--batch": batch = max(1, Int(value) ?? batch)
            case "--json": json = value == "true" || value == "1"
            default:
                FileHandle.standardError.write("unknown option \(flag)\n".data(using: .utf8)!)
                exit(2)
            }
        }
    }
}

/// Builds the requests of a scenario; `next()` is called on an event loop.
final class RequestSource: @unchecked Sendable {
    let options: Options
    /// A fast deterministic generator: SystemRandomNumberGenerator costs a getrandom(2) system call
    /// per draw, which showed up at ~6% of a 2-core machine under ingest load (perf).
    private var random = SplitMix64(seed: 0x5EED)
    private let skus = (1...5000).map { "SKU-" + String(repeating: "0", count: 5 - String($0).count) + String($0) }
    private let locations = ["DC-EAST", "DC-WEST"] + (1...20).map { "STORE-" + String(repeating: "0", count: 3 - String($0).count) + String($0) }
    private var cellQueries: [Request] = []
    private var batchQueries: [Request] = []
    private var sequence: UInt64
    let itemsPerRequest: Int
    private let lock = NSLock()

    init(options: Options) {
        self.options = options
        sequence = UInt64(Date().timeIntervalSince1970 * 1000) * 1_000_000
        itemsPerRequest = (options.scenario == "batch" || options.scenario == "ingest") ? options.batch : 1
        for _ in 0..<4096 {
            cellQueries.append(.query(QueryRequest(queries: [.cell(sku: randomSKU(), location: randomLocation())])))
        }
        if options.scenario == "batch" {
            for _ in 0..<64 {
                batchQueries.append(.query(QueryRequest(queries: (0..<options.batch).map { _ in
                    WireQuery.cell(sku: randomSKU(), location: randomLocation())
                })))
            }
        }
    }

    func randomSKU() -> String { skus[Int.random(in: 0..<skus.count, using: &random)] }
    func randomLocation() -> String { locations[Int.random(in: 0..<locations.count, using: &random)] }

    private var counter = 0
    func next() -> Request {
        lock.lock()
        defer { lock.unlock() }
        counter &+= 1
        switch options.scenario {
        case "batch": return batchQueries[counter % batchQueries.count]
        case "ingest":
            let events = (0..<options.batch).map { index -> WireEvent in
                sequence += 1
                return WireEvent(kind: index % 2 == 0 ? .receive : .ship, sku: randomSKU(), location: randomLocation(),
                                 quantity: 1, sequence: sequence)
            }
            return .ingest(IngestRequest(source: "atp-load", events: events))
        default: return cellQueries[counter % cellQueries.count]
        }
    }
}

/// One connection's closed loop and its latency histogram.
final class LoopDriver: @unchecked Sendable {
    let connection: ATPConnection
    let source: RequestSource
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var completed = 0
    var errors = 0
    var measuring = false
    var stopping = false
    var outstanding = 0
    let done: DispatchSemaphore

    init(connection: ATPConnection, source: RequestSource, done: DispatchSemaphore) {
        self.connection = connection
        self.source = source
        self.done = done
    }

    /// Starts `depth` requests; must run on the connection's event loop.
    func start(depth: Int) {
        for _ in 0..<depth { issue() }
    }

    private func issue() {
        let request = source.next()
        let sent = DispatchTime.now().uptimeNanoseconds
        outstanding += 1
        connection.send(request) { [self] result in
            outstanding -= 1
            if measuring {
                if case .failure = result { errors += 1 }
                if case .success(.error) = result { errors += 1 }
                completed += 1
                _ = histogram.record((DispatchTime.now().uptimeNanoseconds - sent) / 1000)
            }
            if stopping {
                if outstanding == 0 { done.signal() }
            } else {
                issue()
            }
        }
    }
}

func percentiles(_ h: Histogram<UInt64>) -> String {
    "p50 \(h.valueAtPercentile(50)) µs, p90 \(h.valueAtPercentile(90)) µs, p99 \(h.valueAtPercentile(99)) µs, " +
        "p99.9 \(h.valueAtPercentile(99.9)) µs, max \(h.max) µs"
}

let options = Options(CommandLine.arguments)
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let source = RequestSource(options: options)
let done = DispatchSemaphore(value: 0)
var drivers: [LoopDriver] = []
for _ in 0..<options.connections {
    let connection = try await ATPConnection.connect(host: options.host, port: options.port, token: options.token,
                                                     clientName: "atp-load", group: group)
    drivers.append(LoopDriver(connection: connection, source: source, done: done))
}
for driver in drivers { driver.connection.eventLoop.execute { driver.start(depth: options.depth) } }
try await Task.sleep(nanoseconds: 1_000_000_000)  // warm-up
for driver in drivers { try await driver.connection.eventLoop.submit { driver.measuring = true }.get() }
let started = DispatchTime.now().uptimeNanoseconds
try await Task.sleep(nanoseconds: UInt64(options.seconds * 1e9))
for driver in drivers { try await driver.connection.eventLoop.submit { driver.measuring = false; driver.stopping = true }.get() }
let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
for _ in drivers { done.wait() }
var total = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
var completed = 0
var errors = 0
for driver in drivers {
    let (histogram, driverCompleted, driverErrors) = try await driver.connection.eventLoop.submit {
        (driver.histogram, driver.completed, driver.errors)
    }.get()
    total.add(histogram)
    completed += driverCompleted
    errors += driverErrors
}
let requestsPerSecond = Double(completed) / elapsed
let itemsPerSecond = requestsPerSecond * Double(source.itemsPerRequest)
let line = "\(options.scenario): \(options.connections) conn × depth \(options.depth)" +
    (source.itemsPerRequest > 1 ? ", \(source.itemsPerRequest) items/frame" : "") +
    String(format: ": %.0f requests/s, %.0f items/s, ", requestsPerSecond, itemsPerSecond) + percentiles(total) +
    (errors > 0 ? ", \(errors) errors" : "")
if options.json {
    let object: [String: Any] = [
        "scenario": options.scenario, "connections": options.connections, "depth": options.depth,
        "itemsPerRequest": source.itemsPerRequest, "requestsPerSecond": requestsPerSecond, "itemsPerSecond": itemsPerSecond,
        "p50Microseconds": total.valueAtPercentile(50), "p99Microseconds": total.valueAtPercentile(99),
        "p999Microseconds": total.valueAtPercentile(99.9), "maxMicroseconds": total.max, "errors": errors,
    ]
    print(String(data: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), encoding: .utf8)!)
} else {
    print(line)
}
for driver in drivers { await driver.connection.close() }
try await group.shutdownGracefully()
exit(errors > 0 ? 1 : 0)
