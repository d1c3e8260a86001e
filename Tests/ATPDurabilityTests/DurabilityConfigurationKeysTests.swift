import ATPCrashSoak
import ATPLedger
import ATPServer
import Foundation
import Testing

/// The configuration file's durability keys: read, checked with key/value/reason, printed.
@Suite struct DurabilityConfigurationKeysTests {
    static func file(_ json: String) throws -> (TemporaryDirectory, String) {
        let directory = TemporaryDirectory()
        let path = directory.path + "/atpd.json"
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return (directory, path)
    }

    @Test func keysAreReadAndPrinted() throws {
        let (directory, path) = try Self.file("""
            { "dataDirectory": "/var/lib/atpd", "durability": "interval:50", "snapshotIntervalSeconds": 60, "snapshotsKept": 5 }
            """)
        defer { directory.remove() }
        let configuration = try ServerConfiguration(jsonFile: path)
        #expect(configuration.dataDirectory == "/var/lib/atpd" && configuration.durability == "interval:50")
        #expect(configuration.snapshotIntervalSeconds == 60 && configuration.snapshotsKept == 5)
        let printed = configuration.describe()
        for line in ["dataDirectory = /var/lib/atpd", "durability = interval:50", "snapshotIntervalSeconds = 60", "snapshotsKept = 5"] {
            #expect(printed.contains(line), "\(printed)")
        }
        let defaults = ServerConfiguration()
        #expect(defaults.dataDirectory == nil && defaults.durability == "sync")
        #expect(defaults.describe().contains("dataDirectory = (none: in memory)"))
    }

    @Test(arguments: [
        ("\"durability\": \"fast\"", "durability", "fast"),
        ("\"durability\": \"interval:0\"", "durability", "interval:0"),
        ("\"durability\": \"interval:3600001\"", "durability", "interval:3600001"),
        ("\"snapshotIntervalSeconds\": -1", "snapshotIntervalSeconds", "-1"),
        ("\"snapshotsKept\": 0", "snapshotsKept", "0"),
        ("\"dataDirectory\": \"\"", "dataDirectory", ""),
        ("\"snapshotsKept\": \"3\"", "snapshotsKept", "3"),
    ])
    func badValuesAreRefusedWithTheirKey(entry: String, key: String, value: String) throws {
        let (directory, path) = try Self.file("{ \(entry) }")
        defer { directory.remove() }
        do {
            _ = try ServerConfiguration(jsonFile: path)
            Issue.record("\(entry) was accepted")
        } catch {
            #expect(error.key == key && error.value == value && !error.reason.isEmpty, "\(error)")
        }
    }

    @Test(.enabled(if: CrashTests.atpdPath != nil, "the atpd executable is built next to the tests"))
    func atpdPrintsTheKeysAndNamesTheFlagThatSetABadValue() throws {
        let (directory, path) = try Self.file("{ \"dataDirectory\": \"/tmp/from-file\", \"snapshotsKept\": 4 }")
        defer { directory.remove() }
        func atpd(_ arguments: [String]) throws -> (Int32, String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try #require(CrashTests.atpdPath))
            process.arguments = arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let (status, printed) = try atpd(["--config", path, "--durability", "none", "--print-config"])
        #expect(status == 0)
        for line in ["dataDirectory = /tmp/from-file", "durability = none", "snapshotsKept = 4", "snapshotIntervalSeconds = 300"] {
            #expect(printed.contains(line), "\(printed)")
        }
        let (badStatus, message) = try atpd(["--config", path, "--durability", "fsync", "--print-config"])
        #expect(badStatus == 64)
        #expect(message.contains("durability = fsync") && message.contains("(set by --durability)"), "\(message)")

        // --in-memory wins over the file's directory and --demo's default; it excludes --data-dir.
        let (memoryStatus, memory) = try atpd(["--config", path, "--demo", "--in-memory", "--print-config"])
        #expect(memoryStatus == 0)
        #expect(memory.contains("dataDirectory = (none: in memory)"), "\(memory)")
        let (bothStatus, both) = try atpd(["--in-memory", "--data-dir", "/tmp/x", "--print-config"])
        #expect(bothStatus == 64 && both.contains("exclude each other"), "\(both)")
        // --thread-per-core: one core per CPU unless --workers says otherwise.
        let (perCoreStatus, perCore) = try atpd(["--thread-per-core", "--workers", "2", "--print-config"])
        #expect(perCoreStatus == 0)
        #expect(perCore.contains("threadPerCore = true") && perCore.contains("ledger.workerCount = 2"), "\(perCore)")
    }
}
