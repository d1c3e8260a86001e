import ATPClient
import ATPCrashSoak
import ATPLedger
import ATPProtocol
import Foundation
import Testing

/// atpd as a process on a data directory: kill -9 under load keeps every acknowledged operation and
/// leaves no unacknowledged partial reservation holding units; a second atpd is refused; SIGTERM
/// leaves a snapshot that covers everything.
@Suite struct CrashTests {
    /// The `atpd` executable built next to this test bundle, or nil.
    static let atpdPath = AtpdProcess.executable(near: CommandLine.arguments[0])

    /// The seed: `ATP_CRASH_SEED` when set (to repeat a failure), random otherwise; printed.
    static func seed() -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["ATP_CRASH_SEED"], let seed = UInt64(text) { return seed }
        return UInt64.random(in: 1...UInt64(UInt32.max))
    }

    @Test(.enabled(if: atpdPath != nil, "the atpd executable is built next to the tests"),
          arguments: [0, 1])
    func killNineUnderLoadKeepsEveryAcknowledgedOperation(snapshotIntervalSeconds: Int) async throws {
        let directory = TemporaryDirectory()
        var soak = CrashSoak(atpdPath: try #require(Self.atpdPath), dataDirectory: directory.path)
        // Cycles with a snapshot every second also crash during and between snapshots.
        soak.atpdArguments += ["--snapshot-interval-seconds", "\(snapshotIntervalSeconds)"]
        soak.killDelayMilliseconds = 200...900
        let seed = Self.seed()
        print("crash test: seed \(seed) (repeat with ATP_CRASH_SEED=\(seed)), snapshot interval \(snapshotIntervalSeconds) s")
        var generator = SeededGenerator(seed: seed)
        var model = CrashModel()
        var server = try soak.start()
        var acknowledged = 0
        var unknownApplied = 0
        var unknownAbsent = 0
        for cycle in 1...2 {
            let (restarted, report) = try await soak.runCycle(seed: generator.next(), cycle: cycle, server: server, model: &model)
            print("crash test cycle \(cycle): \(report)")
            #expect(report.violations.isEmpty, "seed \(seed), cycle \(cycle): \(report.violations)")
            guard let restarted else { return }  // refused to start: the violation says why
            server = restarted
            #expect(report.recovery.contains("recovered"), "atpd logs its recovery: \(restarted.log)")
            acknowledged += report.acknowledged
            unknownApplied += report.unknownApplied
            unknownAbsent += report.unknownAbsent
        }
        // The load did something worth checking: operations were acknowledged before each kill.
        #expect(acknowledged > 10, "seed \(seed): only \(acknowledged) operations acknowledged")
        // And the checks can fail: a model that claims one more unit, and a held reservation as
        // committed, is caught.
        var wrong = model
        let cell = try #require(wrong.onHand.keys.first)
        wrong.onHand[cell, default: 0] += 1
        let held = wrong.reservations.first { $0.value.state == .held }?.key
        if let held { wrong.reservations[held]?.state = .committed }
        var wrongReport = CrashSoak.CycleReport(seed: seed)
        let client = try await ATPConnection.connect(port: server.port, token: "demo-admin")
        try await soak.check(client, model: &wrong, report: &wrongReport)
        await client.close()
        #expect(wrongReport.violations.contains { $0.kind == .onHand && $0.subject == cell.description }, "\(wrongReport.violations)")
        if let held { #expect(wrongReport.violations.contains { $0.kind == .wrongState && $0.subject == held }) }
        server.send(SIGTERM)
        #expect(server.waitForExit() == 0)
        directory.remove()
    }

    @Test(.enabled(if: atpdPath != nil, "the atpd executable is built next to the tests"))
    func aSecondAtpdOnTheSameDataDirectoryIsRefused() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let soak = CrashSoak(atpdPath: try #require(Self.atpdPath), dataDirectory: directory.path)
        let first = try soak.start()
        do {
            _ = try soak.start()
            Issue.record("a second atpd started on \(directory.path)")
        } catch let failure as AtpdProcess.StartFailure {
            #expect(failure.exitStatus == 1)
            #expect(failure.log.contains("is in use by another atpd"), "\(failure.log)")
            #expect(failure.log.contains(directory.path), "the message names the directory: \(failure.log)")
        }
        // The first one is unaffected.
        let client = try await ATPConnection.connect(port: first.port, token: "demo-admin")
        _ = try await client.ping()
        await client.close()
        first.send(SIGTERM)
        #expect(first.waitForExit() == 0)
    }

    @Test(.enabled(if: atpdPath != nil, "the atpd executable is built next to the tests"))
    func sigtermLeavesASnapshotAfterWhichTheNextStartReplaysNothing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let soak = CrashSoak(atpdPath: try #require(Self.atpdPath), dataDirectory: directory.path)
        let first = try soak.start()
        var client = try await ATPConnection.connect(port: first.port, token: "demo-admin")
        let events = (1...50).map { WireEvent(kind: .receive, sku: "SKU-\($0 % 7)", location: "S1", quantity: 3, sequence: UInt64($0)) }
        #expect(try await client.ingest(source: "feed", events: events).appliedCount == 50)
        let request = WireReserveRequest(id: try ReservationID("ORDER-1"), ttlMilliseconds: 3_600_000, mode: .allOrNothing,
                                         lines: [WireReservationLine(sku: "SKU-1", target: .location("S1"), quantity: 2),
                                                 WireReservationLine(sku: "SKU-2", target: .location("S1"), quantity: 1)])
        #expect(try await client.reserve(request).state == .held)
        await client.close()
        first.send(SIGTERM)
        #expect(first.waitForExit() == 0)
        #expect(first.log.firstMatch(of: /snapshot \d+ written/) != nil, "a final snapshot: \(first.log)")

        let second = try soak.start()
        let recovered = second.log.split(separator: "\n").first { $0.contains("recovered") }.map(String.init) ?? ""
        let replayed = recovered.firstMatch(of: /(\d+) journal records replayed/).flatMap { Int($0.1) }
        #expect(replayed == 0, "the next start replays no journal record: \(recovered)")
        #expect(recovered.contains("snapshot"), "\(recovered)")
        client = try await ATPConnection.connect(port: second.port, token: "demo-admin")
        let cells = try await client.query([.cell(sku: "SKU-1", location: "S1")], includeCells: true)
        #expect(cells.answers.first?.cells.first?.reserved == 2)
        #expect(cells.answers.first?.cells.first?.onHand == 24)  // sequences 1, 8, ..., 50: 8 receives of 3
        let replay = try await client.reserve(request)
        #expect(replay.replayed && replay.state == .held)
        await client.close()
        second.send(SIGTERM)
        #expect(second.waitForExit() == 0)
    }
}
