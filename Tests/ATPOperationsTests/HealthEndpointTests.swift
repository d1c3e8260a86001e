import ATPOperations
import Testing
import ATPTestSupport

/// /healthz, /readyz and everything else the listener answers, over a real socket.
@Suite struct HealthEndpointTests {
    @Test func healthzAndReadyzAnswerWhileListening() throws {
        let fixture = try OperationsFixture()
        let health = try fixture.get("/healthz")
        #expect(health.status == 200)
        #expect(health.body == "ok\n")
        #expect(health.headers["connection"] == "close")
        let ready = try fixture.get("/readyz")
        #expect(ready.status == 200)
        #expect(ready.body == "ready\n")
        let metrics = try fixture.get("/metrics?debug=1")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
        #expect(Int(metrics.headers["content-length"] ?? "") == metrics.body.utf8.count)
    }

    /// With a metrics token, /metrics answers only a request that carries it (issue 14 item 10);
    /// health and readiness stay open for load balancers.
    @Test func aMetricsTokenClosesMetricsButNotHealth() throws {
        let fixture = try OperationsFixture()
        let guarded = try MetricsHTTPServer(host: "127.0.0.1", port: 0, metrics: fixture.metrics,
                                            readiness: fixture.readiness, bearerToken: "scrape-s3cret")
        defer { guarded.shutdown() }
        let port = try #require(guarded.port)
        func get(_ path: String, authorization: String? = nil) throws -> HTTPAnswer {
            let header = authorization.map { "Authorization: \($0)\r\n" } ?? ""
            return try HTTPAnswer.exchange(port: port, request: "GET \(path) HTTP/1.1\r\nHost: x\r\n\(header)\r\n")
        }
        let anonymous = try get("/metrics")
        #expect(anonymous.status == 401 && anonymous.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(!anonymous.body.contains("atp_cells"))
        #expect(try get("/metrics", authorization: "Bearer wrong").status == 401)
        #expect(try get("/metrics", authorization: "Bearer scrape-s3cre").status == 401)
        #expect(try get("/metrics", authorization: "Basic c2NyYXBlLXMzY3JldA==").status == 401)
        let allowed = try get("/metrics", authorization: "Bearer scrape-s3cret")
        #expect(allowed.status == 200 && allowed.body.contains("# TYPE atp_cells gauge"))
        #expect(try get("/healthz").status == 200 && get("/readyz").status == 200)
    }

    @Test func readyzReportsEveryFailingCondition() throws {
        let fixture = try OperationsFixture()
        let recovered = Flag()
        fixture.readiness.add("recovery") { recovered.isSet ? nil : "replaying the journal" }
        let during = try fixture.get("/readyz")
        #expect(during.status == 503)
        #expect(during.body == "not ready\nrecovery: replaying the journal\n")
        #expect(try fixture.get("/healthz").status == 200)  // alive all the same
        #expect(try fixture.scrape().value("atp_ready") == 0)
        recovered.set()
        #expect(try fixture.get("/readyz").status == 200)
        #expect(try fixture.scrape().value("atp_ready") == 1)
    }

    /// The listener comes up before the engine is recovered: alive, not ready with the reason, no
    /// metrics; once the metrics are attached and the recovery check holds, ready with metrics.
    @Test func aListenerStartedBeforeRecoveryIsAliveButNotReady() throws {
        let readiness = ReadinessChecks()
        let recovered = Flag()
        readiness.add("recovery") { recovered.isSet ? nil : "replaying the journal" }
        let early = try MetricsHTTPServer(host: "127.0.0.1", port: 0, readiness: readiness)
        defer { early.shutdown() }
        let port = try #require(early.port)
        func get(_ path: String) throws -> HTTPAnswer {
            try HTTPAnswer.exchange(port: port, request: "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        #expect(try get("/healthz").status == 200)
        let notReady = try get("/readyz")
        #expect(notReady.status == 503)
        #expect(notReady.body == "not ready\nrecovery: replaying the journal\n")
        #expect(try get("/metrics").status == 503)

        let fixture = try OperationsFixture()  // the recovered engine and its server
        early.attach(fixture.metrics)
        recovered.set()
        #expect(try get("/readyz").status == 200)
        let metrics = try get("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("# TYPE atp_cells gauge"))
    }

    @Test func otherPathsMethodsAndOversizedRequestsAreRefused() throws {
        let fixture = try OperationsFixture()
        #expect(try fixture.get("/").status == 404)
        #expect(try fixture.get("/metricsx").status == 404)
        let post = try HTTPAnswer.exchange(port: fixture.metricsPort,
                                           request: "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        #expect(post.status == 405)
        let head = try HTTPAnswer.exchange(port: fixture.metricsPort, request: "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        // A request larger than the bound: 413, then the connection is closed by the server.
        let huge = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Filler: " + String(repeating: "a", count: 40_000) + "\r\n\r\n"
        let refused = try HTTPAnswer.exchange(port: fixture.metricsPort, request: huge)
        #expect(refused.status == 413)
        let garbage = try HTTPAnswer.exchange(port: fixture.metricsPort, request: "NOT HTTP AT ALL\r\n\r\n")
        #expect(garbage.status == 400)
        // The listener still serves after all that.
        #expect(try fixture.get("/healthz").status == 200)
    }
}

/// A flag a readiness check can read from any thread.
final class Flag: Sendable {
    private let value = Locked(false)
    var isSet: Bool { value.value }
    func set() { value.withLock { $0 = true } }
}
