import ATPClient
import ATPLedger
import ATPProtocol
import Foundation
import Synchronization
import ATPTestSupport
import Testing

/// Clean shutdown (issue 3): stop accepting, finish the requests already read, then close. In
/// process (ATPServer.shutdown) and as a process (atpd and SIGTERM / a second signal).
@Suite struct ShutdownTests {
    static func receive(_ sku: String, _ sequence: UInt64) -> WireEvent {
        WireEvent(kind: .receive, sku: sku, location: "S1", quantity: 1, sequence: sequence)
    }

    @Test func shutdownFinishesTheRequestsItReadAnswersEachOnceAndRefusesNewConnections() async throws {
        let fixture = try ServerFixture { $0.limits.inFlightRequestsMax = 4 }
        let client = try await fixture.connect()
        let requestCount = 300
        let eventsPerRequest = 50
        let outcomes = Mutex<[Int: Result<Reply, ATPClientError>]>([:])
        let allAnswered = AsyncStream<Void>.makeStream()
        let stopped = DispatchSemaphore(value: 0)
        // Every request goes out at once; the server reads 4 at a time. The first reply starts the
        // shutdown (blocking, so on a thread of its own) while the rest wait to be read.
        client.send((0..<requestCount).map { index in
            let events = (0..<eventsPerRequest).map { Self.receive("SKU-\(index)", UInt64(index * eventsPerRequest + $0 + 1)) }
            return (.ingest(IngestRequest(source: "wms", events: events)), { result in
                let count = outcomes.withLock { outcomes -> Int in
                    #expect(outcomes[index] == nil, "request \(index) completed twice")
                    outcomes[index] = result
                    return outcomes.count
                }
                if count == 1 {
                    Thread.detachNewThread {
                        fixture.server.shutdown()
                        stopped.signal()
                    }
                }
                if count == requestCount { allAnswered.continuation.yield() }
            })
        })
        for await _ in allAnswered.stream { break }
        let results = outcomes.withLock { $0 }
        var succeeded = 0
        for index in 0..<requestCount {
            switch results[index] {
            case .success(.ingest(let reply)):
                succeeded += 1
                #expect(reply.appliedCount == eventsPerRequest && reply.rejections.isEmpty, "request \(index) whole")
            case .failure:
                break  // never read: refused by the close, nothing of it applied (checked below)
            case let other:
                Issue.record("request \(index): \(String(describing: other))")
            }
        }
        #expect(succeeded >= 1, "the requests read before shutdown are answered")
        #expect(succeeded < requestCount, "the server stops reading once shutdown starts")
        // Answered requests come first: the server reads in order and finishes what it read.
        for index in 0..<succeeded {
            if case .success = results[index] {} else { Issue.record("request \(index) failed before a later one succeeded") }
        }
        stopped.wait()
        // Every request the server read was answered: frames read = hello + requests read, and
        // the requests read are exactly the ones that succeeded.
        var counters: [String: Int64] = [:]
        for entry in fixture.server.serverStatistics() {
            switch entry.value {
            case .unsigned(let value): counters[entry.name] = Int64(clamping: value)
            case .signed(let value): counters[entry.name] = value
            }
        }
        #expect(counters["server.frames.received"] == Int64(1 + succeeded))
        #expect(counters["server.requests.answered"] == Int64(succeeded))
        #expect(counters["server.requests.inFlight"] == 0)
        await #expect(throws: (any Error).self) { _ = try await fixture.connect() }
        await client.close()
    }

    // MARK: - atpd as a process

    /// The `atpd` executable built next to this test bundle, or nil.
    static var atpdPath: String? {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("atpd").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }

    /// Starts atpd on a free port; returns the process, its output pipe and the port it announced.
    static func startAtpd(_ path: String) throws -> (Process, Pipe, Int) {
        let started = try AtpdProcess.start(
            path, arguments: ["--port", "0", "--shards", "4", "--workers", "1", "--io-threads", "1"],
            environment: ["ATPD_TOKENS": "demo-ingest:ingest:demo-ingest"]
        ) { text in
            // "... info atpd: listening address=[IPv4]127.0.0.1/127.0.0.1:46515"
            text.firstMatch(of: /listening[^\n]*:(\d+)\n/).flatMap { Int($0.1) }
        }
        return (started.process, started.output, started.announcement)
    }

    @Test(.enabled(if: atpdPath != nil, "the atpd executable is built next to the tests"))
    func sigtermDrainsAndExitsZero() async throws {
        let (process, output, port) = try Self.startAtpd(try #require(Self.atpdPath))
        defer { if process.isRunning { process.terminate() } }  // when the test throws half-way
        let client = try await ATPConnection.connect(port: port, token: "demo-ingest")
        let reply = try await client.ingest(source: "feed", events: [Self.receive("SKU-1", 1)])
        #expect(reply.appliedCount == 1)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        let log = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("stopped"), "atpd says it stopped: \(log)")
        await client.close()
    }
}
