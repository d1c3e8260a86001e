@testable import ATPLedger
import Testing

/// Malformed names and bad events: each refused with its reason, nothing else changes, each is
/// counted and logged (docs/SEMANTICS.md §1 and §5).
@Suite struct BadInputTests {
    // MARK: - Names

    static func intern(_ catalog: Catalog, _ bytes: [UInt8], _ kind: NameKind) throws(InvalidNameError) -> UInt32 {
        let result: Result<UInt32, InvalidNameError> = bytes.withUnsafeBytes { raw in
            do throws(InvalidNameError) { return .success(try catalog.intern(raw, kind: kind)) } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    static func problem(_ catalog: Catalog, _ bytes: [UInt8], _ kind: NameKind) -> InvalidNameError.Problem? {
        do throws(InvalidNameError) {
            _ = try intern(catalog, bytes, kind)
            return nil
        } catch {
            return error.problem
        }
    }

    /// Byte strings that are not well-formed UTF-8.
    static let notUTF8: [[UInt8]] = [
        [0x80],                         // stray continuation byte
        [0x61, 0xBF, 0x62],             // stray continuation in the middle
        [0xC0, 0x80],                   // overlong NUL
        [0xC1, 0xBF],                   // overlong 2-byte
        [0xE0, 0x80, 0x80],             // overlong 3-byte
        [0xE0, 0x9F, 0xBF],             // overlong 3-byte (U+07FF)
        [0xF0, 0x80, 0x80, 0x80],       // overlong 4-byte
        [0xF0, 0x8F, 0xBF, 0xBF],       // overlong 4-byte (U+FFFF)
        [0xED, 0xA0, 0x80],             // surrogate U+D800
        [0xED, 0xBF, 0xBF],             // surrogate U+DFFF
        [0xF4, 0x90, 0x80, 0x80],       // U+110000
        [0xF5, 0x80, 0x80, 0x80],       // lead byte past F4
        [0xFF],
        [0xFE],
        [0xE2, 0x82],                   // truncated 3-byte
        [0x61, 0xE2, 0x28, 0xA1],       // bad continuation
        [0xF0, 0x9F, 0x98],             // truncated 4-byte at the end
        [0xC3],                         // truncated 2-byte
    ]

    /// Byte strings at the edges that are well-formed.
    static let edgeUTF8: [[UInt8]] = [
        [0x00],                         // NUL is a valid scalar
        [0x7F],
        [0xC2, 0x80],                   // U+0080
        [0xDF, 0xBF],                   // U+07FF
        [0xE0, 0xA0, 0x80],             // U+0800
        [0xED, 0x9F, 0xBF],             // U+D7FF
        [0xEE, 0x80, 0x80],             // U+E000
        [0xEF, 0xBF, 0xBF],             // U+FFFF
        [0xF0, 0x90, 0x80, 0x80],       // U+10000
        [0xF4, 0x8F, 0xBF, 0xBF],       // U+10FFFF
    ]

    @Test(arguments: [NameKind.sku, .location, .channel, .source])
    func malformedNamesRefusedByCatalog(kind: NameKind) {
        let catalog = Catalog()
        let bytesMax = kind == .channel ? 32 : 64
        #expect(Self.problem(catalog, [], kind) == .empty)
        #expect(Self.problem(catalog, Array(repeating: 0x61, count: 65), kind) == .tooLong(bytes: 65, bytesMax: bytesMax))
        #expect(Self.problem(catalog, Array(repeating: 0x61, count: bytesMax + 1), kind)
            == .tooLong(bytes: bytesMax + 1, bytesMax: bytesMax))
        for bytes in Self.notUTF8 {
            #expect(Self.problem(catalog, bytes, kind) == .notUTF8, "\(bytes)")
        }
        #expect(catalog.count(kind) == 0, "nothing refused was interned")

        // The longest name and the edge scalars are accepted.
        #expect(Self.problem(catalog, Array(repeating: 0x62, count: bytesMax), kind) == nil)
        // A multi-byte name at the limit: 16 (or 8) four-byte scalars.
        #expect(Self.problem(catalog, Array([0xF0, 0x9F, 0x98, 0x80].repeated(bytesMax / 4)), kind) == nil)
        for bytes in Self.edgeUTF8 {
            #expect(Self.problem(catalog, bytes, kind) == nil, "\(bytes)")
        }
        #expect(catalog.count(kind) == 2 + Self.edgeUTF8.count)
    }

    @Test func channelNamesAreAtMost32Bytes() {
        let catalog = Catalog()
        #expect(throws: InvalidNameError(kind: .channel, problem: .tooLong(bytes: 33, bytesMax: 32))) {
            try catalog.channel(String(repeating: "c", count: 33))
        }
        #expect(throws: Never.self) { try catalog.channel(String(repeating: "c", count: 32)) }
        // 64 bytes is fine for the others.
        #expect(throws: Never.self) { try catalog.sku(String(repeating: "s", count: 64)) }
        #expect(throws: InvalidNameError(kind: .sku, problem: .tooLong(bytes: 65, bytesMax: 64))) {
            try catalog.sku(String(repeating: "s", count: 65))
        }
        #expect(throws: InvalidNameError(kind: .location, problem: .empty)) { try catalog.location("") }
        #expect(throws: InvalidNameError(kind: .source, problem: .empty)) { try catalog.source("") }
        // 22 three-byte scalars are 66 bytes: too long although 22 characters.
        #expect(throws: InvalidNameError(kind: .sku, problem: .tooLong(bytes: 66, bytesMax: 64))) {
            try catalog.sku(String(repeating: "€", count: 22))
        }
    }

    /// Names shown in logs: valid UTF-8 as it is, stray bytes as \xNN, never more than 255 bytes.
    @Test func escapedNamesArePrintableAndBounded() {
        func escaped(_ bytes: [UInt8], bytesMax: Int = 255) -> String {
            bytes.withUnsafeBytes { escapedName($0, bytesMax: bytesMax) }
        }
        #expect(escaped(Array("SKU-é".utf8)) == "SKU-é")
        #expect(escaped([0x53, 0xC0, 0xAF, 0x54]) == "S\\xC0\\xAFT")
        #expect(escaped([0x41, 0x80]) == "A\\x80")
        #expect(escaped([0xED, 0xA0, 0x80]) == "\\xED\\xA0\\x80")
        #expect(escaped([0x05, 0xFF]) == "\u{05}\\xFF")
        let long = escaped([UInt8](repeating: 0xFF, count: 255))
        #expect(long.utf8.count <= 255 && long.hasSuffix("...") && long.hasPrefix("\\xFF\\xFF"))
        #expect(escaped(Array("abcdef".utf8), bytesMax: 5) == "ab...")
    }

    @Test func invalidNameErrorsMapToRejectionReasons() {
        #expect(InvalidNameError(kind: .sku, problem: .empty).reason == .invalidSKUName)
        #expect(InvalidNameError(kind: .location, problem: .notUTF8).reason == .invalidLocationName)
        #expect(InvalidNameError(kind: .source, problem: .tooLong(bytes: 65, bytesMax: 64)).reason == .invalidSourceName)
        #expect(InvalidNameError(kind: .reservation, problem: .empty).reason == .invalidReservationID)
        #expect(InvalidNameError(kind: .channel, problem: .notUTF8).reason == .malformed)
        #expect(InvalidNameError(kind: .sku, problem: .tableFull).reason == .nameTableFull)
    }

    @Test func malformedReservationIDs() {
        func problem(_ bytes: [UInt8]) -> InvalidNameError.Problem? {
            bytes.withUnsafeBytes { raw in
                do throws(InvalidNameError) {
                    _ = try ReservationID(bytes: raw)
                    return nil
                } catch {
                    return error.problem
                }
            }
        }
        #expect(problem([]) == .empty)
        #expect(problem(Array(repeating: 0x61, count: 65)) == .tooLong(bytes: 65, bytesMax: 64))
        for bytes in Self.notUTF8 { #expect(problem(bytes) == .notUTF8, "\(bytes)") }
        #expect(problem(Array(repeating: 0x61, count: 64)) == nil)
        #expect(try! ReservationID(String(repeating: "x", count: 64)).description.utf8.count == 64)
    }

    // MARK: - Events

    /// Every cell of every SKU the catalog knows, with versions, plus the cell count.
    static func snapshot(_ f: LedgerFixture) -> ([[(Buckets, UInt32)]], Int) {
        let skus = (0..<f.catalog.count(.sku)).map { SKUID(UInt32($0)) }
        let result = f.engine.query(skus.map { .sku($0) })
        let cells = skus.indices.map { i in result.cells(of: i).map { (Buckets($0.cell), $0.cell.version) } }
        return (cells, f.engine.statistics().cellCount)
    }

    static func same(_ a: ([[(Buckets, UInt32)]], Int), _ b: ([[(Buckets, UInt32)]], Int)) -> Bool {
        a.1 == b.1 && a.0.count == b.0.count
            && zip(a.0, b.0).allSatisfy { x, y in x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 } }
    }

    /// A fixture with cells near the edges: A@S1 10 on hand, BIG@S1 2e9, NEG@S1 −2e9, A@DC 2e9 inbound,
    /// and source "feed" at sequence 1,000 on A's shard. Dedup window 64.
    static func edgeFixture() -> LedgerFixture {
        let f = LedgerFixture { $0.dedupWindowSequences = 64 }
        f.applied(
            f.event(.receive, "A", "S1", 10),
            f.event(.receive, "BIG", "S1", 1_000_000_000), f.event(.receive, "BIG", "S1", 1_000_000_000),
            f.event(.adjust, "NEG", "S1", -1_000_000_000) { $0.bucket = .onHand },
            f.event(.adjust, "NEG", "S1", -1_000_000_000) { $0.bucket = .onHand },
            f.event(.adjust, "A", "DC", 1_000_000_000) { $0.bucket = .inbound },
            f.event(.adjust, "A", "DC", 1_000_000_000) { $0.bucket = .inbound },
            f.event(.receive, "A", "S1", 1, source: "feed", sequence: 1_000))
        return f
    }

    /// Each reason the shard can produce, with events that produce it.
    static func badEvents(_ f: LedgerFixture) -> [(String, EventBatch, RejectionReason)] {
        func one(_ event: StockEvent) -> EventBatch { EventBatch(events: [event]) }
        let s1 = f.location("S1")
        let fresh = f.location("FRESH")
        let dc = f.location("DC")
        var correlated = EventBatch()
        correlated.append(f.event(.receive, "A", "S1", 1), correlation: f.rid("order"))
        var pastEnd = EventBatch()
        pastEnd.append(f.event(.ship, "A", "S1", 1), correlation: f.rid("order"))
        pastEnd.events[0].correlation = 2
        return [
            ("receive 0", one(f.event(.receive, "A", "S1", 0)), .quantityNotPositive),
            ("ship -1", one(f.event(.ship, "A", "S1", -1)), .quantityNotPositive),
            ("disposition 0", one(f.event(.disposition, "A", "S1", 0) { $0.outcome = .restock }), .quantityNotPositive),
            ("writeOff 0", one(f.event(.writeOff, "A", "S1", 0) { $0.bucket = .onHand }), .quantityNotPositive),
            ("receive too much", one(f.event(.receive, "A", "S1", 1_000_000_001)), .quantityTooLarge),
            ("adjust too negative", one(f.event(.adjust, "A", "S1", -1_000_000_001) { $0.bucket = .onHand }),
             .quantityTooLarge),
            ("count too much", one(f.event(.count, "A", "S1", 1_000_000_001)), .quantityTooLarge),
            ("safety too much", one(f.event(.setSafetyStock, "A", "S1", 1_000_000_001)), .quantityTooLarge),
            ("setSafetyStock -1", one(f.event(.setSafetyStock, "A", "S1", -1)), .valueNegative),
            ("count -1", one(f.event(.count, "A", "S1", -1)), .valueNegative),
            ("count damaged -1", one(f.event(.count, "A", "S1", 5) {
                $0.flags = .countsDamaged
                $0.countDamaged = -1
            }), .valueNegative),
            ("count quarantine -2", one(f.event(.count, "A", "S1", 5) {
                $0.flags = .countsQuarantine
                $0.countQuarantine = -2
            }), .valueNegative),
            ("count damaged too much", one(f.event(.count, "A", "S1", 5) {
                $0.flags = .countsDamaged
                $0.countDamaged = 1_000_000_001
            }), .quantityTooLarge),
            ("count quarantine too much", one(f.event(.count, "A", "S1", 5) {
                $0.flags = .countsQuarantine
                $0.countQuarantine = 1_000_000_001
            }), .quantityTooLarge),
            ("adjust 0", one(f.event(.adjust, "A", "S1", 0) { $0.bucket = .onHand }), .deltaZero),
            ("adjust committed", one(f.event(.adjust, "A", "S1", 1) { $0.bucket = .committed }), .bucketNotAllowed),
            ("adjust reserved", one(f.event(.adjust, "A", "S1", -1) { $0.bucket = .reserved }), .bucketNotAllowed),
            ("adjust bucket 42", one(f.event(.adjust, "A", "S1", 1) { $0.bucketCode = 42 }), .bucketNotAllowed),
            ("writeOff inbound", one(f.event(.writeOff, "A", "S1", 1) { $0.bucket = .inbound }), .bucketNotAllowed),
            ("writeOff safetyStock", one(f.event(.writeOff, "A", "S1", 1) { $0.bucket = .safetyStock }),
             .bucketNotAllowed),
            ("writeOff committed", one(f.event(.writeOff, "A", "S1", 1) { $0.bucket = .committed }), .bucketNotAllowed),
            ("disposition outcome 4", one(f.event(.disposition, "A", "S1", 1) { $0.outcomeCode = 4 }),
             .unknownDispositionOutcome),
            ("transfer to itself", one(f.event(.transferOut, "A", "S1", 1) { $0.toLocation = s1 }),
             .transferToSameLocation),
            ("receive past Int32.max", one(f.event(.receive, "BIG", "S1", 200_000_000)), .bucketOverflow),
            ("ship past Int32.min", one(f.event(.ship, "NEG", "S1", 200_000_000)), .bucketOverflow),
            ("adjust onHand past Int32.max", one(f.event(.adjust, "BIG", "S1", 1_000_000_000) { $0.bucket = .onHand }),
             .bucketOverflow),
            ("transfer from NEG to a fresh cell", one(f.event(.transferOut, "NEG", "S1", 200_000_000) {
                $0.toLocation = fresh
            }), .bucketOverflow),
            ("transfer into a full inbound", one(f.event(.transferOut, "A", "S1", 200_000_000) { $0.toLocation = dc }),
             .bucketOverflow),
            ("too old", one(f.event(.receive, "A", "S1", 1, source: "feed", sequence: 936)), .sequenceTooOld),
            ("flags on ship", one(f.event(.ship, "A", "S1", 1) { $0.flags = .intoQuarantine }), .malformed),
            ("unknown receive flag", one(f.event(.receive, "A", "S1", 1) { $0.flags = StockEvent.Flags(rawValue: 0x10) }),
             .malformed),
            ("count with a receive flag", one(f.event(.count, "A", "S1", 1) { $0.flags = .closesInbound }), .malformed),
            ("correlation on receive", correlated, .invalidCorrelation),
            ("correlation past the batch", pastEnd, .invalidCorrelation),
        ]
    }

    /// A batch marked as checked against another limit than the engine's (`checkedForQuantityMax`)
    /// is checked again by the shards: every bad event is still refused with its reason.
    @Test func aBatchCheckedAgainstAnotherLimitIsCheckedAgain() {
        let f = Self.edgeFixture()
        var mismatches: [String] = []
        for (name, batch, reason) in Self.badEvents(f) {
            var marked = batch
            marked.checkedForQuantityMax = f.engine.configuration.quantityMax - 1
            let outcomes = f.engine.apply(marked).outcomes
            if outcomes != [.rejected(reason)] { mismatches.append("\(name): \(outcomes)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test func everyBadEventIsRefusedAndChangesNothing() {
        let f = Self.edgeFixture()
        let cases = Self.badEvents(f)
        for (name, batch, reason) in cases {
            let before = Self.snapshot(f)
            let result = f.engine.apply(batch)
            #expect(result.outcomes == [.rejected(reason)], "\(name)")
            #expect(Self.same(before, Self.snapshot(f)), "\(name) changed something")
        }
        #expect(f.catalog.existingLocation("FRESH") != nil)
        #expect(f.cell("NEG", "FRESH").exists == false, "a rejected transfer creates no cell")

        // Every reason the shard produces is covered.
        let produced = Set(cases.map(\.2))
        #expect(produced == [.quantityNotPositive, .quantityTooLarge, .valueNegative, .deltaZero, .bucketNotAllowed,
                             .unknownDispositionOutcome, .transferToSameLocation, .bucketOverflow, .sequenceTooOld,
                             .malformed, .invalidCorrelation])

        // The log holds each, in order, with the event as submitted and the engine's time.
        let page = f.engine.rejections()
        #expect(page.entries.map(\.reason) == cases.map(\.2))
        #expect(page.entries.map(\.logSequence) == (1...UInt64(cases.count)).map { $0 })
        #expect(page.entries.map(\.event) == cases.map { Optional($0.1.events[0]) })
        #expect(page.entries.allSatisfy { $0.atMilliseconds == f.engine.clock.nowMilliseconds() && $0.detail.isEmpty })
        #expect(page.newestSequence == UInt64(cases.count) && page.oldestKeptSequence == 1 && page.droppedCount == 0)

        // Counted by reason.
        let counters = f.counters
        for reason in RejectionReason.allCases {
            let expected = UInt64(cases.count { $0.2 == reason })
            #expect(counters.rejectionsByReason[Int(reason.rawValue)] == expected, "\(reason)")
        }
        #expect(counters.eventsRejected == UInt64(cases.count))
        f.engine.checkInvariants()
    }

    @Test func rejectedEventDoesNotConsumeItsSequence() {
        let f = Self.edgeFixture()
        // Refused for its quantity, then resent corrected with the same sequence: applied.
        #expect(f.apply(f.event(.receive, "A", "S1", 0, source: "pos", sequence: 7)).outcomes == [.rejected(.quantityNotPositive)])
        #expect(f.apply(f.event(.receive, "A", "S1", 2, source: "pos", sequence: 7)).outcomes == [.applied])
        // Refused for overflow, then resent with a quantity that fits: applied.
        #expect(f.apply(f.event(.receive, "BIG", "S1", 200_000_000, source: "pos", sequence: 8)).outcomes
            == [.rejected(.bucketOverflow)])
        #expect(f.apply(f.event(.receive, "BIG", "S1", 100_000_000, source: "pos", sequence: 8)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "BIG", "S1", 100_000_000, source: "pos", sequence: 8)).outcomes == [.duplicate])
        #expect(f.cell("A", "S1").cell.onHand == 13)
        #expect(f.cell("BIG", "S1").cell.onHand == 2_100_000_000)
    }

    @Test func oneBadEventInABatchDoesNotStopTheOthers() {
        let f = LedgerFixture()
        let result = f.apply(
            f.event(.receive, "A", "S1", 5), f.event(.receive, "B", "S1", 0), f.event(.receive, "C", "S1", 7),
            f.event(.adjust, "A", "S1", 0) { $0.bucket = .onHand }, f.event(.ship, "A", "S1", 2))
        #expect(result.outcomes == [.applied, .rejected(.quantityNotPositive), .applied, .rejected(.deltaZero), .applied])
        #expect(result.appliedCount == 3)
        #expect(result.rejections.map(\.index) == [1, 3])
        #expect(f.cell("A", "S1").cell.onHand == 3)
        #expect(f.cell("B", "S1").exists == false)
        #expect(f.cell("C", "S1").cell.onHand == 7)
    }

    // MARK: - The rejection log

    @Test func rejectionLogCapacityDropsOldestAndPages() {
        let f = LedgerFixture { $0.rejectionLogCapacity = 5 }
        for n in 1...12 {
            #expect(f.apply(f.event(.receive, "A", "S1", -Int64(n))).outcomes == [.rejected(.quantityNotPositive)])
        }
        let all = f.engine.rejections()
        #expect(all.entries.map(\.logSequence) == [8, 9, 10, 11, 12])
        #expect(all.entries.map { $0.event!.quantity } == [-8, -9, -10, -11, -12])
        #expect(all.oldestKeptSequence == 8 && all.newestSequence == 12 && all.droppedCount == 7)

        // Paging with the last sequence seen; a reader behind the log sees the gap.
        let first = f.engine.rejections(afterSequence: 3, limit: 2)
        #expect(first.entries.map(\.logSequence) == [8, 9])
        #expect(first.oldestKeptSequence > 3 + 1)
        #expect(f.engine.rejections(afterSequence: 9, limit: 2).entries.map(\.logSequence) == [10, 11])
        #expect(f.engine.rejections(afterSequence: 11, limit: 2).entries.map(\.logSequence) == [12])
        #expect(f.engine.rejections(afterSequence: 12, limit: 2).entries.isEmpty)
        #expect(f.engine.rejections(afterSequence: 0, limit: 0).entries.isEmpty)
        #expect(f.engine.rejections(afterSequence: 0, limit: -1).entries.isEmpty)
        #expect(f.engine.rejections(afterSequence: 1 << 40, limit: 10).entries.isEmpty)
        #expect(f.engine.rejections(afterSequence: UInt64(1) << 63 + 5, limit: 10).entries.isEmpty)
        let last = f.engine.rejections(afterSequence: .max, limit: 10)
        #expect(last.entries.isEmpty && last.newestSequence == 12)

        // The counters keep every rejection, the log only the newest.
        #expect(f.counters.rejectionsByReason[Int(RejectionReason.quantityNotPositive.rawValue)] == 12)
        #expect(f.engine.statistics().rejectionLogNewestSequence == 12)
    }

    /// An event with two problems gets the reason of the first check in the documented order
    /// (docs/SEMANTICS.md §5): flags, quantity, counted values, kind-specific fields, correlation.
    /// The wire decoder checks flags first too, so both paths name the same reason.
    @Test func anEventWithTwoProblemsGetsTheFirstInTheDocumentedOrder() {
        let f = Self.edgeFixture()
        var correlatedReceiveOfZero = EventBatch()
        correlatedReceiveOfZero.append(f.event(.receive, "A", "S1", 1), correlation: f.rid("o"))
        correlatedReceiveOfZero.events[0].quantity = 0
        let cases: [(String, EventBatch, RejectionReason)] = [
            ("receive with a count flag and q 0", EventBatch(events: [f.event(.receive, "A", "S1", 0) {
                $0.flags = .countsDamaged
            }]), .malformed),
            ("ship with a receive flag and q 0", EventBatch(events: [f.event(.ship, "A", "S1", 0) {
                $0.flags = .intoQuarantine
            }]), .malformed),
            ("count -1 with a receive flag", EventBatch(events: [f.event(.count, "A", "S1", -1) {
                $0.flags = .intoQuarantine
            }]), .malformed),
            ("count too much with damaged -1", EventBatch(events: [f.event(.count, "A", "S1", 1_000_000_001) {
                $0.flags = .countsDamaged
                $0.countDamaged = -1
            }]), .quantityTooLarge),
            ("count -2,000,000,000: the sign before the size", EventBatch(events: [f.event(.count, "A", "S1", -2_000_000_000)]),
             .valueNegative),
            ("adjust 0 of bucket 42", EventBatch(events: [f.event(.adjust, "A", "S1", 0) { $0.bucketCode = 42 }]),
             .deltaZero),
            ("transfer of 0 to itself", EventBatch(events: [f.event(.transferOut, "A", "S1", 0) {
                $0.toLocation = f.location("S1")
            }]), .quantityNotPositive),
            ("correlated receive of 0", correlatedReceiveOfZero, .quantityNotPositive),
        ]
        for (name, batch, reason) in cases {
            #expect(f.engine.apply(batch).outcomes == [.rejected(reason)], "\(name)")
        }
    }

    @Test func emptyRejectionLog() {
        let f = LedgerFixture()
        let page = f.engine.rejections()
        #expect(page.entries.isEmpty && page.newestSequence == 0 && page.oldestKeptSequence == 1 && page.droppedCount == 0)
    }

    @Test func rejectionsBeforeTheShardAreLoggedAndCounted() {
        let f = LedgerFixture()
        f.apply(f.event(.receive, "A", "S1", 0))
        f.engine.recordRejections([
            RejectedEvent(atMilliseconds: 42, reason: .invalidSKUName, event: nil, detail: "sku \"\\xC0\\x80\""),
        ])
        let page = f.engine.rejections()
        #expect(page.entries.map(\.reason) == [.quantityNotPositive, .invalidSKUName])
        #expect(page.entries[1].logSequence == 2 && page.entries[1].event == nil)
        #expect(page.entries[1].detail == "sku \"\\xC0\\x80\"" && page.entries[1].atMilliseconds == 42)
        let counters = f.counters
        #expect(counters.eventsRejected == 2)
        #expect(counters.rejectionsByReason[Int(RejectionReason.invalidSKUName.rawValue)] == 1)
        #expect(counters.rejectionsByReason[Int(RejectionReason.quantityNotPositive.rawValue)] == 1)
    }
}

extension Array {
    /// The array repeated `count` times.
    func repeated(_ count: Int) -> [Element] { (0..<count).flatMap { _ in self } }
}
