import ATPClient
@testable import ATPCommandLine
import ATPProtocol
import Foundation
import Testing

/// `atp top --once` against a real server under load.
@Suite struct TopCommandTests {
    @Test func onceShowsRatesFromTwoReadings() async throws {
        let fixture = try OperationsFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [
            WireEvent(kind: .receive, sku: "SKU-1", location: "DC1", quantity: 10, sequence: 1)])
        // Keep queries and events flowing while top takes its two readings.
        let load = Task {
            var sequence: UInt64 = 2
            while !Task.isCancelled {
                _ = try await client.query([.cell(sku: "SKU-1", location: "DC1"), .sku("SKU-1")])
                _ = try await client.ingest(source: "wms", events: [
                    WireEvent(kind: .receive, sku: "SKU-1", location: "DC1", quantity: 1, sequence: sequence)])
                sequence += 1
            }
        }
        let output = CapturedOutput()
        // The whole suite runs in parallel on as few as 2 cores: the default 10 s connect timeout
        // once ran out there (this test is about the rates, not the connect time).
        let status = await ATPCommandLine.run(
            arguments: ["top", "--once", "--interval-ms", "300", "--port", "\(fixture.port)", "--json", "--timeout-ms", "60000"],
            context: CommandContext(output: output, environment: [:]))
        load.cancel()
        _ = await load.result
        #expect(status == .ok, "stderr: \(output.standardError)")
        let data = Data(output.standardOutput.utf8)
        let frame = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect((frame["eventsPerSecond"] as? Int ?? 0) > 0)
        #expect((frame["queryItemsPerSecond"] as? Int ?? 0) > 0)
        #expect((frame["queryRequestsPerSecond"] as? Int ?? 0) > 0)
        #expect((frame["queryP99Microseconds"] as? Int ?? 0) > 0)
        #expect(frame["connectionsOpen"] as? Int == 2)  // the load's and top's own
        #expect(frame["cells"] as? Int == 1)
        #expect(output.standardOutput.split(separator: "\n").count == 1)  // one frame, one JSON line

        let human = CapturedOutput()
        let humanStatus = await ATPCommandLine.run(
            arguments: ["top", "--once", "--interval-ms", "100", "--port", "\(fixture.port)"],
            context: CommandContext(output: human, environment: [:]))
        #expect(humanStatus == .ok)
        #expect(human.standardOutput.hasPrefix("atp top 127.0.0.1:\(fixture.port): every"))
        #expect(human.standardOutput.contains("events/s"))
        #expect(human.standardOutput.contains("query p99"))
        #expect(!human.standardOutput.contains("\u{1B}["))  // --once draws no screen control codes
        await client.close()
    }

    @Test func aBadIntervalIsAUsageError() async {
        let output = CapturedOutput()
        let status = await ATPCommandLine.run(arguments: ["top", "--interval-ms", "5"],
                                              context: CommandContext(output: output, environment: [:]))
        #expect(status == .usage)
        #expect(output.standardError.contains("--interval-ms must be from 100 to 3600000"))
    }
    /// A frame's figures from two readings one second apart, exactly.
    @Test func aFrameIsTheDeltasOverTheInterval() {
        let start = ContinuousClock.now
        let bucketNames = ["10", "25", "50", "100", "inf"].map { "server.queryLatency.le.\($0)" }
        var old = TopSample(values: ["events.applied": 1_000, "events.rejected": 10, "queries.answered": 50,
                                     "server.queryLatency.count": 20, "reservations.granted": 5,
                                     "reservations.refused": 1, "reservations.committed": 2,
                                     "server.frames.received": 100, "server.connections.open": 3,
                                     "server.requests.inFlight": 1, "inbox.depth.max": 0], at: start)
        for name in bucketNames { old.values[name] = 20 }
        var new = old
        new.at = start + .seconds(1)
        new.values["events.applied"] = 4_000
        new.values["events.rejected"] = 15
        new.values["queries.answered"] = 250
        new.values["reservations.granted"] = 9
        new.values["reservations.partial"] = 1
        new.values["reservations.committed"] = 5
        new.values["server.frames.received"] = 300
        new.values["server.requests.inFlight"] = 6
        new.values["inbox.depth.max"] = 17
        new.values["cells.count"] = 42
        new.values["snapshot.ageSeconds"] = 30
        // 100 query requests in the interval: 90 within 10 µs, 9 more within 25 µs, 1 within 50 µs.
        new.values["server.queryLatency.count"] = 120
        for (name, count) in zip(bucketNames, [110, 119, 120, 120, 120]) { new.values[name] = Int64(count) }

        let frame = TopFrame(from: old, to: new)
        #expect(frame.eventsPerSecond == 3_000)
        #expect(frame.rejectedPerSecond == 5)
        #expect(frame.queryItemsPerSecond == 200)
        #expect(frame.queryRequestsPerSecond == 100)
        #expect(frame.reservationsPerSecond == 5)  // 4 granted, 1 partial
        #expect(frame.commitsAndReleasesPerSecond == 3)
        #expect(frame.framesPerSecond == 200)
        #expect(frame.queryP99Microseconds == 25)
        #expect(frame.inboxDepthMax == 17)
        #expect(frame.requestsInFlight == 5)  // top's own stats request is not counted
        #expect(frame.cells == 42)
        #expect(frame.snapshotAgeSeconds == 30)
        #expect(frame.lines(endpoint: "h:1").contains { $0.hasPrefix("snapshot age") && $0.hasSuffix("30 s") })
        // No query in the interval: no p99; no snapshot statistic: no age.
        var idle = old
        idle.at = start + .seconds(1)
        #expect(TopFrame(from: old, to: idle).queryP99Microseconds == nil)
        #expect(TopFrame(from: old, to: idle).snapshotAgeSeconds == nil)
        #expect(TopFrame(from: old, to: idle).eventsPerSecond == 0)
    }
}
