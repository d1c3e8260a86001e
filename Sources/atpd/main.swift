import ATPLedger
import ATPProtocol
import ATPServer
import ArgumentParser
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// `atpd`: the ATP server. Flags override the configuration file; `--demo` loads a demo catalogue
/// and, when no tokens are configured, accepts the demo tokens.
struct ATPD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atpd",
        abstract: "The available-to-promise engine server (binary protocol over TCP).",
        discussion: "See docs/PROTOCOL.md for the protocol and docs/CONFIGURATION.md for every key.")

    @Option(name: .long, help: "JSON configuration file (every key optional).")
    var config: String?
    @Option(name: .long, help: "Listen address (default 127.0.0.1).")
    var host: String?
    @Option(name: .long, help: "TCP port (default 7411; 0 picks a free one).")
    var port: Int?
    @Option(name: .long, help: "Number of shards, a power of two (default 64).")
    var shards: Int?
    @Option(name: .long, help: "Shard worker threads (default: the number of cores).")
    var workers: Int?
    @Option(name: .customLong("io-threads"), help: "Event-loop threads (default 1).")
    var ioThreads: Int?
    @Flag(name: .long, help: "Load the demo catalogue (22 locations, 5,000 SKUs, channels web and marketplace).")
    var demo = false
    @Flag(name: .customLong("print-config"), help: "Print the effective configuration and exit.")
    var printConfig = false

    func effectiveConfiguration() throws -> ServerConfiguration {
        var configuration = try config.map { path throws(ConfigurationError) in try ServerConfiguration(jsonFile: path) }
            ?? ServerConfiguration()
        if let host { configuration.host = host }
        if let port { configuration.port = port }
        if let shards { configuration.ledger.shardCount = shards }
        if let workers {
            configuration.ledger.workerCount = workers
        } else if config == nil {
            // Leave the I/O threads a core: on a 2-core machine, 1 worker + 1 event loop.
            configuration.ledger.workerCount = max(1, min(configuration.ledger.shardCount,
                                                          systemCoreCount() - configuration.ioThreads))
        }
        if let ioThreads { configuration.ioThreads = ioThreads }
        if configuration.tokens.isEmpty && (demo || config == nil) { configuration.tokens = ServerConfiguration.demoTokens }
        try configuration.validate()
        return configuration
    }

    func run() throws {
        let configuration: ServerConfiguration
        do {
            configuration = try effectiveConfiguration()
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        if printConfig {
            print(configuration.describe())
            return
        }
        let server = try ATPServer(configuration: configuration)
        if demo {
            let started = monotonicNanoseconds()
            let cells = try DemoCatalog.load(into: server.engine)
            log("loaded the demo catalogue: \(cells) cells in \((monotonicNanoseconds() - started) / 1_000_000) ms")
        }
        let address = try server.start()
        log("listening on \(address) with \(configuration.ledger.shardCount) shards, \(configuration.ledger.workerCount) workers, \(configuration.ioThreads) I/O threads")
        if configuration.tokens == ServerConfiguration.demoTokens {
            log("accepting the demo tokens (demo-admin, demo-query, demo-reserve, demo-ingest); configure tokens for real use")
        }
        if demo {
            let port = server.port ?? configuration.port
            log("try: swift run -c release atp --port \(port) --token demo-query query sku SKU-00042")
            log("     swift run -c release atp --port \(port) --token demo-query query channel SKU-00042 web")
            log("     swift run -c release atp --port \(port) --token demo-reserve reserve ORDER-1 --line SKU-00042@channel:web=2")
            log("     swift run -c release atp --port \(port) stats        (docs/CLI.md has every command)")
        }
        waitForSignalThenShutDown(server)
    }

    private func waitForSignalThenShutDown(_ server: ATPServer) {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let done = DispatchSemaphore(value: 0)
        let queue = DispatchQueue(label: "atpd.signals")
        var sources: [DispatchSourceSignal] = []
        let signalled = SignalCount()
        for number in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                if signalled.increment() > 1 {
                    log("second signal: exiting at once")
                    Glibc.exit(1)
                }
                log("signal \(number): stopping (finishing in-flight requests; a second signal exits at once)")
                DispatchQueue.global().async {
                    server.shutdown()
                    log("stopped")
                    done.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        done.wait()
        _ = sources
    }
}

final class SignalCount: @unchecked Sendable {
    private var count = 0
    func increment() -> Int {
        count += 1
        return count
    }
}

func log(_ message: String) {
    print("atpd: \(message)")
    fflush(nil)
}

ATPD.main()
