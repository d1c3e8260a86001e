import ATPClient
import ATPCrashSoak
import ATPProtocol
import Foundation
import Testing

/// The real atpd on a data directory whose journal segment header has one flipped bit: it exits
/// with status 1, says what is damaged, what would be lost and which flag starts it anyway, and
/// changes nothing; with `--accept-journal-damage` it starts, keeps the damaged file and logs the
/// loss at error level.
@Suite struct DamagedJournalProcessTests {
    static func start(_ directory: TemporaryDirectory, _ extraArguments: [String] = []) throws -> AtpdProcess {
        try AtpdProcess.start(executable: try #require(CrashTests.atpdPath),
                              arguments: ["--data-dir", directory.path, "--port", "0", "--shards", "4", "--workers", "1",
                                          "--io-threads", "1", "--snapshot-interval-seconds", "0"] + extraArguments,
                              startTimeoutSeconds: 20)
    }

    /// Kills `server` unless it has exited already (a failed expectation must not leave it running).
    static func stop(_ server: AtpdProcess) {
        guard server.process.isRunning else { return }
        server.send(SIGKILL)
        server.waitForExit()
    }

    @Test(.enabled(if: CrashTests.atpdPath != nil, "the atpd executable is built next to the tests"))
    func atpdRefusesADamagedJournalHeaderThenStartsWithTheFlag() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let first = try Self.start(directory)
        defer { Self.stop(first) }
        let client = try await ATPConnection.connect(port: first.port, token: "demo-admin")
        let events = (1...20).map { WireEvent(kind: .receive, sku: "SKU-\($0 % 5)", location: "S1", quantity: 2, sequence: UInt64($0)) }
        #expect(try await client.ingest(source: "feed", events: events).appliedCount == 20)
        await client.close()
        first.send(SIGKILL)  // no final snapshot: the journal alone holds the acknowledged events
        first.waitForExit()

        let segment = directory.path + "/journal/stream-0/segment-00000000000000000001.journal"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: segment))
        bytes[13] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: segment))

        do {
            let started = try Self.start(directory)
            Self.stop(started)
            Issue.record("atpd started on a damaged journal: \(started.log)")
        } catch let failure as AtpdProcess.StartFailure {
            #expect(failure.exitStatus == 1)
            for part in ["will not start", segment, "header checksum mismatch", "would be lost", "records in them still verify",
                         "nothing was changed", "cp -a", "--accept-journal-damage"] {
                #expect(failure.log.contains(part), "\(part) in: \(failure.log)")
            }
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: segment)) == bytes, "the refusal changed nothing")

        let second = try Self.start(directory, ["--accept-journal-damage"])
        defer { Self.stop(second) }
        let accepted = second.log.split(separator: "\n").first { $0.contains("JOURNAL DAMAGE ACCEPTED") }.map(String.init)
        #expect(accepted?.contains(" error atpd: ") == true, "logged at error level: \(second.log)")
        #expect(accepted?.contains(segment + ".damaged") == true, "\(second.log)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: segment + ".damaged")) == bytes, "the damaged file is kept")
        second.send(SIGTERM)
        #expect(second.waitForExit() == 0)
    }

    @Test(.enabled(if: CrashTests.atpdPath != nil, "the atpd executable is built next to the tests"))
    func printConfigShowsWhetherJournalDamageIsAccepted() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.path + "/atpd.json"
        try #"{ "acceptJournalDamage": true }"#.write(toFile: file, atomically: true, encoding: .utf8)
        func printed(_ arguments: [String]) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try #require(CrashTests.atpdPath))
            process.arguments = arguments + ["--print-config"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            return text
        }
        #expect(try printed([]).contains("acceptJournalDamage = false"))
        #expect(try printed(["--accept-journal-damage"]).contains("acceptJournalDamage = true"))
        #expect(try printed(["--config", file]).contains("acceptJournalDamage = true"))
    }
}
