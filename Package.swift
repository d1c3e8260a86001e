// swift-tools-version:6.1
import PackageDescription

/// Layers, bottom to top (nothing imports upwards):
/// - `CATPSupport`: a few C helpers (prefetch, thread naming, CRC-32C instruction) fenced in one place.
/// - `ATPLedger`: the in-memory sharded ledger. No sockets, no files, no LMDB.
/// - `ATPProtocol`: the binary wire format (frames, encoders, decoders). No sockets.
/// - `ATPJournal`: write-ahead journal streams (files, fsync, checksums). Knows nothing of the ledger.
/// - `CLMDB` / `ATPLMDB` / `ATPSnapshot`: Debian's liblmdb, a typed wrapper, ledger snapshots.
/// - `ATPServer`: SwiftNIO server: connections, handshake, back-pressure, request execution.
/// - `ATPClient`: the Swift client: pipelined connections (async/await and callbacks), a pool.
/// - `ATPCommandLine`: the `atp` subcommands over the client.
/// - Executables: `atpd` (server), `atp` (CLI), `atp-demo`, and the tools under tools/.
/// Later layers depend on earlier ones, never the reverse.
///
/// atpd's allocator: Debian's jemalloc (libjemalloc-dev, which tools/setup.sh installs), linked into
/// the executable so that it serves every malloc of the process, as Redis does (docs/ARCHITECTURE.md,
/// "Memory allocator"). `ATP_ALLOCATOR=glibc swift build ...` builds atpd with glibc's malloc
/// instead, for comparison (docs/BENCHMARKS.md §9); use a scratch path of its own for that build.
let atpdAllocator = Context.environment["ATP_ALLOCATOR"] ?? "jemalloc"
guard ["jemalloc", "glibc"].contains(atpdAllocator) else {
    fatalError("ATP_ALLOCATOR is \(atpdAllocator.debugDescription); it may be jemalloc (the default) or glibc")
}
let atpdLinkerSettings: [LinkerSetting] =
    atpdAllocator == "jemalloc" ? [.linkedLibrary("jemalloc", .when(platforms: [.linux]))] : []

let package = Package(
    name: "atp",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ATPLedger", targets: ["ATPLedger"]),
        // The fuzz targets, for tools/fuzz (a package of its own, built with --sanitize fuzzer).
        .library(name: "ATPFuzzing", targets: ["ATPFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CATPSupport"),
        // The worker and flusher threads' parking and start-up, shared by the ledger and the journal.
        .target(
            name: "ATPThreads",
            dependencies: ["CATPSupport", .product(name: "Atomics", package: "swift-atomics")]
        ),
        .target(
            name: "ATPLedger",
            dependencies: [
                "CATPSupport", "ATPThreads",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            // The ledger's shard state is touched by one worker thread only, so run-time exclusivity
            // checks on its class properties buy nothing and cost ~10% of the event path (measured
            // with perf). Static checks still apply.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .target(
            name: "ATPJournal",
            dependencies: ["ATPThreads", "CATPSupport", .product(name: "Atomics", package: "swift-atomics")]
        ),
        .target(
            name: "ATPProtocol",
            dependencies: ["ATPLedger", .product(name: "NIOCore", package: "swift-nio")],
            // Encoders and decoders run on one thread at a time; run-time exclusivity checks showed
            // up at ~15% of a load generator's profile (swift_beginAccess, AccessSet::insert).
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .target(
            name: "ATPServer",
            dependencies: [
                "ATPLedger", "ATPProtocol", "CATPSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            // Handlers are confined to their event loop (NIO's threading model): run-time exclusivity
            // checks on their properties cost ~3% of a pipelined query (perf) and catch nothing more.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .target(
            name: "ATPClient",
            dependencies: [
                "ATPLedger", "ATPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            // Connection handlers are confined to their event loop, as in ATPServer.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // Operating atpd: Prometheus metrics and health on their own HTTP port, structured logs.
        .target(
            name: "ATPOperations",
            dependencies: [
                "ATPServer", "ATPLedger", "ATPProtocol", "ATPDurability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "atpd",
            dependencies: [
                "ATPServer", "ATPLedger", "ATPProtocol", "ATPOperations", "ATPDurability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // jemalloc unless ATP_ALLOCATOR=glibc (above). Only atpd: the tests and the tools keep
            // glibc's malloc, and ProcessMemory reports whichever serves the process.
            linkerSettings: atpdLinkerSettings
        ),
        .target(
            name: "ATPCommandLine",
            dependencies: [
                "ATPClient", "ATPProtocol", "ATPLedger", "ATPReconcile", "ATPSnapshot",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "atp", dependencies: ["ATPCommandLine"]),
        .executableTarget(
            name: "atp-load",
            dependencies: [
                "ATPClient", "ATPProtocol", "ATPLedger",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "tools/atp-load",
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        .target(
            name: "ATPFlashSale",
            dependencies: [
                "ATPClient", "ATPProtocol", "ATPLedger",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "flash-sale",
            dependencies: [
                "ATPFlashSale", "ATPClient", "ATPProtocol", "ATPLedger",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "tools/flash-sale"
        ),
        .executableTarget(
            name: "atp-demo",
            dependencies: ["ATPLedger", .product(name: "Atomics", package: "swift-atomics")],
            path: "Sources/atp-demo"
        ),
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .target(name: "ATPLMDB", dependencies: ["CLMDB"]),
        // ATPJournal for its CRC32C (one implementation of the checksum in the package).
        .target(name: "ATPSnapshot", dependencies: ["ATPLedger", "ATPLMDB", "ATPJournal"]),
        // Reconciliation of ERP counts against a snapshot (docs/RECONCILE.md) and its generator tool.
        .target(
            name: "ATPReconcile",
            dependencies: ["ATPSnapshot", "ATPLedger", .product(name: "HeapModule", package: "swift-collections")]
        ),
        .executableTarget(
            name: "erp-counts",
            dependencies: [
                "ATPReconcile", "ATPSnapshot", "ATPLedger",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/erp-counts"
        ),
        .testTarget(
            name: "ATPReconcileTests",
            dependencies: ["ATPReconcile", "ATPSnapshot", "ATPLedger", "ATPCommandLine", "ATPProtocol"]
        ),
        // Durability glue: journal streams per worker, snapshots, recovery, data directory lock.
        .target(name: "ATPDurability", dependencies: ["ATPLedger", "ATPJournal", "ATPSnapshot", "ATPProtocol"]),
        // The kill -9 crash cycle (load, SIGKILL, restart, check against a model), shared by the
        // crash test and tools/crash-soak.sh.
        // The deterministic simulator: every core of a ledger on one thread under a seeded scheduler,
        // with fault-injecting journals, crashes and a reference model (docs/SIMULATOR.md); its tool.
        .target(name: "ATPSimulator", dependencies: ["ATPLedger"]),
        .executableTarget(
            name: "atp-sim",
            dependencies: ["ATPSimulator", "ATPLedger", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/simulator"
        ),
        .testTarget(name: "ATPSimulatorTests", dependencies: ["ATPSimulator", "ATPLedger"]),
        .target(name: "ATPCrashSoak", dependencies: ["ATPClient", "ATPProtocol", "ATPLedger"], path: "tools/crash-soak/Core"),
        .executableTarget(name: "crash-soak", dependencies: ["ATPCrashSoak"], path: "tools/crash-soak/Main"),
        .testTarget(
            name: "ATPDurabilityTests",
            dependencies: ["ATPDurability", "ATPLedger", "ATPJournal", "ATPSnapshot", "ATPServer", "ATPClient",
                           "ATPProtocol", "ATPCrashSoak", "ATPCommandLine", "ATPTestSupport"],
            // Version-1 data directories the suite unpacks (FixtureRecoveryTests reads them by path).
            exclude: ["Fixtures"]
        ),
        // Fuzz targets (issue 14): what libFuzzer drives in tools/fuzz, and the suite replays.
        .target(
            name: "ATPFuzzing",
            dependencies: ["ATPProtocol", "ATPJournal", "ATPSnapshot", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "ATPFuzzingTests", dependencies: ["ATPFuzzing", "ATPProtocol", "ATPJournal", "ATPLedger"]),
        .testTarget(name: "ATPSnapshotTests", dependencies: ["ATPSnapshot", "ATPLMDB", "ATPLedger", "ATPJournal"]),
        .testTarget(name: "ATPLedgerTests", dependencies: ["ATPLedger"]),
        .testTarget(name: "ATPJournalTests", dependencies: ["ATPJournal"]),
        .testTarget(name: "ATPLedgerModelTests", dependencies: ["ATPLedger"]),
        // What the end-to-end suites share: the standard test server and a lock box for callbacks.
        .target(name: "ATPTestSupport", dependencies: ["ATPServer", "ATPLedger"], path: "Tests/ATPTestSupport"),
        // Counts Swift heap allocations per thread through the runtime's allocation hook (tests only).
        .target(name: "CATPAllocationCounter", path: "Tests/CATPAllocationCounter"),
        .testTarget(
            name: "ATPServerTests",
            dependencies: [
                "ATPServer", "ATPClient", "ATPProtocol", "ATPLedger", "ATPCommandLine", "ATPFlashSale", "ATPTestSupport",
                "CATPAllocationCounter",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ATPOperationsTests",
            dependencies: [
                "ATPOperations", "ATPServer", "ATPClient", "ATPProtocol", "ATPLedger", "ATPCommandLine",
                "ATPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ATPProtocolTests",
            dependencies: ["ATPProtocol", .product(name: "NIOCore", package: "swift-nio")]
        ),
    ]
)
