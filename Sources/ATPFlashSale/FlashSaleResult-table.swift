import Foundation

/// The printed form of a run: what ran, counts, latency, throughput per second, and the check.
extension FlashSaleResult {
    /// The report as a plain-text table. Per-SKU lines are listed for up to `skuLinesMax` SKUs (and
    /// always for the SKUs that failed the check).
    public func table(skuLinesMax: Int = 20) -> String {
        var lines: [String] = []
        let c = configuration
        let loop = c.isOpenLoop ? "open loop at \(grouped(Int(c.arrivalsPerSecond))) buyers/s" : "closed loop"
        lines.append("flash sale \(c.runTag): \(c.skuCount) SKUs × \(grouped(c.stockPerSKU)) units at \(c.location); "
            + "\(grouped(c.connections)) connections × depth \(c.depth), \(loop); each buyer asks 1..\(c.maxUnitsPerBuyer) units")
        let ended = end == .soldOut ? "every SKU sold out" : "time limit of \(format(c.seconds, 1)) s"
        lines.append("ended: \(ended) after \(format(elapsedSeconds, 3)) s; \(soldOutSKUs) of \(c.skuCount) SKUs seen sold out")
        lines.append("")
        lines.append(row(["reservations", "attempts", "granted", "refused", "errors", "answered/s", "units granted"]))
        lines.append(row(["", grouped(buyers.attempts), grouped(buyers.granted), grouped(buyers.refused), grouped(buyers.errors),
                          grouped(Int(reservationsPerSecond.rounded())), grouped(buyers.grantedUnits)]))
        lines.append("")
        let h = buyers.latencyMicroseconds
        lines.append(row(["latency µs", "p50", "p90", "p99", "p99.9", "max", "count"]))
        lines.append(row(["", grouped(h.valueAtPercentile(50)), grouped(h.valueAtPercentile(90)), grouped(h.valueAtPercentile(99)),
                          grouped(h.valueAtPercentile(99.9)), grouped(h.totalCount > 0 ? h.max : 0), grouped(h.totalCount)]))
        if c.isOpenLoop { lines.append("(open loop: latency from each buyer's intended arrival, queueing included)") }
        lines.append("")
        lines.append(row(["second", "answered", "granted"]))
        for second in buyers.answeredPerSecond.indices {
            lines.append(row(["\(second)", grouped(buyers.answeredPerSecond[second]), grouped(buyers.grantedPerSecond[second])]))
        }
        if let background {
            lines.append("")
            lines.append("background: \(grouped(background.queriesAnswered)) queries (p99 \(grouped(background.queryLatencyMicroseconds.valueAtPercentile(99))) µs), "
                + "\(grouped(background.eventsApplied)) receipts applied (p99 \(grouped(background.ingestLatencyMicroseconds.valueAtPercentile(99))) µs per frame), "
                + "\(grouped(background.errors)) errors")
        }
        lines.append("")
        lines.append(contentsOf: checkLines(skuLinesMax: skuLinesMax))
        let samples = buyers.errorSamples + (background?.errorSamples ?? [])
        if !samples.isEmpty {
            lines.append("")
            lines.append("first errors:")
            lines.append(contentsOf: samples.map { "  " + $0 })
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func checkLines(skuLinesMax: Int) -> [String] {
        var lines: [String] = []
        lines.append("oversell check: stock \(grouped(check.stockUnits)) units, granted \(grouped(check.grantedUnits)), "
            + "remaining \(grouped(check.remainingUnits)), oversold \(grouped(check.oversoldUnits)), "
            + "unaccounted \(grouped(check.unaccountedUnits)), left after sold out \(grouped(check.leftAfterSoldOutUnits)): "
            + (check.passed ? "PASSED" : "FAILED"))
        if configuration.untilSoldOut && end == .timeLimit {
            lines.append("  (the time limit came before every SKU sold out: stock was left because the sale ended, not because buyers were refused)")
        }
        let shown = check.skus.enumerated().filter { index, line in
            index < skuLinesMax || line.oversoldUnits != 0 || line.unaccountedUnits != 0 || line.leftAfterSoldOutUnits != 0
                || line.heldUnits != line.grantedUnits
        }
        if !shown.isEmpty {
            lines.append(row(["sku", "stock", "granted", "remaining", "held", "oversold", "sold out"], firstWidth: 28))
            for (_, line) in shown {
                lines.append(row([line.sku, grouped(line.stockUnits), grouped(line.grantedUnits), grouped(line.remainingUnits),
                                  grouped(line.heldUnits), grouped(line.oversoldUnits), line.soldOutSeen ? "yes" : "no"],
                                 firstWidth: 28))
            }
        }
        lines.append(contentsOf: check.failures.map { "  FAILED: " + $0 })
        return lines
    }

    private func row(_ cells: [String], firstWidth: Int = 14) -> String {
        var text = cells[0].padding(toLength: max(firstWidth, cells[0].count), withPad: " ", startingAt: 0)
        for cell in cells.dropFirst() {
            text += String(repeating: " ", count: max(1, 14 - cell.count)) + cell
        }
        return text
    }

    private func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }
}

/// `1234567` as `1,234,567` (Foundation's number format in the `en_US` locale, whatever the host's
/// locale, so reports read the same everywhere).
func grouped<Number: BinaryInteger>(_ number: Number) -> String {
    number.formatted(IntegerFormatStyle<Number>(locale: groupingLocale))
}

private let groupingLocale = Locale(identifier: "en_US")
