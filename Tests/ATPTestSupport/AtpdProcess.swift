import Dispatch
import Foundation
import Synchronization

/// A real atpd started as a child process, for the tests that need a whole process (signals, the
/// allocator it links): started with its output on one pipe, which is read until `announced`
/// finds what the test waits for (ports, usually) in what atpd printed so far.
public enum AtpdProcess {
    /// What atpd has not announced in time, or before it exited.
    public struct NotAnnounced: Error, CustomStringConvertible {
        public let output: String
        public var description: String { "atpd did not announce what the test waits for: \(output)" }
    }

    /// Starts `path` with `arguments` and `environment` added to this process's, and reads its
    /// output until `announced(output so far)` returns a value: returns the process, its output
    /// pipe (for what it prints later), what it printed so far and that value. A watchdog ends a
    /// process that announces nothing within `seconds` (the reads block), and the start throws
    /// `NotAnnounced` with its output.
    public static func start<Announcement>(
        _ path: String, arguments: [String], environment: [String: String], seconds: Double = 20,
        announced: (String) -> Announcement?
    ) throws -> (process: Process, output: Pipe, text: String, announcement: Announcement) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let done = Flag()
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [process] in
            if !done.value.withLock({ $0 }) { process.terminate() }
        }
        var text = ""
        while true {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let announcement = announced(text) {
                done.value.withLock { $0 = true }
                return (process, output, text, announcement)
            }
        }
        process.terminate()
        throw NotAnnounced(output: text)
    }

    /// Whether the process announced in time (shared with the watchdog).
    private final class Flag: Sendable {
        let value = Mutex(false)
    }
}
