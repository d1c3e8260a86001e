import ATPClient
import ATPCommandLine
import ATPLedger
import ATPProtocol
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The `atp` command line end to end: each command runs in-process against a real server on
/// loopback (ServerFixture), its stdout and stderr captured, its JSON parsed back, and its exit
/// status checked; the server's state is checked through the Swift client.
@Suite final class CLITests {
    /// This test's temporary files; removed when the test ends.
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("atp-cli-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    // MARK: - Helpers

    /// What one command line produced.
    struct Run {
        var status: ATPExitStatus
        var standardOutput: String
        var standardError: String

        /// Standard output parsed as one JSON object.
        func object(sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
            let value = try JSONSerialization.jsonObject(with: Data(standardOutput.utf8))
            return try #require(value as? [String: Any], "not a JSON object: \(standardOutput)", sourceLocation: sourceLocation)
        }

        /// Standard output parsed as one JSON array of objects.
        func array(sourceLocation: SourceLocation = #_sourceLocation) throws -> [[String: Any]] {
            let value = try JSONSerialization.jsonObject(with: Data(standardOutput.utf8))
            return try #require(value as? [[String: Any]], "not a JSON array: \(standardOutput)", sourceLocation: sourceLocation)
        }

        /// Standard output split into lines.
        var lines: [String] { standardOutput.split(separator: "\n").map(String.init) }
    }

    /// Runs `atp ARGUMENTS --port PORT` in-process.
    static func atp(_ arguments: [String], port: Int, environment: [String: String] = [:],
                    errorIsTerminal: Bool = false) async -> Run {
        let output = CapturedOutput(errorIsTerminal: errorIsTerminal)
        let status = await ATPCommandLine.run(arguments: arguments + ["--port", String(port)],
                                              context: CommandContext(output: output, environment: environment))
        return Run(status: status, standardOutput: output.standardOutput, standardError: output.standardError)
    }

    /// Writes `text` to a new file in this test's directory and returns its path.
    func temporaryFile(_ text: String, extension fileExtension: String) throws -> String {
        let url = directory.appendingPathComponent("\(UUID().uuidString).\(fileExtension)")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static func receive(_ sku: String, _ location: String, _ quantity: Int64, _ sequence: UInt64) -> WireEvent {
        WireEvent(kind: .receive, sku: sku, location: location, quantity: quantity, sequence: sequence)
    }

    /// The cell's buckets as the server sees them.
    static func cell(_ client: ATPConnection, _ sku: String, _ location: String) async throws -> WireCell? {
        try await client.query([.cell(sku: sku, location: location)], includeCells: true).answers.first?.cells.first
    }

    static func int(_ value: Any?) -> Int? { (value as? NSNumber)?.intValue }

    // MARK: - ping, stats

    @Test func pingPrintsRoundTripsAndJSONWithTheServersClock() async throws {
        let fixture = try ServerFixture()
        let human = await Self.atp(["ping", "--count", "3"], port: fixture.port)
        #expect(human.status == .ok)
        #expect(human.lines.first == "connected to 127.0.0.1:\(fixture.port): protocol 2, roles query | reserve | ingest | admin")
        #expect(human.lines.filter { $0.hasPrefix("reply from 127.0.0.1:\(fixture.port): seq=") }.count == 3)
        #expect(human.lines.last?.hasPrefix("3 pings: min ") == true)
        #expect(human.standardError.isEmpty)

        let json = await Self.atp(["--json", "ping", "--count", "2"], port: fixture.port)
        #expect(json.status == .ok)
        let object = try json.object()
        #expect(Self.int(object["count"]) == 2)
        #expect((object["roundTripsMicroseconds"] as? [Any])?.count == 2)
        #expect(Self.int(object["serverTimeMilliseconds"]) == 1_700_000_000_000, "the fixture's manual clock")
        #expect(object["roles"] as? [String] == ["query", "reserve", "ingest", "admin"])
        #expect(try #require(Self.int(object["minMicroseconds"])) <= Self.int(object["maxMicroseconds"]) ?? -1)
    }

    @Test func statsPrintsTheServersCountersFilteredByPrefix() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [Self.receive("SKU-1", "DC1", 5, 1), Self.receive("SKU-1", "DC1", 0, 2)])
        let json = await Self.atp(["stats", "events.", "--json"], port: fixture.port)
        #expect(json.status == .ok)
        let stats = try json.object()
        #expect(!stats.isEmpty && stats.keys.allSatisfy { $0.hasPrefix("events.") })
        #expect(Self.int(stats["events.applied"]) == 1)
        #expect(Self.int(stats["events.rejected"]) == 1)
        #expect(Self.int(stats["events.rejected.quantityNotPositive"]) == 1)

        let human = await Self.atp(["stats", "events.applied"], port: fixture.port)
        #expect(human.status == .ok)
        #expect(human.lines.first?.hasPrefix("NAME") == true)
        #expect(human.lines.contains { $0.hasPrefix("events.applied ") && $0.hasSuffix(" 1") })
        await client.close()
    }

    /// `atp stats process.memory.` names the allocator and shows ratios beside their thousandths
    /// (the in-process server of this test binary runs on glibc's malloc).
    @Test func statsShowsTheAllocatorByNameAndRatios() async throws {
        let fixture = try ServerFixture()
        let human = await Self.atp(["stats", "process.memory."], port: fixture.port)
        #expect(human.status == .ok)
        #expect(human.lines.contains { $0.hasPrefix("process.memory.allocator ") && $0.hasSuffix(" 0 (glibc)") }, "\(human.lines)")
        #expect(human.lines.contains { $0.hasPrefix("process.memory.fragmentationPermille ")
            && $0.range(of: #" \d+ \(\d+\.\d{3}\)$"#, options: .regularExpression) != nil }, "\(human.lines)")
        let json = try await Self.atp(["stats", "process.memory.", "--json"], port: fixture.port).object()
        #expect(Self.int(json["process.memory.allocator"]) == 0)
        #expect((Self.int(json["process.memory.rssBytes"]) ?? 0) > 0)
    }

    // MARK: - query

    @Test func queryCellSKUAndChannelShowWhatTheServerHolds() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [
            Self.receive("SKU-1", "DC1", 20, 1), Self.receive("SKU-1", "S1", 6, 2),
            WireEvent(kind: .damage, sku: "SKU-1", location: "S1", quantity: 1, sequence: 3),
        ])
        try await client.setChannel(WireChannelDefinition(name: "web", bufferUnits: 3, capPercent: 50, locations: ["DC1", "S1"]))

        let cell = await Self.atp(["query", "cell", "SKU-1", "S1", "--json"], port: fixture.port)
        #expect(cell.status == .ok)
        let cellObject = try cell.object()
        #expect(cellObject["kind"] as? String == "cell" && cellObject["location"] as? String == "S1")
        #expect(cellObject["exists"] as? Bool == true)
        #expect(Self.int(cellObject["sellable"]) == 5)
        let cells = try #require(cellObject["cells"] as? [[String: Any]])
        #expect(cells.count == 1 && Self.int(cells[0]["onHand"]) == 6 && Self.int(cells[0]["damaged"]) == 1)

        let sku = await Self.atp(["query", "sku", "SKU-1", "--cells", "--json"], port: fixture.port)
        let skuObject = try sku.object()
        #expect(Self.int(skuObject["sellable"]) == 25)
        #expect((skuObject["cells"] as? [[String: Any]])?.map { $0["location"] as? String } == ["DC1", "S1"])
        let skuSummary = await Self.atp(["query", "sku", "SKU-1", "--json"], port: fixture.port)
        #expect(try skuSummary.object()["cells"] == nil, "no cells without --cells")

        let channel = await Self.atp(["query", "channel", "SKU-1", "web", "--json"], port: fixture.port)
        #expect(Self.int(try channel.object()["sellable"]) == 11, "floor((20 + 5 - 3) * 50 / 100)")

        let human = await Self.atp(["query", "channel", "SKU-1", "web", "--cells"], port: fixture.port)
        #expect(human.status == .ok)
        #expect(human.lines.first == "SKU-1 in channel web: sellable 11, projected 11")
        #expect(human.lines.dropFirst().first?.hasPrefix("LOCATION") == true)
        #expect(human.lines.count == 4, "summary, header, DC1, S1")

        let unknown = await Self.atp(["query", "cell", "NOPE", "S1"], port: fixture.port)
        #expect(unknown.status == .ok, "an unknown SKU is an answer, not an error")
        #expect(unknown.lines.first?.contains("(unknown: ") == true)
        await client.close()
    }

    @Test func querySKUsSplitsAFileIntoPipelinedFramesAndKeepsItsOrder() async throws {
        let fixture = try ServerFixture { $0.limits.batchItemsMax = 3 }
        let client = try await fixture.connect()
        for first in stride(from: 1, through: 10, by: 3) {
            let events = (first...min(first + 2, 10)).map { Self.receive("SKU-\($0)", "DC1", Int64($0), UInt64($0)) }
            #expect(try await client.ingest(source: "wms", events: events).appliedCount == UInt32(events.count))
        }
        try await client.setChannel(WireChannelDefinition(name: "web", bufferUnits: 1, locations: ["DC1"]))
        let skus = (1...10).reversed().map { "SKU-\($0)" } + ["NOPE"]
        let path = try temporaryFile("# catalogue\n" + skus.joined(separator: "\n  \n") + "\r\n", extension: "txt")

        let run = await Self.atp(["query", "skus", "--file", path, "--json"], port: fixture.port)
        #expect(run.status == .ok)
        let answers = try run.array()
        #expect(answers.map { $0["sku"] as? String } == skus, "answers in file order across 4 frames of at most 3")
        #expect(answers.map { Self.int($0["sellable"]) } == (1...10).reversed().map { $0 } + [0])
        #expect(answers.map { $0["exists"] as? Bool } == Array(repeating: true, count: 10) + [false])
        let queried = try await client.stat("queries.answered")
        #expect(queried == 11)

        let viaChannel = await Self.atp(["query", "skus", "--file", path, "--channel", "web"], port: fixture.port)
        #expect(viaChannel.status == .ok)
        #expect(viaChannel.lines.first?.hasPrefix("SKU") == true && viaChannel.lines.first?.contains("CHANNEL") == true)
        #expect(viaChannel.lines.contains { $0.hasPrefix("SKU-10 ") && $0.contains(" web ") && $0.contains(" 9 ") })
        #expect(viaChannel.lines.last == "11 SKUs")

        let bad = try temporaryFile("SKU-1\n\(String(repeating: "x", count: 65))\n", extension: "txt")
        let refused = await Self.atp(["query", "skus", "--file", bad], port: fixture.port)
        #expect(refused.status == .usage)
        #expect(refused.standardError.hasPrefix("atp: \(bad):2: SKU name is 65 bytes long"))
        #expect(try await client.stat("queries.answered") == 22, "11 per run; nothing of the refused file was asked")
        await client.close()
    }

    // MARK: - reserve, commit, release

    @Test func reserveCommitAndReleaseChangeTheLedgerAndSayWhatTheyGot() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [
            Self.receive("SKU-1", "DC1", 10, 1), Self.receive("SKU-1", "S1", 4, 2), Self.receive("SKU-2", "S1", 3, 3),
        ])
        try await client.setChannel(WireChannelDefinition(name: "web", locations: ["S1", "DC1"]))

        let held = await Self.atp(["reserve", "ORDER-1", "--line", "SKU-1@channel:web=6", "--line", "SKU-2@S1=2",
                                   "--ttl-ms", "60000", "--json"], port: fixture.port)
        #expect(held.status == .ok)
        #expect(held.standardError.isEmpty)
        let heldObject = try held.object()
        #expect(heldObject["state"] as? String == "held" && heldObject["result"] as? String == "ok")
        #expect(Self.int(heldObject["expiresAtMilliseconds"]) == 1_700_000_060_000)
        let lines = try #require(heldObject["lines"] as? [[String: Any]])
        #expect(lines.map { $0["sku"] as? String } == ["SKU-1", "SKU-2"])
        #expect(lines[0]["channel"] as? String == "web" && lines[0]["split"] as? Bool == true)
        let allocations = try #require(lines[0]["allocations"] as? [[String: Any]])
        #expect(allocations.map { $0["location"] as? String } == ["S1", "DC1"], "split across the channel in priority order")
        #expect(allocations.map { Self.int($0["quantity"]) } == [4, 2])
        #expect(try await Self.cell(client, "SKU-1", "S1")?.reserved == 4)

        let again = await Self.atp(["reserve", "ORDER-1", "--line", "SKU-1@channel:web=6", "--line", "SKU-2@S1=2"],
                                   port: fixture.port)
        #expect(again.status == .ok)
        #expect(again.lines.first?.contains("replayed") == true)

        let committed = await Self.atp(["commit", "ORDER-1", "--json"], port: fixture.port)
        #expect(committed.status == .ok)
        #expect(try committed.object()["state"] as? String == "committed")
        #expect(try await Self.cell(client, "SKU-1", "S1")?.committed == 4)

        let released = await Self.atp(["release", "ORDER-1"], port: fixture.port)
        #expect(released.status == .ok)
        #expect(released.lines.first == "reservation ORDER-1: released")
        #expect(try await Self.cell(client, "SKU-1", "S1")?.committed == 0)
        await client.close()
    }

    @Test func refusedPartialAndUnknownReservationsEndWithStatusOne() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        _ = try await client.ingest(source: "wms", events: [Self.receive("SKU-1", "S1", 3, 1), Self.receive("SKU-1", "S2", 3, 2)])
        try await client.setChannel(WireChannelDefinition(name: "web", locations: ["S1", "S2"]))

        let refused = await Self.atp(["reserve", "R-1", "--line", "SKU-1@S1=5"], port: fixture.port)
        #expect(refused.status == .partial)
        #expect(refused.lines.first == "reservation R-1: refused")
        #expect(refused.standardError == "atp: reservation R-1 refused: nothing was granted\n")
        #expect(try await Self.cell(client, "SKU-1", "S1")?.reserved == 0, "all-or-nothing: nothing held")

        let notSplit = await Self.atp(["reserve", "R-2", "--line", "SKU-1@channel-nosplit:web=5", "--json"], port: fixture.port)
        #expect(notSplit.status == .partial, "5 units are sellable in web, but no single location has 5")
        #expect(try notSplit.object()["state"] as? String == "refused")

        let partial = await Self.atp(["reserve", "R-3", "--line", "SKU-1@location:S1=5", "--partial", "--json"], port: fixture.port)
        #expect(partial.status == .partial)
        let line = try #require((try partial.object()["lines"] as? [[String: Any]])?.first)
        #expect(Self.int(line["requested"]) == 5 && Self.int(line["granted"]) == 3)
        #expect(partial.standardError == "atp: reservation R-3 partially granted: 3 of 5 units\n")

        let unknownCommit = await Self.atp(["commit", "NOPE"], port: fixture.port)
        #expect(unknownCommit.status == .partial)
        #expect(unknownCommit.standardError == "atp: commit NOPE: unknown reservation\n")
        let unknownRelease = await Self.atp(["release", "NOPE", "--json"], port: fixture.port)
        #expect(unknownRelease.status == .partial)
        #expect(try unknownRelease.object()["result"] as? String == "unknownReservation")
        let refusedCommit = await Self.atp(["commit", "R-1"], port: fixture.port)
        #expect(refusedCommit.status == .partial, "commit of a refused reservation: notHeld")
        await client.close()
    }

    // MARK: - ingest

    @Test func ingestOfACSVFileReportsRejectionsByFileLine() async throws {
        let fixture = try ServerFixture()
        let path = try temporaryFile("""
            # receipts from the warehouse
            receive,SKU-1,DC1,10,1
            receive, SKU-1 ,S1,5,2,,,1700000000000

            transferOut,SKU-1,DC1,3,3,S1
            ship,SKU-1,S1,1,4,,ORDER-9
            receive,SKU-1,DC1,0,5
            "receive","SKU,\"\"2\"\"",DC1,4,6
            receive,SKU-1,DC1,10,1
            adjust,SKU-1,DC1,0,7
            """, extension: "csv")
        let run = await Self.atp(["ingest", path, "--source", "wms", "--json"], port: fixture.port)
        #expect(run.status == .partial)
        let summary = try run.object()
        #expect(Self.int(summary["eventsSent"]) == 8)
        #expect(Self.int(summary["applied"]) == 5)
        #expect(Self.int(summary["duplicates"]) == 1)
        #expect(Self.int(summary["rejected"]) == 2)
        #expect(summary["format"] as? String == "csv" && summary["source"] as? String == "wms")
        let byReason = try #require(summary["rejectedByReason"] as? [String: Any])
        #expect(Self.int(byReason["quantityNotPositive"]) == 1 && Self.int(byReason["deltaZero"]) == 1)
        let rejections = try #require(summary["rejections"] as? [[String: Any]])
        #expect(rejections.map { Self.int($0["line"]) } == [7, 10], "file line numbers, comments and blanks counted")
        #expect(rejections.map { $0["reason"] as? String } == ["quantityNotPositive", "deltaZero"])
        #expect(run.standardError == "atp: 2 of 8 events rejected\n")

        let client = try await fixture.connect()
        #expect(try await Self.cell(client, "SKU-1", "DC1")?.onHand == 7)
        #expect(try await Self.cell(client, "SKU-1", "S1")?.onHand == 4)
        #expect(try await Self.cell(client, "SKU-1", "S1")?.inbound == 3)
        #expect(try await Self.cell(client, "SKU,\"2\"", "DC1")?.onHand == 4, "quoted field with a comma and quotes")

        let human = await Self.atp(["ingest", path, "--source", "wms"], port: fixture.port)
        #expect(human.status == .partial)
        #expect(human.lines.first?.hasPrefix("ingested \(path) (csv) as source wms: 8 events in 1 batch") == true)
        #expect(human.lines.contains("  duplicates  6"), "a resend: what was applied comes back as duplicates")
        #expect(human.lines.contains("  line 7: quantityNotPositive: quantity must be greater than 0"))
        await client.close()
    }

    @Test func ingestOfAHeaderedCSVFileTakesEveryEventField() async throws {
        let fixture = try ServerFixture()
        let path = try temporaryFile("""
            sequence,kind,sku,location,quantity,bucket,outcome,reason_code,count_damaged,into_quarantine
            1,receive,SKU-1,DC1,10,,,,,true
            2,adjust,SKU-1,DC1,2,damaged,,42,,
            3,disposition,SKU-1,DC1,4,,scrap,,,
            4,count,SKU-1,DC1,20,,,,1,
            """, extension: "data")
        let run = await Self.atp(["ingest", path, "--source", "wms", "--format", "csv", "--json"], port: fixture.port)
        #expect(run.status == .ok, "\(run.standardError)")
        #expect(Self.int(try run.object()["applied"]) == 4)
        let client = try await fixture.connect()
        let cell = try #require(try await Self.cell(client, "SKU-1", "DC1"))
        // receive 10 into quarantine; damaged += 2; disposition scrap 4: quarantine 6, onHand 6; count 20, damaged 1.
        #expect(cell.onHand == 20 && cell.damaged == 1 && cell.quarantine == 6)
        await client.close()
    }

    @Test func ingestOfJSONLinesGoesInManyPipelinedBatchesAndResendsAsDuplicates() async throws {
        let fixture = try ServerFixture()
        let lines = (1...250).map { index in
            #"{"kind":"receive","sku":"SKU-\#(index % 10)","location":"DC\u0031","quantity":2,"sequence":\#(index)}"#
        }
        let path = try temporaryFile(lines.joined(separator: "\n") + "\n\n", extension: "jsonl")
        let run = await Self.atp(["ingest", path, "--source", "feed", "--batch", "7", "--json"], port: fixture.port)
        #expect(run.status == .ok)
        let summary = try run.object()
        #expect(Self.int(summary["eventsSent"]) == 250 && Self.int(summary["batches"]) == 36)
        #expect(Self.int(summary["applied"]) == 250 && Self.int(summary["rejected"]) == 0)
        #expect((summary["rejections"] as? [Any])?.isEmpty == true)
        let client = try await fixture.connect()
        #expect(try await Self.cell(client, "SKU-3", "DC1")?.onHand == 50, "\\u0031 is 1: 25 events of 2 units")

        let resend = await Self.atp(["ingest", path, "--source", "feed", "--json"], port: fixture.port)
        #expect(resend.status == .ok, "duplicates are not rejections")
        #expect(Self.int(try resend.object()["duplicates"]) == 250)
        #expect(try await Self.cell(client, "SKU-3", "DC1")?.onHand == 50)
        await client.close()
    }

    @Test func ingestRefusesAFileWithABadLineAndSendsNothingOfIt() async throws {
        let fixture = try ServerFixture()
        let client = try await fixture.connect()
        let cases: [(text: String, ext: String, line: Int, message: String)] = [
            ("receive,SKU-1,DC1,10,1\nreceive,SKU-1,DC1,ten,2\n", "csv", 2, #"quantity "ten" is not a whole number"#),
            ("receive,SKU-1,DC1,10,1\n\nsell,SKU-1,DC1,1,2\n", "csv", 3, #"unknown kind "sell""#),
            ("receive,SKU-1,DC1,10,1\ntransferOut,SKU-1,DC1,1,2\n", "csv", 2, "transferOut needs to_location"),
            ("receive,SKU-1,DC1,10,1,S2\n", "csv", 1, "to_location is only for transferOut events, not receive"),
            ("kind,sku,location,quantity\n", "csv", 1, "the header lacks the column sequence"),
            (#"{"kind":"receive","sku":"A","location":"L","quantity":1,"sequence":1}"# + "\n"
                + #"{"kind":"receive","sku":"A","location":"L","quantity":1,"sequnce":2}"#, "jsonl", 2, #"unknown key "sequnce""#),
            (#"{"kind":"receive","sku":"A","location":"L","quantity":1.5,"sequence":1}"#, "jsonl", 1,
             "quantity must be a whole number"),
            (#"{"kind":"receive","sku":"A","location":"L","quantity":1,"sequence":-1}"#, "jsonl", 1,
             "sequence -1 is out of range"),
            ("{\"kind\":\"receive\",\"sku\":\"A\"", "jsonl", 1, "invalid JSON at column"),
        ]
        for (text, ext, line, message) in cases {
            let path = try temporaryFile(text, extension: ext)
            let run = await Self.atp(["ingest", path, "--source", "wms"], port: fixture.port)
            #expect(run.status == .usage, "\(text)")
            #expect(run.standardError.hasPrefix("atp: \(path):\(line): \(message)"), "\(run.standardError)")
            #expect(run.standardOutput.isEmpty)
        }
        let stats = try await client.statsByName(prefix: "events.")
        #expect(stats["events.applied"] == 0 && stats["events.rejected"] == 0, "no event of a refused file was sent")
        await client.close()
    }

    @Test func ingestDrawsAProgressBarOnlyOnATerminalAndNeverWithJSON() async throws {
        let fixture = try ServerFixture()
        let path = try temporaryFile((1...30).map { "receive,SKU-1,DC1,1,\($0)" }.joined(separator: "\n"),
                                          extension: "csv")
        let terminal = await Self.atp(["ingest", path, "--source", "a", "--batch", "10"], port: fixture.port,
                                      errorIsTerminal: true)
        #expect(terminal.status == .ok)
        #expect(terminal.standardError.contains("] 100%  30/30 events"))
        #expect(terminal.standardError.hasSuffix("\r\u{1B}[2K"), "the bar is erased before the summary")
        #expect(!terminal.standardOutput.contains("["))

        let json = await Self.atp(["ingest", path, "--source", "b", "--json"], port: fixture.port, errorIsTerminal: true)
        #expect(json.status == .ok)
        #expect(json.standardError.isEmpty)
        let pipe = await Self.atp(["ingest", path, "--source", "c"], port: fixture.port)
        #expect(pipe.standardError.isEmpty, "no bar when stderr is not a terminal")
    }

    // MARK: - channel

    @Test func channelSetShowAndRemove() async throws {
        let fixture = try ServerFixture()
        // A location no event has named is refused, with what to do; nothing is created.
        let typo = await Self.atp(["channel", "set", "web", "--locations", "DC1, S1,S2"], port: fixture.port)
        #expect(typo.status == .serverError)
        #expect(typo.standardError.contains("unknown location \"DC1\", \"S1\", \"S2\""), "\(typo.standardError)")
        let admin = try await fixture.connect()
        try await admin.nameLocations(["DC1", "S1", "S2"])
        await admin.close()
        let set = await Self.atp(["channel", "set", "web", "--locations", "DC1, S1,S2", "--buffer", "2", "--cap", "80"],
                                 port: fixture.port)
        #expect(set.status == .ok)
        #expect(set.lines == ["channel web set: 3 locations (DC1, S1, S2), buffer 2 units, cap 80%"])
        _ = await Self.atp(["channel", "set", "outlet", "--locations", "S2"], port: fixture.port)

        let all = await Self.atp(["channel", "show", "--json"], port: fixture.port)
        #expect(all.status == .ok)
        let definitions = try all.array()
        #expect(definitions.map { $0["name"] as? String } == ["outlet", "web"], "sorted by name")
        let web = try #require(definitions.last)
        #expect(web["locations"] as? [String] == ["DC1", "S1", "S2"])
        #expect(Self.int(web["bufferUnits"]) == 2 && Self.int(web["capPercent"]) == 80)

        let one = await Self.atp(["channel", "show", "outlet"], port: fixture.port)
        #expect(one.lines.count == 2 && one.lines[1].hasPrefix("outlet ") && one.lines[1].hasSuffix("100%  S2"))

        let removed = await Self.atp(["channel", "remove", "web", "--json"], port: fixture.port)
        #expect(removed.status == .ok)
        #expect(try removed.object()["removed"] as? String == "web")
        let client = try await fixture.connect()
        #expect(try await client.channels().map(\.name) == ["outlet"])

        let invalid = await Self.atp(["channel", "set", "x", "--locations", "A,A"], port: fixture.port)
        #expect(invalid.status == .usage)
        #expect(invalid.standardError.contains("A is listed twice"))
        let badCap = await Self.atp(["channel", "set", "x", "--locations", "A", "--cap", "0"], port: fixture.port)
        #expect(badCap.status == .usage)
        await client.close()
    }

    // MARK: - rejections

    @Test func rejectionsPagesThroughTheLogAndFollowsNewEntries() async throws {
        let fixture = try ServerFixture { $0.limits.batchItemsMax = 2 }
        let client = try await fixture.connect()
        // One SKU, so both events go to one shard and are logged in batch order.
        _ = try await client.ingest(source: "wms", events: [Self.receive("SKU-1", "DC1", 0, 1), Self.receive("SKU-1", "DC1", -1, 2)])
        _ = try await client.ingest(source: "wms", events: [
            WireEvent(kind: .transferOut, sku: "SKU-3", location: "DC1", quantity: 1, sequence: 3, toLocation: "DC1"),
        ])

        let all = await Self.atp(["rejections", "--json"], port: fixture.port)
        #expect(all.status == .ok)
        let page = try all.object()
        #expect(Self.int(page["newestSequence"]) == 3 && Self.int(page["droppedCount"]) == 0)
        let entries = try #require(page["entries"] as? [[String: Any]])
        #expect(entries.map { Self.int($0["logSequence"]) } == [1, 2, 3], "read in pages of batchItemsMax = 2")
        #expect(entries.map { $0["reason"] as? String } == ["quantityNotPositive", "quantityNotPositive", "transferToSameLocation"])
        let event = try #require(entries[2]["event"] as? [String: Any])
        #expect(event["kind"] as? String == "transferOut" && event["to_location"] as? String == "DC1")
        #expect(entries[0]["source"] as? String == "wms")

        let after = await Self.atp(["rejections", "--after", "1", "--limit", "1"], port: fixture.port)
        #expect(after.status == .ok)
        #expect(after.lines.count == 3, "header, one entry, and the hint to page on")
        #expect(after.lines[1].hasPrefix("#2 2023-11-14T22:13:20.000Z quantityNotPositive wms: receive SKU-1 at DC1 quantity -1 sequence 2"))
        #expect(after.lines[2] == "more entries follow: atp rejections --after 2")

        let output = CapturedOutput()
        let follow = Task {
            await ATPCommandLine.run(arguments: ["rejections", "--follow", "--after", "2", "--interval-ms", "50", "--json",
                                                 "--port", String(fixture.port)],
                                     context: CommandContext(output: output, environment: [:]))
        }
        let sawExisting = try await eventually { output.standardOutput.split(separator: "\n").count == 1 }
        #expect(sawExisting)
        _ = try await client.ingest(source: "erp", events: [Self.receive("SKU-4", "DC1", 0, 1)])
        let sawNew = try await eventually { output.standardOutput.split(separator: "\n").count == 2 }
        #expect(sawNew)
        follow.cancel()
        #expect(await follow.value == .ok)
        let followed = try output.standardOutput.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(followed.map { Self.int($0["logSequence"]) } == [3, 4], "JSON lines, one entry each")
        #expect(followed.last?["source"] as? String == "erp")
        await client.close()
    }

    // MARK: - exit codes

    @Test func usageErrorsEndWithStatusTwoBeforeConnecting() async throws {
        // No server listens on this port: a usage error must be found before trying to connect.
        let port = try await Self.closedPort()
        let cases: [([String], String)] = [
            (["bogus"], "atp: Unexpected argument 'bogus'"),
            (["query", "cell", "SKU-1"], "atp: Missing expected argument '<location>' (see 'atp query cell --help')"),
            (["reserve", "R", "--line", "SKU-1@S1"], "atp: --line \"SKU-1@S1\" is not SKU@LOCATION=QTY"),
            (["reserve", "R", "--line", "SKU-1@S1=0"], "atp: --line \"SKU-1@S1=0\": the quantity \"0\" must be a whole number of at least 1"),
            (["reserve", "R"], "atp: give at least one --line"),
            (["ping", "--count", "0"], "atp: --count must be from 1 to 100000"),
            (["ingest", "/nonexistent/events.csv", "--source", "wms"], "atp: cannot read /nonexistent/events.csv: no such file"),
            (["ingest", "events.txt", "--source", "wms"], "atp: cannot tell the format of events.txt"),
            (["query", "sku", String(repeating: "s", count: 65)], "atp: SKU: SKU name is 65 bytes long; the maximum is 64"),
            (["rejections", "--interval-ms", "10"], "atp: --interval-ms must be from 50 to 60000"),
        ]
        for (arguments, message) in cases {
            let run = await Self.atp(arguments, port: port)
            #expect(run.status == .usage, "\(arguments)")
            #expect(run.standardError.hasPrefix(message), "\(arguments): \(run.standardError)")
            #expect(run.standardError.split(separator: "\n").count == 1, "one line: \(run.standardError)")
        }
        let badPort = await Self.atp(["ping"], port: port, environment: ["ATP_PORT": "nope"])
        #expect(badPort.status == .connection, "--port wins over ATP_PORT")
        let output = CapturedOutput()
        let environmentPort = await ATPCommandLine.run(arguments: ["ping"],
                                                       context: CommandContext(output: output, environment: ["ATP_PORT": "nope"]))
        #expect(environmentPort == .usage)
        #expect(output.standardError.hasPrefix("atp: ATP_PORT must be a port number"))

        let help = await Self.atp(["query", "--help"], port: port)
        #expect(help.status == .ok && help.standardOutput.contains("USAGE: atp query <subcommand>"))
        let group = await Self.atp(["channel"], port: port)
        #expect(group.status == .usage && group.standardError.contains("SUBCOMMANDS:"))
    }

    @Test func connectionProblemsEndWithStatusThree() async throws {
        let refusedPort = try await Self.closedPort()
        let refused = await Self.atp(["ping"], port: refusedPort)
        #expect(refused.status == .connection)
        #expect(refused.standardError == "atp: cannot connect to 127.0.0.1:\(refusedPort): connection refused (is atpd running on that port?)\n")

        // A server that accepts and never answers: the handshake times out.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let silentPort = try #require(silent.localAddress?.port)
        let started = ContinuousClock.now
        let timedOut = await Self.atp(["query", "sku", "SKU-1", "--timeout-ms", "200"], port: silentPort)
        #expect(timedOut.status == .connection)
        #expect(timedOut.standardError.hasPrefix("atp: connecting to 127.0.0.1:\(silentPort) timed out after 200 ms"))
        #expect(ContinuousClock.now - started < .seconds(5))
        try await silent.close()
    }

    @Test func refusedTokensAndMissingRolesEndWithStatusFour() async throws {
        let fixture = try ServerFixture()
        let wrong = await Self.atp(["ping", "--token", "wrong"], port: fixture.port)
        #expect(wrong.status == .authentication)
        #expect(wrong.standardError.hasPrefix("atp: server refused: unauthenticated: "))

        let fromEnvironment = await Self.atp(["stats"], port: fixture.port, environment: ["ATP_TOKEN": "nope"])
        #expect(fromEnvironment.status == .authentication, "ATP_TOKEN is used when --token is not given")
        let flagWins = await Self.atp(["stats", "--token", "demo-query"], port: fixture.port,
                                      environment: ["ATP_TOKEN": "nope"])
        #expect(flagWins.status == .ok)

        let path = try temporaryFile("receive,SKU-1,DC1,1,1\n", extension: "csv")
        let forbidden = await Self.atp(["ingest", path, "--source", "wms"], port: fixture.port,
                                       environment: ["ATP_TOKEN": "demo-query"])
        #expect(forbidden.status == .authentication)
        #expect(forbidden.standardError.hasPrefix("atp: server refused: forbidden: "))
        #expect(forbidden.standardError.contains("0 of 1 events were acknowledged"))
        let channelSet = await Self.atp(["channel", "set", "web", "--locations", "DC1", "--token", "demo-reserve"],
                                        port: fixture.port)
        #expect(channelSet.status == .authentication)
    }

    @Test func otherServerErrorsEndWithStatusFive() async throws {
        let fixture = try ServerFixture { $0.ledger.reservationTTLMillisecondsMax = 60_000 }
        let unknownChannel = await Self.atp(["channel", "remove", "nope"], port: fixture.port)
        #expect(unknownChannel.status == .serverError)
        #expect(unknownChannel.standardError.hasPrefix("atp: server refused: notFound: "))
        let show = await Self.atp(["channel", "show", "nope", "--json"], port: fixture.port)
        #expect(show.status == .serverError && show.standardOutput.isEmpty)
        let longHold = await Self.atp(["reserve", "R", "--line", "SKU-1@S1=1", "--ttl-ms", "60001"], port: fixture.port)
        #expect(longHold.status == .serverError)
        #expect(longHold.standardError.hasPrefix("atp: server refused: invalidRequest: "))
    }

    /// A loopback port nothing listens on (bound, then closed).
    static func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }
}
