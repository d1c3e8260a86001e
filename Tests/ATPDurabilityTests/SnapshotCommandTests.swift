import ATPClient
import ATPCommandLine
import ATPDurability
import ATPLedger
import ATPProtocol
import ATPServer
import ATPSnapshot
import Foundation
import Testing

/// `snapshotNow` over the protocol (with and without a data directory) and `atp snapshot now |
/// list | show | export --csv`.
@Suite struct SnapshotCommandTests {
    /// A durable ledger served on a free port with its snapshot hook, plus events in it.
    final class DurableServer: Sendable {
        let directory = TemporaryDirectory()
        let ledger: DurableLedger
        let server: ATPServer

        init() throws {
            var durability = DurabilityConfiguration(dataDirectory: directory.path)
            durability.snapshotIntervalSeconds = 0
            ledger = try DurableLedger.open(configuration: RecoveryTests.ledgerConfiguration(), durability: durability)
            var configuration = ServerConfiguration()
            configuration.port = 0
            configuration.ledger = RecoveryTests.ledgerConfiguration()
            configuration.tokens = ServerConfiguration.demoTokens
            let ledger = self.ledger
            server = try ATPServer(configuration: configuration, engine: ledger.engine,
                                   snapshot: SnapshotHook { ledger.snapshotNowReply() })
            try server.start()
        }

        var port: Int { server.port ?? 0 }

        func stop() {
            server.shutdown(beforeStoppingEngine: { [ledger] in try? ledger.close(finalSnapshot: false) })
            directory.remove()
        }
    }

    struct Run {
        var status: ATPExitStatus
        var standardOutput: String
        var standardError: String
    }

    static func atp(_ arguments: [String]) async -> Run {
        let output = CapturedOutput()
        let status = await ATPCommandLine.run(arguments: arguments, context: CommandContext(output: output, environment: [:]))
        return Run(status: status, standardOutput: output.standardOutput, standardError: output.standardError)
    }

    static func events(_ count: Int) -> [WireEvent] {
        (1...count).map { WireEvent(kind: .receive, sku: "SKU-\($0)", location: $0 % 2 == 0 ? "S1" : "S,2", quantity: Int64($0),
                                    sequence: UInt64($0)) }
    }

    @Test func snapshotNowOverTheProtocolWritesASnapshotAndSaysWhat() async throws {
        let fixture = try DurableServer()
        defer { fixture.stop() }
        let client = try await ATPConnection.connect(port: fixture.port, token: "demo-admin")
        #expect(try await client.ingest(source: "feed", events: Self.events(30)).appliedCount == 30)
        let first = try await client.snapshotNow()
        let second = try await client.snapshotNow()
        #expect(first.cellCount == 30 && second.cellCount == 30)
        #expect(second.snapshotID > first.snapshotID)
        #expect(first.sizeBytes > 0)
        let info = try fixture.ledger.store.info(second.snapshotID)
        #expect(info.cellCount == 30 && UInt64(info.dataBytes) == second.sizeBytes)
        #expect(fixture.ledger.snapshotStatistics.written == 2)
        // Only admin tokens may ask.
        let reader = try await ATPConnection.connect(port: fixture.port, token: "demo-query")
        await #expect(throws: ATPClientError.self) { _ = try await reader.snapshotNow() }
        await reader.close()
        await client.close()
    }

    @Test func snapshotNowWithoutADataDirectoryIsAClearError() async throws {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.ledger = RecoveryTests.ledgerConfiguration()
        configuration.tokens = ServerConfiguration.demoTokens
        let server = try ATPServer(configuration: configuration)
        try server.start()
        defer { server.shutdown() }
        let client = try await ATPConnection.connect(port: server.port ?? 0, token: "demo-admin")
        do {
            _ = try await client.snapshotNow()
            Issue.record("an in-memory server took a snapshot")
        } catch ATPClientError.server(let error) {
            #expect(error.code == .notImplemented)
            #expect(error.message.contains("in memory"))
        }
        _ = try await client.ping()  // the connection stays open
        await client.close()
        let run = await Self.atp(["snapshot", "now", "--port", "\(server.port ?? 0)", "--token", "demo-admin"])
        #expect(run.status != .ok)
        #expect(run.standardError.contains("notImplemented") && run.standardError.contains("in memory"), "\(run.standardError)")
    }

    @Test func cliTakesListsShowsAndExportsSnapshots() async throws {
        let fixture = try DurableServer()
        defer { fixture.stop() }
        let client = try await ATPConnection.connect(port: fixture.port, token: "demo-admin")
        #expect(try await client.ingest(source: "feed", events: Self.events(12)).appliedCount == 12)
        await client.close()

        let now = await Self.atp(["snapshot", "now", "--port", "\(fixture.port)", "--token", "demo-admin", "--json"])
        #expect(now.status == .ok, "\(now.standardError)")
        let id = try #require(now.standardOutput.firstMatch(of: /"snapshotID":(\d+)/).flatMap { UInt64($0.1) }, "\(now.standardOutput)")
        #expect(now.standardOutput.contains("\"cellCount\":12"))

        let list = await Self.atp(["snapshot", "list", "--data-dir", fixture.directory.path])
        #expect(list.status == .ok)
        let row = list.standardOutput.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(id) ") }
        #expect(row?.split(separator: " ").contains("12") == true, "\(list.standardOutput)")

        let show = await Self.atp(["snapshot", "show", "\(id)", "--data-dir", fixture.directory.path, "--json"])
        #expect(show.status == .ok)
        #expect(show.standardOutput.contains("\"id\":\(id)") && show.standardOutput.contains("\"cellCount\":12"), "\(show.standardOutput)")

        let export = await Self.atp(["snapshot", "export", "\(id)", "--csv", "--data-dir", fixture.directory.path])
        #expect(export.status == .ok, "\(export.standardError)")
        let lines = export.standardOutput.split(separator: "\n")
        #expect(lines.count == 13)
        #expect(lines.first.map { $0 + "\n" } == Substring(SnapshotStore.csvHeader))
        #expect(lines.contains { $0.hasPrefix("SKU-7,\"S,2\",7,") }, "names are quoted when needed: \(lines)")
        #expect(lines.contains { $0.hasPrefix("SKU-12,S1,12,") })

        let file = fixture.directory.path + "/export.csv"
        let toFile = await Self.atp(["snapshot", "export", "\(id)", "--csv", "--data-dir", fixture.directory.path, "--output", file])
        #expect(toFile.status == .ok)
        #expect(try String(contentsOfFile: file, encoding: .utf8) == export.standardOutput)

        let missing = await Self.atp(["snapshot", "show", "999", "--data-dir", fixture.directory.path])
        #expect(missing.status == .usage && !missing.standardError.isEmpty)
        let noFormat = await Self.atp(["snapshot", "export", "\(id)", "--data-dir", fixture.directory.path])
        #expect(noFormat.status == .usage && noFormat.standardError.contains("--csv"))
    }
}
