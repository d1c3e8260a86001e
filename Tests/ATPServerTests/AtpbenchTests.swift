import ATPClient
import ATPProtocol
import ATPServer
import Foundation
import Testing

/// tools/atpbench, the C load generator written from docs/PROTOCOL.md alone, in small: its encoders
/// and decoders against §10 (`--self-test`), and a short shard-aware run against a thread-per-core
/// server with a port per core, where every query must be answered where it was read.
@Suite struct AtpbenchTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let compiler = ["/usr/bin/cc", "/usr/bin/clang", "/opt/swift/usr/bin/clang"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Compiles atpbench into a new temporary directory (the caller removes it).
    static func build() throws -> (URL, String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atpbench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let binary = directory.path + "/atpbench"
        let source = root.appendingPathComponent("tools/atpbench/atpbench.c").path
        let (status, _) = try runToExit(try #require(compiler), ["-O1", "-pthread", "-o", binary, source])
        #expect(status == 0, "cc atpbench.c")
        return (directory, binary)
    }

    @Test(.enabled(if: compiler != nil, "a C compiler"))
    func theSelfTestPassesAndAShardAwareRunIsAnsweredInline() async throws {
        let (directory, binary) = try Self.build()
        defer { try? FileManager.default.removeItem(at: directory) }
        let selfTest = try runToExit(binary, ["--self-test", "--doc", Self.root.appendingPathComponent("docs/PROTOCOL.md").path])
        #expect(selfTest.status == 0, "atpbench --self-test: \(selfTest.output)")
        #expect(selfTest.output.contains("hello.reply.v2") && selfTest.output.contains("hashBytes"))

        let fixture = try ServerFixture {
            $0.threadPerCore = true
            $0.ledger.workerCount = 2
            $0.corePortBase = 0
        }
        let client = try await fixture.connect()
        // The run's keys: SKU-00001..SKU-00020 at the 22 demo locations; stock at DC-EAST only, and
        // SKU-00021 (keys 440...) is unknown: any core answers it where it is read.
        _ = try await client.ingest(source: "wms", events: (1...20).map { n in
            WireEvent(kind: .receive, sku: String(format: "SKU-%05d", n), location: "DC-EAST", quantity: 5, sequence: UInt64(n))
        })
        let inlineBefore = try await client.stat("server.requests.inline") ?? 0
        let run = try runToExit(binary, [
            "--scenario", "query", "--port", "\(fixture.port)", "--shard-aware", "--connections", "4", "--pipeline", "4",
            "--keyspace", "462", "--seconds", "0.3", "--warmup-seconds", "0.1", "--quiet",
        ])
        #expect(run.status == 0, "atpbench --shard-aware: \(run.output)")
        let fields = Dictionary(run.output.split(whereSeparator: \.isWhitespace).compactMap { pair -> (String, String)? in
            let parts = pair.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { first, _ in first })
        #expect(fields["shard_aware"] == "1" && fields["errors"] == "0", "\(run.output)")
        let requests = Int64(fields["requests"] ?? "0") ?? 0
        #expect(requests > 0)
        let inline = (try await client.stat("server.requests.inline") ?? 0) - inlineBefore
        // The warm-up's queries are answered inline too; all of them were, none was forwarded.
        #expect(inline >= requests, "\(inline) of at least \(requests) queries answered inline")
        let answered = try await client.stat("server.requests.answered") ?? 0
        // Not inline: the hellos (atpbench's set-up connection, its four, this client's), this
        // client's ingest and stats: a handful, where forwarding would be half of the thousands.
        #expect(answered - inline < 20, "only the set-up requests were not inline (\(answered - inline))")
        await client.close()
    }
}
