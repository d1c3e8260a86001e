import ATPProtocol
import ATPServer
import Dispatch
import Logging
import Synchronization

/// Logs refused requests by class, never one line per request: every interval it compares the
/// server's error frames per error code with the previous reading and writes one line per code that
/// grew ("refused 120 frames with unauthenticated in the last 10 s"). The counts come from the event
/// loops' own counters, so this costs the request path nothing.
///
/// Levels: `error` for internalError, `warning` for serverBusy (the engine is saturated), `notice`
/// for what clients got wrong (unauthenticated, forbidden, malformedFrame, ...), `info` for
/// shuttingDown.
public final class RefusalLogger: Sendable {
    private let metrics: RequestMetrics
    private let logger: Logger
    private let intervalSeconds: Int
    private let previous = Mutex<[UInt64]>([UInt64](repeating: 0, count: RequestMetrics.outcomeSlots))
    private let timer = Mutex<DispatchSourceTimer?>(nil)

    /// A logger over `metrics` that reports every `intervalSeconds` once started.
    public init(metrics: RequestMetrics, logger: Logger, intervalSeconds: Int = 10) {
        precondition(intervalSeconds >= 1, "the interval is at least a second")
        self.metrics = metrics
        self.logger = logger
        self.intervalSeconds = intervalSeconds
    }

    /// Starts the periodic reports on a background queue.
    public func start() {
        let interval = intervalSeconds
        timer.withLock { timer in
            guard timer == nil else { return }
            let source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "atpd.refusals"))
            source.schedule(deadline: .now() + .seconds(interval), repeating: .seconds(interval))
            source.setEventHandler { [self] in report() }
            source.resume()
            timer = source
        }
    }

    /// Stops the reports and writes a last one for the time since the previous.
    public func stop() {
        timer.withLock { $0?.cancel(); $0 = nil }
        report()
    }

    /// Writes one line per error code whose count grew since the last report; returns the lines'
    /// (code, count) pairs.
    @discardableResult
    public func report() -> [(code: ErrorCode, count: UInt64)] {
        let snapshot = metrics.snapshot()
        let current = (0..<RequestMetrics.outcomeSlots).map { snapshot.errorFramesSent(code: UInt16($0)) }
        let grown: [(ErrorCode, UInt64)] = previous.withLock { previous in
            defer { previous = current }
            return (1..<RequestMetrics.outcomeSlots).compactMap { code in
                current[code] > previous[code] ? (ErrorCode(rawValue: UInt16(code)), current[code] - previous[code]) : nil
            }
        }
        for (code, count) in grown {
            let name = code.rawValue == UInt16(RequestMetrics.outcomeSlots - 1) ? "error codes above 30" : "\(code)"
            logger.log(level: Self.level(of: code),
                       "refused \(count) frames with \(name) in the last \(intervalSeconds) s",
                       metadata: ["code": "\(code.rawValue)", "count": "\(count)"])
        }
        return grown.map { (code: $0.0, count: $0.1) }
    }

    static func level(of code: ErrorCode) -> Logger.Level {
        switch code {
        case .internalError: .error
        case .serverBusy: .warning
        case .shuttingDown: .info
        default: .notice
        }
    }
}
