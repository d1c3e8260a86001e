// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package so the benchmark plugin and its malloc interposer stay out
// of the main build and out of `swift test`. Run: cd Benchmarks && swift package benchmark
let package = Package(
    name: "atp-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "atp", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "LedgerBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ATPLedger", package: "atp"),
            ],
            path: "LedgerBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
