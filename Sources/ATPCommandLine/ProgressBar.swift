/// A one-line progress bar on stderr: `[#########...........]  45%  4,500/10,000 events`.
///
/// Drawn only when stderr is a terminal and the output is not JSON (the caller decides with
/// `isEnabled`); redrawn at most every `redrawIntervalMilliseconds`, and erased by `finish()` so
/// the summary that follows starts on a clean line.
struct ProgressBar {
    /// Characters between the brackets.
    static let width = 30
    /// The shortest time between two redraws.
    static let redrawIntervalMilliseconds = 100

    private let output: any OutputSink
    private let total: Int
    private let unit: String
    private let isEnabled: Bool
    private let clock = ContinuousClock()
    private var lastDrawn: ContinuousClock.Instant?

    /// A bar for `total` items named `unit`; draws nothing unless `isEnabled`.
    init(output: any OutputSink, total: Int, unit: String, isEnabled: Bool) {
        self.output = output
        self.total = total
        self.unit = unit
        self.isEnabled = isEnabled && total > 0
    }

    /// Shows `done` of `total`, unless the last redraw was too recent (the last item always shows).
    mutating func update(done: Int) {
        guard isEnabled else { return }
        let now = clock.now
        if let lastDrawn, done < total, now - lastDrawn < .milliseconds(Self.redrawIntervalMilliseconds) { return }
        lastDrawn = now
        output.write("\r" + Self.render(done: done, total: total, unit: unit), to: .standardError)
    }

    /// Erases the bar.
    func finish() {
        guard isEnabled, lastDrawn != nil else { return }
        output.write("\r\u{1B}[2K", to: .standardError)
    }

    /// The bar's text for `done` of `total` (no carriage return).
    static func render(done: Int, total: Int, unit: String) -> String {
        let clamped = max(0, min(done, total))
        let filled = total == 0 ? width : clamped * width / total
        let percent = total == 0 ? 100 : clamped * 100 / total
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let percentText = String(percent)
        return "[\(bar)] \(String(repeating: " ", count: 3 - percentText.count))\(percentText)%  "
            + "\(Format.grouped(clamped))/\(Format.grouped(total)) \(unit)"
    }
}
