import ATPClient
import ATPOperations
import ATPProtocol
import ATPServer
import Foundation
import Logging
import Testing
import ATPTestSupport

/// The key=value log lines and the rate-limited reports of refused requests.
@Suite struct LoggingTests {
    @Test func aLineHasTimeLevelLabelMessageAndSortedMetadata() {
        let time = Date(timeIntervalSince1970: 1_700_000_000.25)
        let line = KeyValueLogHandler.format(time: time, level: .info, label: "atpd", message: "recovered",
                                             metadata: ["cells": "5000", "durationMilliseconds": "12",
                                                        "path": "/var/lib/atp data", "note": "say \"hi\""])
        #expect(line == #"2023-11-14T22:13:20.250Z info atpd: recovered cells=5000 durationMilliseconds=12 note="say \"hi\"" path="/var/lib/atp data""#)
    }

    @Test func theHandlerHonoursItsLevelAndMergesMetadata() {
        let lines = Locked<[String]>([])
        var logger = Logger(label: "test") { label in
            KeyValueLogHandler(label: label, level: .notice, sink: { line in lines.withLock { $0.append(line) } })
        }
        logger[metadataKey: "pid"] = "42"
        logger.info("hidden at notice")
        logger.notice("shown", metadata: ["count": "3"])
        logger.error("failed", error: TestFailure("disk full"))
        #expect(lines.value.count == 2)
        #expect(lines.value.first?.hasSuffix(" notice test: shown count=3 pid=42") == true)
        #expect(lines.value.last?.hasSuffix(#" error test: failed error="disk full" pid=42"#) == true)
    }

    @Test func refusedRequestsAreReportedOncePerClassAndInterval() async throws {
        let fixture = try OperationsFixture()
        let lines = Locked<[String]>([])
        let logger = Logger(label: "atpd") { label in
            KeyValueLogHandler(label: label, level: .info, sink: { line in lines.withLock { $0.append(line) } })
        }
        let refusals = RefusalLogger(metrics: fixture.server.requestMetrics, logger: logger, intervalSeconds: 10)
        #expect(refusals.report().isEmpty)
        for _ in 0..<3 {
            await #expect(throws: (any Error).self) { _ = try await fixture.connect(token: "wrong") }
        }
        let ingester = try await fixture.connect(token: "demo-ingest")
        for _ in 0..<2 {
            await #expect(throws: (any Error).self) { _ = try await ingester.query([.sku("SKU-1")]) }
        }
        let reported = refusals.report()
        #expect(reported.map(\.code) == [.unauthenticated, .forbidden])
        #expect(reported.map(\.count) == [3, 2])
        #expect(lines.value.count == 2)
        #expect(lines.value.first?.contains(" notice atpd: refused 3 frames with unauthenticated in the last 10 s") == true)
        #expect(lines.value.last?.contains("refused 2 frames with forbidden in the last 10 s") == true)
        // Nothing new: no line.
        #expect(refusals.report().isEmpty)
        #expect(lines.value.count == 2)
        await ingester.close()
    }
    /// Running on its timer, a burst of refusals of one class gives one line per interval, never
    /// one per request, and the lines add up to the burst.
    @Test func aBurstOfRefusalsIsOneLinePerIntervalNotOnePerRequest() async throws {
        let fixture = try OperationsFixture()
        let lines = Locked<[String]>([])
        let logger = Logger(label: "atpd") { label in
            KeyValueLogHandler(label: label, level: .info, sink: { line in lines.withLock { $0.append(line) } })
        }
        let refusals = RefusalLogger(metrics: fixture.server.requestMetrics, logger: logger, intervalSeconds: 1)
        let started = ContinuousClock.now
        refusals.start()
        let burst = 30
        for _ in 0..<burst {
            await #expect(throws: (any Error).self) { _ = try await fixture.connect(token: "wrong") }
        }
        // The timer reports within a second; wait for its line rather than a fixed time.
        let deadline = ContinuousClock.now + .seconds(5)
        while lines.value.isEmpty && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        refusals.stop()
        let elapsedSeconds = Int((ContinuousClock.now - started).components.seconds)
        let reported = lines.value
        #expect(!reported.isEmpty)
        #expect(reported.count <= elapsedSeconds + 2, "one line per interval at most: \(reported)")
        var total = 0
        for line in reported {
            #expect(line.contains(" notice atpd: refused ") && line.contains(" frames with unauthenticated in the last 1 s"))
            let count = line.firstMatch(of: /\ count=(\d+)/).flatMap { Int($0.1) } ?? 0
            total += count
        }
        #expect(total == burst)
    }
}
