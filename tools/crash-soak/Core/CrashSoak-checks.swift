import ATPClient
import ATPLedger
import ATPProtocol

/// The checks after a restart (docs/DURABILITY.md, "Crash test"), in this order:
/// 1. the cells, read before anything else touches them;
/// 2. the channel defined at the start;
/// 3. one question per reservation id that changes nothing when the model is right: a release of a
///    settled one (released, expired, refused: must replay, never `unknownReservation`), a commit
///    of a committed one (must replay), a reserve of the others (a known id replays; an unknown one
///    starts a new reservation). Each answer is checked against what was acknowledged and the time;
/// 4. per cell, `reserved` and `committed` against the reservations found (from step 1's read);
/// 5. a reserve retry of every id: must replay (never a second hold) with the same grants;
/// 6. the cells again, against the reservations as step 5 found them;
/// 7. `onHand` between the acknowledged receives and those plus the unknown batches; the unknown
///    batches resent (the feed's retry), then `onHand` exactly the model's.
/// The answers make the model exact again, so the next cycle goes on from it.
extension CrashSoak {
    /// A question about one reservation id.
    struct Question: Sendable {
        var id: String
        var operation: PendingOperation
        var request: WireReserveRequest
    }

    /// What one question about a reservation id found.
    struct Finding: Sendable {
        /// The operation asked with.
        var operation: PendingOperation
        /// The reply.
        var reply: WireReservationReply
        /// The server-clock window of the question (from its send to its reply).
        var window: ClosedRange<Int64>

        /// Whether the id was known to the server before this question.
        var existed: Bool {
            switch operation {
            case .reserve: reply.replayed
            case .commit, .release: reply.result != .unknownReservation
            }
        }

        /// Whether this question changed a reservation that existed (a commit or release that was
        /// not a replay).
        var changedIt: Bool {
            operation != .reserve && reply.result == .ok && !reply.replayed
        }

        /// "reserve → held, replayed, expires at T, [2/2 S1:2]".
        var summary: String {
            var text = "\(operation) answered "
            if reply.result != .ok { text += "\(reply.result) " }
            text += "\(reply.state)" + (reply.replayed ? " (replayed)" : " (not replayed)")
            if reply.state == .held { text += ", expires at \(reply.expiresAtMilliseconds)" }
            if !reply.lines.isEmpty { text += ", \(reply.lines.compactDescription)" }
            return text + " at \(window.lowerBound)...\(window.upperBound)"
        }
    }

    /// Checks the restarted ledger against the model, then settles the unknowns so that the model
    /// is exact again (see the extension's comment for the steps). Violations go to `report`;
    /// throws only when the server cannot be asked.
    public func check(_ client: ATPConnection, model: inout CrashModel, report: inout CycleReport) async throws {
        let first = try await readCells(client)
        if let channel = model.channel { await checkChannel(client, channel, report: &report) }
        let firstFindings = try await ask(client, firstQuestions(model))
        judgeFirst(firstFindings, model: model, report: &report)
        checkBuckets(first.cells, read: first.window, findings: firstFindings, questionsAfterRead: true,
                     model: &model, stage: "after the restart", report: &report)
        // The first answers are now the truth about each id (a probe may have started a new one).
        for (id, finding) in firstFindings {
            if finding.existed || finding.operation == .reserve {
                model.reservations[id]?.acknowledge(finding.reply)
            } else {
                model.reservations[id]?.state = nil
                model.reservations[id]?.pending = nil
            }
        }
        let retryQuestions = model.reservations.keys.sorted().map {
            Question(id: $0, operation: .reserve, request: model.reservations[$0]!.request)
        }
        let retries = try await ask(client, retryQuestions)
        judgeRetries(retries, firstFindings: firstFindings, model: model, report: &report)
        for (id, finding) in retries { model.reservations[id]?.acknowledge(finding.reply) }
        let second = try await readCells(client)
        checkBuckets(second.cells, read: second.window, findings: retries, questionsAfterRead: false,
                     model: &model, stage: "after the reserve retries", report: &report)
        try await checkOnHand(client, recovered: first.cells, model: &model, report: &report)
    }

    // MARK: - Reservations

    /// The first question for each id: one that changes nothing when the model is right.
    func firstQuestions(_ model: CrashModel) -> [Question] {
        let now = wallClockMilliseconds()
        return model.reservations.keys.sorted().map { id in
            let entry = model.reservations[id]!
            let expectation = ReservationExpectation(entry, window: now...now, margin: expiryMarginMilliseconds)
            let operation: PendingOperation = expectation.isSettled ? .release : expectation.isCommitted ? .commit : .reserve
            return Question(id: id, operation: operation, request: entry.request)
        }
    }

    /// Asks each question, `probeConcurrency` at a time on `client` (pipelined), timing each.
    func ask(_ client: ATPConnection, _ questions: [Question]) async throws -> [String: Finding] {
        var findings: [String: Finding] = [:]
        for start in stride(from: 0, to: questions.count, by: probeConcurrency) {
            try await withThrowingTaskGroup(of: (String, Finding).self) { group in
                for question in questions[start..<min(start + probeConcurrency, questions.count)] {
                    group.addTask {
                        let sentAt = wallClockMilliseconds()
                        let reply: WireReservationReply
                        switch question.operation {
                        case .reserve: reply = try await client.reserve(question.request)
                        case .commit: reply = try await client.commit(question.request.id)
                        case .release: reply = try await client.release(question.request.id)
                        }
                        let finding = Finding(operation: question.operation, reply: reply, window: since(sentAt))
                        return (question.id, finding)
                    }
                }
                for try await (id, finding) in group { findings[id] = finding }
            }
        }
        return findings
    }

    /// Judges the first answers: every acknowledged reservation known, in a state its
    /// acknowledgements and the time allow, with its acknowledged grants; every unknown operation
    /// happened whole or not at all.
    func judgeFirst(_ findings: [String: Finding], model: CrashModel, report: inout CycleReport) {
        for id in findings.keys.sorted() {
            guard let entry = model.reservations[id], let finding = findings[id] else { continue }
            let expectation = ReservationExpectation(entry, window: finding.window, margin: expiryMarginMilliseconds)
            if expectation.states.count > 1 && expectation.states.isSuperset(of: [.held, .expired]) { report.expiryUndecided += 1 }
            if finding.reply.state == .expired && finding.existed { report.foundExpired += 1 }
            tallyUnknown(entry, finding, report: &report)
            judge(id, entry: entry, expectation: expectation, finding: finding, channel: model.channel, report: &report)
        }
    }

    /// Counts how the unknown operations turned out.
    private func tallyUnknown(_ entry: ModelReservation, _ finding: Finding, report: inout CycleReport) {
        guard let pending = entry.pending else { return }
        let applied = switch pending {
        case .reserve: finding.existed
        case .commit: finding.existed && finding.reply.state == .committed
        case .release: finding.existed && finding.reply.state == .released
        }
        if applied { report.unknownApplied += 1 } else { report.unknownAbsent += 1 }
    }

    /// Checks one answer against its expectation.
    private func judge(_ id: String, entry: ModelReservation, expectation: ReservationExpectation, finding: Finding,
                       channel: WireChannelDefinition?, report: inout CycleReport) {
        let context = "\(entry.summary); \(finding.summary)"
        guard finding.existed else {
            if expectation.mayBeUnknown { return }
            if finding.operation == .reserve {
                report.violations.append(CrashViolation(.lostReservation, id,
                    "unknown after the restart (the probe reserve started a new reservation): \(context)"))
            } else {
                report.violations.append(CrashViolation(.unknownReservation, id,
                    "\(finding.operation) answered unknownReservation after the restart: \(context)"))
            }
            return
        }
        let state = finding.reply.state
        if finding.changedIt {
            report.violations.append(CrashViolation(.wrongState, id,
                "expected \(expectation.states.sortedDescription), but the \(finding.operation) changed it (it was still live): \(context)"))
        } else if !expectation.states.contains(state) {
            report.violations.append(CrashViolation(.wrongState, id, "expected \(expectation.states.sortedDescription): \(context)"))
        }
        if let problem = expectation.grantProblem(finding.reply.lines, state: state, request: entry.request, channel: channel) {
            report.violations.append(CrashViolation(.wrongGrants, id, "\(problem): \(context)"))
        }
    }

    /// Judges the reserve retries: each replays (the id is known by now) with the state and grants
    /// the first answer showed, allowing for expiry in between.
    func judgeRetries(_ retries: [String: Finding], firstFindings: [String: Finding], model: CrashModel,
                      report: inout CycleReport) {
        for id in retries.keys.sorted() {
            guard let entry = model.reservations[id], let retry = retries[id] else { continue }
            // An id the first question found unknown to a commit or release is started by this retry.
            if let first = firstFindings[id], !first.existed, first.operation != .reserve { continue }
            let context = "\(entry.summary); retry \(retry.summary)"
            guard retry.reply.replayed else {
                report.violations.append(CrashViolation(.secondHold, id,
                    "a reserve retry of a known id was not replayed: it started a second reservation: \(context)"))
                continue
            }
            let expectation = ReservationExpectation(entry, window: retry.window, margin: expiryMarginMilliseconds)
            if !expectation.states.contains(retry.reply.state) {
                report.violations.append(CrashViolation(.wrongState, id,
                    "the retry found \(retry.reply.state), expected \(expectation.states.sortedDescription): \(context)"))
            }
            if retry.reply.lines != entry.lines {
                report.violations.append(CrashViolation(.wrongGrants, id, "the retry shows other grants: \(context)"))
            }
        }
    }

    // MARK: - Cells

    /// Every cell of the catalogue the load uses, with the server-clock window of the read.
    func readCells(_ client: ATPConnection) async throws -> (cells: [CellKey: WireCell], window: ClosedRange<Int64>) {
        let start = wallClockMilliseconds()
        let cells = try await cells(client)
        return (cells, since(start))
    }

    /// Every cell of the catalogue the load uses.
    func cells(_ client: ATPConnection) async throws -> [CellKey: WireCell] {
        let reply = try await client.query((0..<skuCount).map { .sku("SKU-\($0)") }, includeCells: true)
        var cells: [CellKey: WireCell] = [:]
        for (index, answer) in reply.answers.enumerated() {
            for cell in answer.cells where cell.exists { cells[CellKey(sku: "SKU-\(index)", location: cell.location)] = cell }
        }
        return cells
    }

    /// What the reservations found hold on one cell: `reserved` and `committed` each between a low
    /// and a high bound (equal unless an expiry falls near the read), and who holds what.
    struct BucketBounds {
        var reserved: ClosedRange<Int64> = 0...0
        var committed: ClosedRange<Int64> = 0...0
        /// "R-1-2-3 held 2" for each reservation counted in `reserved`, and in `committed`.
        var reservedBy: [String] = []
        var committedBy: [String] = []

        mutating func add(reserved low: Int64, _ high: Int64, by holder: String) {
            reserved = (reserved.lowerBound + low)...(reserved.upperBound + high)
            if high > 0 { reservedBy.append(low == high ? holder : holder + " (maybe)") }
        }

        mutating func add(committed low: Int64, _ high: Int64, by holder: String) {
            committed = (committed.lowerBound + low)...(committed.upperBound + high)
            if high > 0 { committedBy.append(low == high ? holder : holder + " (maybe)") }
        }
    }

    /// The bounds of every cell's `reserved` and `committed` at a read during `read`, from the
    /// reservations as `findings` found them (asked after the read when `questionsAfterRead`,
    /// before it otherwise).
    func bucketBounds(read: ClosedRange<Int64>, findings: [String: Finding], questionsAfterRead: Bool,
                      model: CrashModel) -> [CellKey: BucketBounds] {
        var bounds: [CellKey: BucketBounds] = [:]
        for id in findings.keys.sorted() {
            guard let entry = model.reservations[id], let finding = findings[id] else { continue }
            // A reservation the question itself started did not exist at a read before it.
            if questionsAfterRead && !finding.existed { continue }
            let reply = finding.reply
            var expiry = entry.expiresAtMilliseconds ?? read  // unknown: either way
            if reply.state == .held { expiry = reply.expiresAtMilliseconds...reply.expiresAtMilliseconds }
            let timed = ReservationExpectation.byTime(expiry: expiry, window: read, margin: expiryMarginMilliseconds)
            let inFlight = entry.pending.map { ", \($0) in flight at the kill" } ?? ""
            for (cell, units) in entry.units(of: reply.lines) {
                var cellBounds = bounds[cell, default: BucketBounds()]
                let holder = "\(id) \(reply.state) \(units)\(inFlight)"
                switch reply.state {
                case .held where questionsAfterRead:
                    cellBounds.add(reserved: units, units, by: holder)  // held when asked, so when read before
                case .held, .expired:
                    cellBounds.add(reserved: timed == [.held] ? units : 0, timed == [.expired] ? 0 : units, by: holder)
                case .committed where finding.changedIt:
                    cellBounds.add(reserved: units, units, by: holder + " (was held)")  // the question committed it
                case .released where finding.changedIt:
                    // The question released a held or committed one.
                    cellBounds.add(reserved: 0, units, by: holder + " (was live)")
                    cellBounds.add(committed: 0, units, by: holder + " (was live)")
                case .committed:
                    cellBounds.add(committed: units, units, by: holder)
                case .released, .refused:
                    // Counts for nothing, but named when an operation on it was cut by the kill:
                    // it is the likely cause of a difference on this cell.
                    if entry.pending != nil {
                        cellBounds.reservedBy.append(holder + " (counts 0)")
                        cellBounds.committedBy.append(holder + " (counts 0)")
                    }
                }
                bounds[cell] = cellBounds
            }
        }
        return bounds
    }

    /// Checks `reserved` and `committed` of every cell against the reservations found. A
    /// difference already reported stays in `model.bucketDrift` (the tool cannot repair the
    /// server), so that each one is reported once, in the check that first sees it; a cell that
    /// matches its reservations again (say the reservation behind the difference was released
    /// since) forgets its drift.
    func checkBuckets(_ cells: [CellKey: WireCell], read: ClosedRange<Int64>, findings: [String: Finding],
                      questionsAfterRead: Bool, model: inout CrashModel, stage: String, report: inout CycleReport) {
        let bounds = bucketBounds(read: read, findings: findings, questionsAfterRead: questionsAfterRead, model: model)
        for key in Set(cells.keys).union(bounds.keys).union(model.bucketDrift.keys).sorted() {
            let expected = bounds[key] ?? BucketBounds()
            var drift = model.bucketDrift[key, default: BucketDrift()]
            let reserved = Int64(cells[key]?.reserved ?? 0)
            let committed = Int64(cells[key]?.committed ?? 0)
            let earlier = { (value: Int64) in value == 0 ? "" : " (\(value) left over from an earlier violation)" }
            if let problem = Self.bucketProblem(reserved, expected: expected.reserved, drift: &drift.reserved) {
                report.violations.append(CrashViolation(.reservedBucket, key.description,
                    "\(stage): reserved \(reserved), the reservations found held there hold \(expected.reserved.rangeDescription)"
                        + "\(earlier(problem)) (\(Self.holderList(expected.reservedBy)))"))
            }
            if let problem = Self.bucketProblem(committed, expected: expected.committed, drift: &drift.committed) {
                report.violations.append(CrashViolation(.committedBucket, key.description,
                    "\(stage): committed \(committed), the reservations found committed there hold \(expected.committed.rangeDescription)"
                        + "\(earlier(problem)) (\(Self.holderList(expected.committedBy)))"))
            }
            model.bucketDrift[key] = drift == BucketDrift() ? nil : drift
        }
    }

    /// Whether `found` is a new difference from `expected` (given the drift reported before): nil
    /// when it is not (the drift is reset when `found` matches `expected` itself), else the drift
    /// that was known before (and `drift` becomes the new difference).
    static func bucketProblem(_ found: Int64, expected: ClosedRange<Int64>, drift: inout Int64) -> Int64? {
        if expected.contains(found) {
            drift = 0
            return nil
        }
        if expected.shifted(by: drift).contains(found) { return nil }
        let before = drift
        drift = found - expected.clamped(found)
        return before
    }

    /// The holders of a cell's units, those with an operation in flight at the kill or an expiry
    /// near the read first, at most 8.
    static func holderList(_ holders: [String]) -> String {
        guard !holders.isEmpty else { return "none" }
        let notable = holders.filter { $0.contains("in flight") || $0.contains("(maybe)") || $0.contains("(was") }
        let others = holders.filter { !notable.contains($0) }
        let shown = (notable + others).prefix(8)
        return shown.joined(separator: ", ") + (holders.count > shown.count ? ", and \(holders.count - shown.count) more" : "")
    }

    /// The channel defined at the start is still there, unchanged.
    func checkChannel(_ client: ATPConnection, _ channel: WireChannelDefinition, report: inout CycleReport) async {
        do {
            let found = try await client.channels(channel.name)
            if found != [channel] {
                report.violations.append(CrashViolation(.channel, channel.name, "defined as \(channel), found \(found)"))
            }
        } catch {
            report.violations.append(CrashViolation(.channel, channel.name, "defined as \(channel), asking for it: \(error)"))
        }
    }

    /// onHand of every cell: at least the acknowledged receives, at most those plus the unknown
    /// ones; then the unknown batches are resent (dedup drops what was applied) and onHand must be
    /// exactly the model's.
    func checkOnHand(_ client: ATPConnection, recovered: [CellKey: WireCell], model: inout CrashModel,
                     report: inout CycleReport) async throws {
        var unknownUnits: [CellKey: Int64] = [:]
        for batch in model.pendingBatches.values {
            for event in batch.events { unknownUnits[CellKey(sku: event.sku, location: event.location), default: 0] += event.quantity }
        }
        for key in Set(recovered.keys).union(model.onHand.keys).sorted() {
            let found = Int64(recovered[key]?.onHand ?? 0)
            let acknowledged = model.onHand[key, default: 0]
            if found < acknowledged || found > acknowledged + unknownUnits[key, default: 0] {
                report.violations.append(CrashViolation(.onHand, key.description,
                    "onHand \(found), acknowledged receives \(acknowledged), unknown ones up to \(unknownUnits[key, default: 0])"))
            }
        }
        for batch in model.pendingBatches.values.sorted(by: { $0.source < $1.source }) {
            let reply = try await client.ingest(source: batch.source, events: batch.events)
            report.unknownEventsApplied += Int(reply.duplicateCount)
            if Int(reply.appliedCount + reply.duplicateCount) != batch.events.count || !reply.rejections.isEmpty {
                report.violations.append(CrashViolation(.resendCounted, batch.source,
                    "resend of the unacknowledged batch (sequences \(batch.events.first!.sequence)...\(batch.events.last!.sequence)): \(reply)"))
            }
            model.apply(batch.events)
            model.remember(batch.events, source: batch.source)
        }
        model.pendingBatches = [:]
        let after = try await cells(client)
        for key in Set(after.keys).union(model.onHand.keys).sorted() where Int64(after[key]?.onHand ?? 0) != model.onHand[key, default: 0] {
            report.violations.append(CrashViolation(.onHandAfterResend, key.description,
                "onHand \(after[key]?.onHand ?? 0) after the resend of the unknown batches, the model says \(model.onHand[key, default: 0])"))
            // Reported once: the next cycles look for new differences.
            model.onHand[key] = Int64(after[key]?.onHand ?? 0)
        }
    }
}

extension Set<ReservationState> {
    /// "held or expired", in state order.
    var sortedDescription: String {
        sorted { $0.rawValue < $1.rawValue }.map(\.description).joined(separator: " or ")
    }
}

extension ClosedRange<Int64> {
    /// "3" or "1...4".
    var rangeDescription: String { lowerBound == upperBound ? "\(lowerBound)" : "\(lowerBound)...\(upperBound)" }

    /// The range moved by `offset`.
    func shifted(by offset: Int64) -> ClosedRange<Int64> { (lowerBound + offset)...(upperBound + offset) }

    /// The value of the range nearest to `value`.
    func clamped(_ value: Int64) -> Int64 { Swift.min(Swift.max(value, lowerBound), upperBound) }
}
