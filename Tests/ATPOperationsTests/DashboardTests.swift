import ATPClient
import ATPOperations
import ATPProtocol
import Foundation
import Testing

/// tools/grafana/atp-dashboard.json is a valid Grafana dashboard over the metric names a live
/// server actually exports.
@Suite struct DashboardTests {
    static let path = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/grafana/atp-dashboard.json").path

    /// The dashboard, parsed.
    static func dashboard() throws -> [String: Any] {
        let data = try #require(FileManager.default.contents(atPath: path), "\(path) is readable")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "a JSON object")
    }

    /// Every PromQL text of the dashboard: panel targets and template variable queries.
    static func queries(_ dashboard: [String: Any]) -> [String] {
        var texts: [String] = []
        for panel in dashboard["panels"] as? [[String: Any]] ?? [] {
            for target in panel["targets"] as? [[String: Any]] ?? [] {
                if let expr = target["expr"] as? String { texts.append(expr) }
            }
        }
        let variables = (dashboard["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        for variable in variables {
            if let definition = variable["definition"] as? String { texts.append(definition) }
        }
        return texts
    }

    /// The `atp_…` names a PromQL text uses.
    static func metricNames(in query: String) -> Set<String> {
        Set(query.matches(of: /atp_[a-z0-9_]+/).map { String($0.output) })
    }

    /// The families ATPMetrics registers only when jemalloc serves the process (`atp_memory_allocator_*`
    /// but the allocator info gauge).
    static func jemallocOnly(_ name: String) -> Bool {
        name.hasPrefix("atp_memory_allocator_") && name != "atp_memory_allocator_info"
    }

    @Test func itIsAGrafanaDashboardWithPanelsAndQueries() throws {
        let dashboard = try Self.dashboard()
        #expect(dashboard["title"] as? String == "atpd")
        #expect(dashboard["uid"] as? String == "atpd-overview")
        #expect((dashboard["schemaVersion"] as? Int ?? 0) >= 36)
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count && Set(ids).count == ids.count, "every panel has its own id")
        let graphs = panels.filter { $0["type"] as? String != "row" }
        #expect(graphs.count >= 20)
        for panel in graphs {
            let title = panel["title"] as? String ?? ""
            #expect(!title.isEmpty)
            let grid = panel["gridPos"] as? [String: Int] ?? [:]
            #expect((grid["w"] ?? 0) > 0 && (grid["h"] ?? 0) > 0 && (grid["x"] ?? 0) + (grid["w"] ?? 0) <= 24,
                    "\(title): a place on the 24-column grid")
            let targets = panel["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty, "\(title) has queries")
            for target in targets {
                let expr = target["expr"] as? String ?? ""
                #expect(!Self.metricNames(in: expr).isEmpty, "\(title): \(expr) reads an atp_ metric")
                #expect(expr.filter { $0 == "(" }.count == expr.filter { $0 == ")" }.count, "\(title): \(expr)")
            }
        }
    }

    @Test func everyMetricItUsesIsExportedAndEveryFamilyIsShown() async throws {
        let fixture = try OperationsFixture()
        // Labelled series exist once something happened: an event from a source, a query, a reply.
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [
            WireEvent(kind: .receive, sku: "SKU-1", location: "DC1", quantity: 1, sequence: 1)])
        _ = try await client.query([.sku("SKU-1")])
        let exposition = try fixture.scrape()
        await client.close()

        var sampleNames = Set<String>()
        for (family, type) in exposition.types where family.hasPrefix("atp_") {
            sampleNames.insert(family)
            if type == "histogram" { sampleNames.formUnion(["_bucket", "_sum", "_count"].map { family + $0 }) }
        }
        let used = Self.queries(try Self.dashboard()).reduce(into: Set<String>()) { $0.formUnion(Self.metricNames(in: $1)) }
        #expect(!used.isEmpty)
        // jemalloc's own families exist only in a process that runs on jemalloc (atpd; this test
        // binary keeps glibc's malloc): AllocatorProcessTests checks them against a real atpd.
        for name in used.sorted() where !Self.jemallocOnly(name) {
            #expect(sampleNames.contains(name), "the dashboard reads \(name), which the server does not export")
        }
        // The other way round: every family exported has a panel. (The journal and snapshot
        // families get theirs when durability exports them.)
        let shown = Set(used.map { $0.replacing(/_(bucket|sum|count)$/, with: "") })
        for family in exposition.types.keys.sorted() where family.hasPrefix("atp_")
            && !family.hasPrefix("atp_journal_") && !family.hasPrefix("atp_snapshot_") {
            #expect(shown.contains(family), "\(family) is exported but not on the dashboard")
        }
    }
}
