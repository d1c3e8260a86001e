import ATPDurability
import ATPLedger
import ATPOperations
import ATPProtocol
import ATPServer
import ArgumentParser
import Dispatch
import Foundation
import Logging
import Metrics
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `atpd`: the ATP server. Flags override the configuration file; tokens may come from `ATPD_TOKENS`
/// or a tokens file; `--demo` loads a demo catalogue, accepts the demo tokens when none are
/// configured and serves metrics on port 9411. docs/CONFIGURATION.md has every key.
struct ATPD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atpd",
        abstract: "The available-to-promise engine server (binary protocol over TCP).",
        discussion: """
            See docs/PROTOCOL.md for the protocol and docs/CONFIGURATION.md for every key. Tokens may \
            come from the environment variable ATPD_TOKENS ("name:roles:token" entries separated by \
            spaces or ';') instead of the configuration file.
            """)

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
    @Option(name: .customLong("io-threads"), help: "Event-loop threads (default 1; ignored with --thread-per-core).")
    var ioThreads: Int?
    @Flag(name: .customLong("thread-per-core"),
          help: "Run the shards on the event loops, one per core, executing requests where they are read.")
    var threadPerCore = false
    @Option(name: .customLong("core-port-base"),
            help: "With --thread-per-core, core k also listens on this port + k; shard-aware clients send each SKU there (0: free ports).")
    var corePortBase: Int?
    @Option(name: .customLong("metrics-host"), help: "Address of the metrics and health listener (default 127.0.0.1).")
    var metricsHost: String?
    @Option(name: .customLong("metrics-port"),
            help: "Port of the metrics and health listener: /metrics, /healthz, /readyz (default off; 9411 with --demo).")
    var metricsPort: Int?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?
    @Option(name: .customLong("tokens-file"), help: "File of name:roles:token lines (keeps secrets out of the config file).")
    var tokensFile: String?
    @Flag(name: .long, help: "Load the demo catalogue (22 locations, 5,000 SKUs, channels web and marketplace).")
    var demo = false
    @Flag(name: .customLong("print-config"), help: "Print the effective configuration and exit.")
    var printConfig = false
    @Option(name: .customLong("data-dir"),
            help: "Data directory (journal, snapshots); without it atpd runs in memory (./atp-data with --demo).")
    var dataDirectory: String?
    @Flag(name: .customLong("in-memory"),
          help: "Run without a data directory even with --demo or a configured one: nothing survives a restart.")
    var inMemory = false
    @Option(name: .long, help: "Journal durability: sync (default), none, or interval:<ms> (docs/DURABILITY.md).")
    var durability: String?
    @Option(name: .customLong("snapshot-interval-seconds"), help: "Seconds between snapshots, 0 for none (default 300).")
    var snapshotIntervalSeconds: Int?
    @Option(name: .customLong("snapshots-kept"), help: "Snapshots kept (default 3).")
    var snapshotsKept: Int?
    @Flag(name: .customLong("accept-journal-damage"),
          help: """
            Start even when the journal is damaged so that acknowledged records would be lost (atpd refuses \
            and says what is damaged otherwise): the damaged bytes are moved aside (<segment>.damaged), those \
            records are lost, and the loss is logged at error level. Copy the data directory first \
            (docs/DURABILITY.md, "Damaged journals").
            """)
    var acceptJournalDamage = false

    /// The durability settings, or nil to run in memory.
    /// The durability flags over the configuration file's keys (`dataDirectory`, `durability`,
    /// `snapshotIntervalSeconds`, `snapshotsKept`; `--demo` defaults the directory to ./atp-data),
    /// checked like the file's: `invalid configuration: KEY = VALUE: WHY (set by --FLAG)`.
    func applyDurabilityFlags(to configuration: inout ServerConfiguration) throws {
        if inMemory && dataDirectory != nil { throw ValidationError("--in-memory and --data-dir exclude each other") }
        if let dataDirectory { configuration.dataDirectory = dataDirectory }
        if configuration.dataDirectory == nil && demo { configuration.dataDirectory = "./atp-data" }
        if inMemory { configuration.dataDirectory = nil }
        if let durability { configuration.durability = durability }
        if let snapshotIntervalSeconds { configuration.snapshotIntervalSeconds = snapshotIntervalSeconds }
        if let snapshotsKept { configuration.snapshotsKept = snapshotsKept }
        do {
            try configuration.validate()
        } catch {
            let flags = ["dataDirectory": "--data-dir", "durability": "--durability",
                         "snapshotIntervalSeconds": "--snapshot-interval-seconds", "snapshotsKept": "--snapshots-kept"]
            let setByFlag = switch error.key {
            case "dataDirectory": dataDirectory != nil
            case "durability": durability != nil
            case "snapshotIntervalSeconds": snapshotIntervalSeconds != nil
            case "snapshotsKept": snapshotsKept != nil
            default: false
            }
            throw ValidationError(error.description + (setByFlag ? " (set by \(flags[error.key] ?? ""))" : ""))
        }
    }

    /// The durability settings of `configuration` (checked), or nil to run in memory.
    static func durabilityConfiguration(_ configuration: ServerConfiguration,
                                        acceptJournalDamage: Bool) -> DurabilityConfiguration? {
        guard let directory = configuration.dataDirectory else { return nil }
        var settings = DurabilityConfiguration(dataDirectory: directory)
        settings.journalDamagePolicy = acceptJournalDamage ? .acceptLoss : .refuse
        settings.journal.durability = DurabilityConfiguration.parseDurability(configuration.durability) ?? .sync
        settings.snapshotIntervalSeconds = configuration.snapshotIntervalSeconds
        settings.snapshotsKept = configuration.snapshotsKept
        settings.fitJournal(toBatchItemsMax: configuration.limits.batchItemsMax)
        return settings
    }

    var options: ATPDOptions {
        var options = ATPDOptions()
        options.configFile = config
        options.host = host
        options.port = port
        options.shardCount = shards
        options.workerCount = workers
        options.ioThreads = ioThreads
        options.threadPerCore = threadPerCore ? true : nil
        options.corePortBase = corePortBase
        options.metricsHost = metricsHost
        options.metricsPort = metricsPort
        options.logLevel = logLevel
        options.tokensFile = tokensFile
        options.demo = demo
        options.acceptJournalDamage = acceptJournalDamage
        return options
    }

    func run() throws {
        let resolved: ResolvedConfiguration
        do {
            resolved = try ConfigurationResolver.resolve(options, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.description)
        }
        var configuration = resolved.configuration
        try applyDurabilityFlags(to: &configuration)
        if printConfig {
            print(configuration.describe())
            print(resolved.describeStartKeys())
            print("tokens from = \(resolved.tokenOrigin.rawValue)")
            return
        }
        if configuration.tokens.isEmpty {
            throw ValidationError(
                "no tokens are configured, so no client could authenticate: set ATPD_TOKENS (\"name:roles:token\" "
                    + "entries), tokensFile, or \"tokens\" in the configuration file (docs/CONFIGURATION.md), or start "
                    + "with --demo to accept the demo tokens")
        }
        let level = Logger.Level(configurationName: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { KeyValueLogHandler(label: $0, level: level) }
        let logger = Logger(label: "atpd")
        // Before any thread exists, so that every thread inherits the blocked mask.
        let signals = ShutdownSignals(logger: logger)
        let started = ContinuousClock.now
        // Before the server's threads: jemalloc's purging threads return an idle server's dirty pages.
        let backgroundPurge = ProcessMemory.startJemallocBackgroundThreads(environment: ProcessInfo.processInfo.environment)
        logger.info("starting", metadata: [
            "pid": "\(getpid())", "shards": "\(configuration.ledger.shardCount)",
            "workers": "\(configuration.ledger.workerCount)", "ioThreads": "\(configuration.ioThreads)", "threadPerCore": "\(configuration.threadPerCore)",
            "tokens": "\(configuration.tokens.count)", "tokensFrom": "\(resolved.tokenOrigin.rawValue)",
            "allocator": "\(ProcessMemory.read().allocator)", "allocatorBackgroundPurge": "\(backgroundPurge)",
        ])
        let running: RunningServer
        let durability = Self.durabilityConfiguration(configuration, acceptJournalDamage: resolved.acceptJournalDamage)
        do {
            running = try RunningServer.start(configuration, demo: demo, durability: durability, logger: logger)
        } catch {
            logger.critical("could not start", metadata: ["error": "\(error)"])
            if let durability, let explanation = (error as? DurabilityError)?
                .journalDamageExplanation(dataDirectory: durability.dataDirectory) {
                FileHandle.standardError.write(Data((explanation + "\n").utf8))
            }
            throw ExitCode(1)
        }
        logger.info("started", metadata: ["durationMilliseconds": "\(milliseconds(since: started))"])
        if resolved.tokenOrigin == .demo {
            logger.notice("accepting the demo tokens (demo-admin, demo-query, demo-reserve, demo-ingest); configure tokens for real use")
        }
        if demo { printDemoHints(port: running.server.port ?? configuration.port, logger: logger) }
        signals.waitThenShutDown(running, logger: logger)
    }

    private func printDemoHints(port: Int, logger: Logger) {
        logger.info("try: swift run -c release atp --port \(port) --token demo-query query sku SKU-00042")
        logger.info("     swift run -c release atp --port \(port) --token demo-query query channel SKU-00042 web")
        logger.info("     swift run -c release atp --port \(port) --token demo-reserve reserve ORDER-1 --line SKU-00042@channel:web=2")
        logger.info("     swift run -c release atp --port \(port) top        (docs/CLI.md has every command)")
    }
}

/// SIGINT and SIGTERM. They are blocked in every thread from the start of `run()` (threads inherit
/// the mask) and read by dispatch sources, so a signal sent at any moment is neither lost nor takes
/// the default action: the first asks for a clean shutdown (stop accepting, finish in-flight
/// requests, final snapshot, exit 0), carried out once atpd has started when it comes during the
/// start; a second exits at once with status 1.
///
/// Safety argument for `@unchecked Sendable`: `sources` is written once, in `init`.
final class ShutdownSignals: @unchecked Sendable {
    private let requested = DispatchSemaphore(value: 0)
    private var sources: [DispatchSourceSignal] = []

    /// Blocks SIGINT and SIGTERM in the calling thread (call it before any other thread starts) and
    /// starts reading them.
    init(logger: Logger) {
        var blocked = sigset_t()
        sigemptyset(&blocked)
        sigaddset(&blocked, SIGINT)
        sigaddset(&blocked, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &blocked, nil)
        let queue = DispatchQueue(label: "atpd.signals")
        let signalled = SignalCount()
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [requested] in
                if signalled.increment() > 1 {
                    logger.warning("second signal: exiting at once", metadata: ["signal": "\(number)"])
                    Glibc.exit(1)
                }
                logger.notice("stopping: finishing in-flight requests; a second signal exits at once",
                              metadata: ["signal": "\(number)"])
                requested.signal()
            }
            source.resume()
            sources.append(source)
        }
    }

    /// Waits for the first signal, then drains and stops `running`.
    func waitThenShutDown(_ running: RunningServer, logger: Logger) {
        requested.wait()
        let stopping = ContinuousClock.now
        running.shutdown()
        logger.info("stopped", metadata: ["durationMilliseconds": "\(milliseconds(since: stopping))"])
    }
}

/// The server and its operations side (metrics listener, refusal reports), started together.
struct RunningServer: Sendable {
    let server: ATPServer
    let metricsListener: MetricsHTTPServer?
    let refusals: RefusalLogger
    /// The durable ledger (journal, snapshots) when atpd runs with a data directory.
    var ledger: DurableLedger? = nil

    /// Recovers the ledger from the data directory (snapshot + journal), before anything serves.
    static func openLedger(_ configuration: ServerConfiguration, _ durability: DurabilityConfiguration,
                           eventLoops: ServerEventLoops?, logger: Logger) throws -> DurableLedger {
        logger.info("recovering", metadata: [
            "dataDirectory": "\(durability.dataDirectory)", "durability": "\(durability.journal.durability)",
            "snapshotIntervalSeconds": "\(durability.snapshotIntervalSeconds)", "snapshotsKept": "\(durability.snapshotsKept)",
            "journalDamagePolicy": "\(durability.journalDamagePolicy)",
        ])
        if durability.journalDamagePolicy == .acceptLoss {
            logger.warning("""
                journal damage that loses acknowledged records will be accepted (--accept-journal-damage or \
                acceptJournalDamage); remove it once this start is done
                """)
        }
        let ledger = try DurableLedger.open(configuration: configuration.ledger, durability: durability,
                                            hosts: eventLoops?.coreHosts) { line in
            switch RecoveryLog.severity(of: line) {
            case .error: logger.error("\(line)")
            case .warning: logger.warning("\(line)")
            case .notice: logger.notice("\(line)")
            }
        }
        logger.info("recovered", metadata: ["report": "\(ledger.recovery)"])
        ledger.startSnapshotSchedule()
        return ledger
    }

    static func start(_ configuration: ServerConfiguration, demo: Bool, durability: DurabilityConfiguration?,
                      logger: Logger) throws -> RunningServer {
        if durability == nil { logger.notice("no data directory: running in memory, nothing survives a restart (--data-dir)") }
        // The operations side comes up first, so that /healthz answers and /readyz says why it is
        // not ready while the ledger recovers, the demo catalogue loads and the port is bound;
        // /metrics answers once the server exists.
        let readiness = ReadinessChecks()
        let phase = StartupPhase("recovering the ledger from the data directory")
        readiness.add("startup") { phase.reason }
        var listener: MetricsHTTPServer? = nil
        if let metricsPort = configuration.metricsPort {
            listener = try MetricsHTTPServer(host: configuration.metricsHost, port: metricsPort, readiness: readiness,
                                             bearerToken: configuration.metricsToken)
            let bound = listener?.port ?? metricsPort
            logger.info("metrics and health listening", metadata: [
                "metrics": "http://\(configuration.metricsHost):\(bound)/metrics",
                "healthz": "http://\(configuration.metricsHost):\(bound)/healthz",
                "readyz": "http://\(configuration.metricsHost):\(bound)/readyz",
                "metricsToken": configuration.metricsToken == nil ? "none" : "required",
            ])
            let loopback = ["127.0.0.1", "::1", "localhost"].contains(configuration.metricsHost)
            if configuration.metricsToken == nil && !loopback {
                logger.warning("/metrics is readable by anyone who reaches \(configuration.metricsHost):\(bound); set ATPD_METRICS_TOKEN (or metricsToken) to require a bearer token")
            }
        }
        let ledger: DurableLedger?
        let server: ATPServer
        do {
            // Thread-per-core: the event loops exist first, so that the recovered engine's cores run on them.
            let eventLoops = configuration.threadPerCore ? ServerEventLoops(count: configuration.ledger.workerCount) : nil
            ledger = try durability.map { try openLedger(configuration, $0, eventLoops: eventLoops, logger: logger) }
            phase.set("loading and binding the protocol port")
            server = try ATPServer(configuration: configuration, engine: ledger?.engine, eventLoops: eventLoops,
                                   snapshot: ledger.map { ledger in SnapshotHook { ledger.snapshotNowReply() } })
        } catch {
            listener?.shutdown()
            throw error
        }
        readiness.add("listening") { server.port == nil ? "the protocol port is not bound" : nil }
        if let ledger {
            readiness.add("journal") { ledger.journalFailure.map { "the journal failed, writes are refused: \($0)" } }
        }
        let metrics = ATPMetrics(server: server, readiness: readiness)
        if let ledger { DurabilityMetrics.register(ledger, in: metrics) }
        MetricsSystem.bootstrap(metrics.metricsFactory())
        listener?.attach(metrics)
        do {
            if demo {
                let loading = ContinuousClock.now
                let cells = try DemoCatalog.load(into: server.engine)
                logger.info("loaded the demo catalogue", metadata: [
                    "cells": "\(cells)", "durationMilliseconds": "\(milliseconds(since: loading))",
                ])
            }
            let address = try server.start()
            phase.set(nil)
            logger.info("listening", metadata: ["address": "\(address)"])
            if !server.corePorts.isEmpty {
                logger.info("each core listening on its own port (shard-aware clients)", metadata: [
                    "ports": "\(server.corePorts.map(String.init).joined(separator: ","))",
                ])
            }
        } catch {
            listener?.shutdown()
            server.shutdown()
            try? ledger?.close(finalSnapshot: false)
            throw error
        }
        let refusals = RefusalLogger(metrics: server.requestMetrics, logger: logger)
        refusals.start()
        return RunningServer(server: server, metricsListener: listener, refusals: refusals, ledger: ledger)
    }

    /// Drains and stops the server (a durable one takes a final snapshot once the in-flight
    /// requests are done, so the next start replays nothing), then the operations side (metrics
    /// stay up while draining).
    func shutdown() {
        server.shutdown(beforeStoppingEngine: { [ledger] in
            guard let ledger else { return }
            do { try ledger.close(finalSnapshot: true) } catch { Logger(label: "atpd").error("final snapshot failed: \(error)") }
        })
        try? ledger?.close(finalSnapshot: false)
        refusals.stop()
        metricsListener?.shutdown()
    }
}

/// What atpd is doing before it is ready, for `/readyz` (nil once it serves).
final class StartupPhase: Sendable {
    private let current: Mutex<String?>

    init(_ reason: String) { current = Mutex(reason) }

    /// Why atpd is not ready yet, or nil when it is.
    var reason: String? { current.withLock { $0 } }

    func set(_ reason: String?) { current.withLock { $0 = reason } }
}

final class SignalCount: @unchecked Sendable {
    private var count = 0
    func increment() -> Int {
        count += 1
        return count
    }
}

func milliseconds(since start: ContinuousClock.Instant) -> Int64 {
    let elapsed = ContinuousClock.now - start
    return elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
}

ATPD.main()
