import Foundation
import Synchronization

/// An `atpd` child process started on a free port: its announced port and everything it logged
/// (drained on a thread of its own, so the server never blocks on a full pipe).
public final class AtpdProcess: Sendable {
    /// The child process.
    public let process: Process
    /// The protocol port it announced ("listening address=...:<port>").
    public let port: Int
    private let output: Mutex<String>
    private let drained = DispatchSemaphore(value: 0)

    private init(process: Process, port: Int, output: String) {
        self.process = process
        self.port = port
        self.output = Mutex(output)
    }

    /// Why atpd could not be started or did not announce its port.
    public struct StartFailure: Error, CustomStringConvertible {
        /// What atpd printed before it exited or was stopped.
        public var log: String
        /// The exit status when it exited, nil when it was stopped by the watchdog.
        public var exitStatus: Int32?
        public var description: String {
            "atpd did not announce its port (exit status \(exitStatus.map(String.init) ?? "none")): \(log)"
        }
    }

    /// The demo tokens as `ATPD_TOKENS` entries (docs/CONFIGURATION.md): what the soak's clients
    /// connect with, given to every atpd it starts unless the environment names tokens itself.
    public static let demoTokens = "demo-admin:query+reserve+ingest+admin:demo-admin demo-query:query:demo-query "
        + "demo-reserve:reserve+query:demo-reserve demo-ingest:ingest:demo-ingest"

    /// Starts `executable` with `arguments` and waits until it announces its port. A watchdog
    /// terminates a process that says nothing for `startTimeoutSeconds`, so this never hangs.
    /// Throws `StartFailure` (with atpd's output) when it exits or times out first.
    public static func start(executable: String, arguments: [String], startTimeoutSeconds: Int = 30) throws -> AtpdProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // The Swift runtime's backtracer inherits atpd's client sockets and output pipe and can
        // hold them open long after a crash, so the clients and the drain would wait on a dead
        // server. Off unless the caller's environment says otherwise; a crash then closes every
        // connection at once and shows as exited-under-load (use a core dump to see where).
        var environment = ProcessInfo.processInfo.environment
        if environment["SWIFT_BACKTRACE"] == nil { environment["SWIFT_BACKTRACE"] = "enable=no" }
        // atpd accepts the demo tokens only with --demo; the soak's clients use them.
        if environment["ATPD_TOKENS"] == nil { environment["ATPD_TOKENS"] = AtpdProcess.demoTokens }
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let announced = Mutex(false)
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(startTimeoutSeconds)) { [process] in
            if !announced.withLock({ $0 }) { process.terminate() }
        }
        let reader = pipe.fileHandleForReading
        var text = ""
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            // "... info atpd: listening address=[IPv4]127.0.0.1/127.0.0.1:46515"
            if let match = text.firstMatch(of: /listening address=[^\n]*:(\d+)\n/), let port = Int(match.1) {
                announced.withLock { $0 = true }
                let started = AtpdProcess(process: process, port: port, output: text)
                Thread.detachNewThread { started.drain(reader) }
                return started
            }
        }
        announced.withLock { $0 = true }
        process.waitUntilExit()
        throw StartFailure(log: text, exitStatus: process.terminationReason == .exit ? process.terminationStatus : nil)
    }

    private func drain(_ reader: FileHandle) {
        while true {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            output.withLock { $0 += String(decoding: chunk, as: UTF8.self) }
        }
        drained.signal()
    }

    /// Everything atpd printed so far.
    public var log: String { output.withLock { $0 } }

    /// Whether atpd reported a crash of its own (the Swift runtime's fatal error or backtrace).
    public var crashed: Bool {
        let text = log
        return text.contains("Fatal error") || text.contains("Crashed thread") || text.contains("💣")
    }

    /// The last `lines` lines atpd printed.
    public func logTail(lines: Int = 40) -> String {
        log.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// A process nobody can stop any more is stopped: a test that throws half-way must not leave
    /// its atpd running.
    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// Sends `signal` (SIGKILL, SIGTERM...) to the process.
    public func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit and for its output to be read to the end; returns the exit
    /// status (nil when a signal ended it).
    @discardableResult
    public func waitForExit() -> Int32? {
        process.waitUntilExit()
        // The output ends when every writer closed the pipe: atpd, and the Swift runtime's
        // backtracer if atpd crashed (it may outlive a killed atpd). Do not wait for it forever.
        if drained.wait(timeout: .now() + 10) == .success { drained.signal() }
        return process.terminationReason == .exit ? process.terminationStatus : nil
    }

    /// The `atpd` executable next to `binary` (a test bundle or a tool in the build directory),
    /// looking up to four directories up; nil when there is none.
    public static func executable(near binary: String) -> String? {
        var directory = URL(fileURLWithPath: binary).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("atpd").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}

/// SplitMix64: a small seeded generator, so that a cycle's choices (operations, kill moment) can
/// be repeated from the printed seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator starting from `seed`.
    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
