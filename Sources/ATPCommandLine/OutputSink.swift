#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The two streams a command writes to.
public enum OutputStream: Sendable {
    /// Results: tables, JSON.
    case standardOutput
    /// Errors, notes and the progress bar.
    case standardError
}

/// Where commands write. Commands never call `print`: the process uses `StandardOutputSink`, tests
/// a `CapturedOutput`.
public protocol OutputSink: Sendable {
    /// Writes `text` as is (add the newline yourself).
    func write(_ text: String, to stream: OutputStream)
    /// Whether standard error is a terminal (the progress bar is drawn only then).
    var isErrorTerminal: Bool { get }
}

extension OutputSink {
    /// Writes `line` and a newline to standard output.
    public func line(_ line: String) { write(line + "\n", to: .standardOutput) }
    /// Writes `line` and a newline to standard error.
    public func errorLine(_ line: String) { write(line + "\n", to: .standardError) }
}

/// The process's stdout and stderr, written unbuffered (one `write(2)` loop per call) so that output
/// interleaves correctly with the progress bar and nothing is lost on Ctrl-C.
public struct StandardOutputSink: OutputSink {
    /// The process's streams.
    public init() {}

    /// Writes all of `text` to file descriptor 1 or 2. A closed pipe (EPIPE) drops the rest.
    public func write(_ text: String, to stream: OutputStream) {
        writeAll(text, to: stream == .standardOutput ? STDOUT_FILENO : STDERR_FILENO)
    }

    /// `isatty(2)`.
    public var isErrorTerminal: Bool { isatty(STDERR_FILENO) == 1 }
}

/// Writes every byte of `text` to `descriptor`, retrying on EINTR; stops at any other error.
private func writeAll(_ text: String, to descriptor: Int32) {
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { buffer in
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        while offset < buffer.count {
            let written = write(descriptor, base + offset, buffer.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}

/// Output kept in memory: for tests and for embedding the commands in other tools.
public final class CapturedOutput: OutputSink {
    private let streams = Mutex<(standardOutput: String, standardError: String)>(("", ""))

    /// Whether to pretend stderr is a terminal (draws the progress bar into `standardError`).
    public let isErrorTerminal: Bool

    /// Empty streams; `errorIsTerminal` decides whether a progress bar is drawn.
    public init(errorIsTerminal: Bool = false) {
        isErrorTerminal = errorIsTerminal
    }

    /// Appends to the stream.
    public func write(_ text: String, to stream: OutputStream) {
        streams.withLock {
            switch stream {
            case .standardOutput: $0.standardOutput += text
            case .standardError: $0.standardError += text
            }
        }
    }

    /// Everything written to standard output so far.
    public var standardOutput: String { streams.withLock { $0.standardOutput } }
    /// Everything written to standard error so far.
    public var standardError: String { streams.withLock { $0.standardError } }
}
