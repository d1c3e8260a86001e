import ATPClient
import ATPCommandLine
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
        let status = await ATPCommandLine.run(
            arguments: ["top", "--once", "--interval-ms", "300", "--port", "\(fixture.port)", "--json"],
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
}
