// swift-tools-version:6.1
import PackageDescription

/// Layers, bottom to top (nothing imports upwards):
/// - `CATPSupport`: a few C inline helpers (prefetch, thread naming) the core fences in one place.
/// - `ATPLedger`: the in-memory sharded ledger. No sockets, no files, no LMDB.
/// Later layers (protocol codec, server, store, client) depend on `ATPLedger`, never the reverse.
let package = Package(
    name: "atp",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ATPLedger", targets: ["ATPLedger"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        .target(name: "CATPSupport"),
        .target(
            name: "ATPLedger",
            dependencies: [
                "CATPSupport",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .executableTarget(name: "atp-demo", dependencies: ["ATPLedger"], path: "Sources/atp-demo"),
        .testTarget(name: "ATPLedgerTests", dependencies: ["ATPLedger"]),
    ]
)
