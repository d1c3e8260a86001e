import Foundation
import Testing

/// atpd as a process: it accepts the demo tokens only with --demo, refuses to start when no token
/// is configured at all, and refuses a tokens file every user may read (issue 14 item 11).
@Suite struct AtpdTokensTests {
    /// Runs atpd with `arguments` and `environment` (over the test's, without its ATPD_TOKENS)
    /// until it exits (at most 20 s); returns its status and everything it printed.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try runToExit(try #require(ShutdownTests.atpdPath), arguments, includingStandardError: true, timeoutSeconds: 20) {
            $0["ATPD_TOKENS"] = nil
            $0.merge(environment) { $1 }
        }
    }

    @Test(.enabled(if: ShutdownTests.atpdPath != nil, "the atpd executable is built next to the tests"))
    func withoutTokensAtpdRefusesToStartAndSaysHowToConfigureThem() throws {
        let (status, output) = try Self.run(["--port", "0", "--in-memory", "--shards", "4", "--workers", "1"])
        #expect(status == 64, "exit status \(status): \(output)")
        #expect(output.contains("no tokens are configured") && output.contains("ATPD_TOKENS") && output.contains("--demo"),
                "\(output)")
        // --print-config still prints, and says there are none.
        let printed = try Self.run(["--print-config"])
        #expect(printed.status == 0 && printed.output.contains("tokens from = none"), "\(printed.output)")
    }

    @Test(.enabled(if: ShutdownTests.atpdPath != nil, "the atpd executable is built next to the tests"))
    func aWorldReadableTokensFileIsRefused() throws {
        let path = NSTemporaryDirectory() + "atp-tokens-\(UUID().uuidString)"
        try "ops:admin:s3cret\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        let (status, output) = try Self.run(["--port", "0", "--in-memory", "--tokens-file", path, "--print-config"])
        #expect(status == 64 && output.contains("tokensFile") && output.contains("chmod 600"), "\(status): \(output)")
        #expect(!output.contains("s3cret"), "the token is never printed")
    }
}
