@testable import ATPLedger
import Testing

/// At-least-once delivery: duplicates, reordering, too-old sequences and the per-(source, shard)
/// windows (docs/SEMANTICS.md §4).
@Suite struct DedupTests {
    func fixture() -> LedgerFixture { LedgerFixture { $0.dedupWindowSequences = 64 } }

    @Test func duplicatesAreDroppedAndCounted() {
        let f = fixture()
        f.applied(f.event(.receive, "A", "S1", 1, sequence: 1), f.event(.receive, "A", "S1", 2, sequence: 2),
                  f.event(.receive, "A", "S1", 4, sequence: 3))
        let again = f.apply(f.event(.receive, "A", "S1", 2, sequence: 2), f.event(.receive, "A", "S1", 1, sequence: 1))
        #expect(again.outcomes == [.duplicate, .duplicate])
        #expect(again.duplicateCount == 2 && again.appliedCount == 0)
        // Within one batch too: the second copy is a duplicate of the first.
        let twice = f.apply(f.event(.receive, "A", "S1", 8, sequence: 4), f.event(.receive, "A", "S1", 8, sequence: 4))
        #expect(twice.outcomes == [.applied, .duplicate])
        #expect(f.cell("A", "S1").cell.onHand == 15)
        let counters = f.counters
        #expect(counters.duplicatesDropped == 3)
        #expect(counters.eventsRejected == 0)
        #expect(f.engine.rejections().entries.isEmpty, "duplicates are not rejections")
    }

    /// The example of §4: W = 64, apply 100, 101, 105; then 103 applied, 101 duplicate, 42 applied, 41 too old.
    @Test func reorderingWithinTheWindowIsApplied() {
        let f = fixture()
        f.applied(f.event(.receive, "A", "S1", 1, sequence: 100), f.event(.receive, "A", "S1", 1, sequence: 101),
                  f.event(.receive, "A", "S1", 1, sequence: 105))
        let result = f.apply(
            f.event(.receive, "A", "S1", 10, sequence: 103), f.event(.receive, "A", "S1", 10, sequence: 101),
            f.event(.receive, "A", "S1", 100, sequence: 42), f.event(.receive, "A", "S1", 1000, sequence: 41))
        #expect(result.outcomes == [.applied, .duplicate, .applied, .rejected(.sequenceTooOld)])
        #expect(f.cell("A", "S1").cell.onHand == 113)
        // 104 and 102 are still open.
        #expect(f.apply(f.event(.receive, "A", "S1", 1, sequence: 104)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, sequence: 102)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, sequence: 103)).outcomes == [.duplicate])
    }

    @Test func tooOldIsRejectedCountedAndLogged() {
        let f = fixture()
        f.applied(f.event(.receive, "A", "S1", 1, sequence: 1_000))
        let event = f.event(.receive, "A", "S1", 5, sequence: 936)
        #expect(f.apply(event).outcomes == [.rejected(.sequenceTooOld)])
        #expect(f.apply(f.event(.receive, "A", "S1", 5, sequence: 937)).outcomes == [.applied])
        #expect(f.counters.rejectionsByReason[Int(RejectionReason.sequenceTooOld.rawValue)] == 1)
        let log = f.engine.rejections().entries
        #expect(log.count == 1 && log[0].reason == .sequenceTooOld && log[0].event == event)
        #expect(f.cell("A", "S1").cell.onHand == 6)
        // A jump of W or more forgets the whole window.
        #expect(f.apply(f.event(.receive, "A", "S1", 1, sequence: 2_000)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, sequence: 1_937)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, sequence: 1_936)).outcomes == [.rejected(.sequenceTooOld)])
    }

    @Test func windowsArePerSource() {
        let f = fixture()
        f.applied(f.event(.receive, "A", "S1", 1, source: "wms", sequence: 5),
                  f.event(.receive, "A", "S1", 1, source: "pos", sequence: 5),
                  f.event(.receive, "A", "S1", 1, source: "erp", sequence: 5))
        f.applied(f.event(.receive, "A", "S1", 1, source: "wms", sequence: 10_000))
        // pos is not judged against wms's newest.
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "pos", sequence: 6)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "wms", sequence: 6)).outcomes
            == [.rejected(.sequenceTooOld)])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "erp", sequence: 5)).outcomes == [.duplicate])
        #expect(f.cell("A", "S1").cell.onHand == 5)
    }

    /// Deviation from DESIGN: windows are per (source, shard).
    @Test func windowsArePerSourceAndShard() {
        let f = fixture()
        // A, B, C are SKU ids 0, 1, 8: A and C share shard 0, B is in shard 1.
        _ = f.sku("A"); _ = f.sku("B")
        for n in 2..<8 { _ = f.sku("filler-\(n)") }
        #expect(f.engine.shardIndex(of: f.sku("C")) == f.engine.shardIndex(of: f.sku("A")))
        #expect(f.engine.shardIndex(of: f.sku("B")) != f.engine.shardIndex(of: f.sku("A")))

        f.applied(f.event(.receive, "A", "S1", 1, source: "wms", sequence: 1_000_000))
        // Shard 1 has not seen wms that far ahead: sequence 1 is new there.
        #expect(f.apply(f.event(.receive, "B", "S1", 1, source: "wms", sequence: 1)).outcomes == [.applied])
        // Shard 0 has: sequence 1 is too old for C, a SKU never seen before.
        #expect(f.apply(f.event(.receive, "C", "S1", 1, source: "wms", sequence: 1)).outcomes
            == [.rejected(.sequenceTooOld)])
        // One (source, sequence) on two SKUs: applied twice across shards, a duplicate within one.
        #expect(f.apply(f.event(.receive, "B", "S1", 1, source: "wms", sequence: 999_999)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "C", "S1", 1, source: "wms", sequence: 999_999)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "wms", sequence: 999_999)).outcomes == [.duplicate])
        #expect(f.cell("A", "S1").cell.onHand == 1 && f.cell("B", "S1").cell.onHand == 2)
        #expect(f.cell("C", "S1").cell.onHand == 1)
    }

    @Test func validationComesBeforeDedup() {
        let f = fixture()
        f.applied(f.event(.receive, "A", "S1", 1, sequence: 50))
        // A bad copy of a seen sequence is rejected for what is wrong with it, not dropped.
        #expect(f.apply(f.event(.receive, "A", "S1", 0, sequence: 50)).outcomes == [.rejected(.quantityNotPositive)])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, sequence: 50)).outcomes == [.duplicate])
        #expect(f.counters.duplicatesDropped == 1)
    }

    @Test func firstSequenceMayBeAnything() {
        let f = fixture()
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "s1", sequence: .max)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "s1", sequence: .max)).outcomes == [.duplicate])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "s1", sequence: .max - 63)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "s1", sequence: .max - 64)).outcomes
            == [.rejected(.sequenceTooOld)])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "s2", sequence: 0)).outcomes == [.applied])
        #expect(f.apply(f.event(.receive, "A", "S1", 1, source: "s2", sequence: 0)).outcomes == [.duplicate])
        #expect(f.cell("A", "S1").cell.onHand == 3)
    }

    // MARK: - DedupWindow

    @Test func windowVerdicts() {
        let window = DedupWindow(size: 64)
        #expect(window.newest == nil)
        #expect(window.check(0) == .new && window.check(.max) == .new)
        window.mark(100)
        #expect(window.newest == 100)
        #expect(window.check(100) == .duplicate)
        #expect(window.check(101) == .new)
        #expect(window.check(99) == .new)
        #expect(window.check(37) == .new)
        #expect(window.check(36) == .tooOld)
        #expect(window.check(0) == .tooOld)
        window.mark(99)
        #expect(window.check(99) == .duplicate && window.newest == 100)
        window.mark(37)
        #expect(window.check(37) == .duplicate)
    }

    @Test func windowSlidesAndClearsReusedBits() {
        let window = DedupWindow(size: 64)
        for s in 0..<64 as Range<UInt64> { window.mark(s) }
        // 64 reuses the bit of 0.
        #expect(window.check(64) == .new)
        window.mark(64)
        #expect(window.check(0) == .tooOld)
        #expect(window.check(1) == .duplicate)
        // A jump by 10 clears the bits of 65...73 (which held 1...9).
        window.mark(74)
        #expect(window.check(9) == .tooOld && window.check(10) == .tooOld)
        #expect(window.check(11) == .duplicate && window.check(64) == .duplicate)
        for s in 65..<74 as Range<UInt64> { #expect(window.check(s) == .new, "\(s)") }
        #expect(window.check(74) == .duplicate)
    }

    @Test func windowLargeJumps() {
        let window = DedupWindow(size: 64)
        for s in 0..<64 as Range<UInt64> { window.mark(s) }
        // A jump of exactly the window size forgets everything below.
        window.mark(127)
        #expect(window.check(63) == .tooOld)
        for s in 64..<127 as Range<UInt64> { #expect(window.check(s) == .new, "\(s)") }
        // A huge jump.
        window.mark(1 << 62)
        #expect(window.check(127) == .tooOld)
        for s in ((1 << 62) - 63)..<(1 << 62) as Range<UInt64> { #expect(window.check(s) == .new) }
        window.mark(.max)
        #expect(window.check(.max) == .duplicate && window.check(.max - 1) == .new && window.check(.max - 64) == .tooOld)
        #expect(window.check(1 << 62) == .tooOld)
    }

    @Test func windowRestoresFromWords() {
        let window = DedupWindow(size: 128)
        for s: UInt64 in [5, 9, 200, 150, 199] { window.mark(s) }
        let restored = DedupWindow(size: 128, newest: window.newest, words: window.words)
        for s in 0..<260 as Range<UInt64> { #expect(restored.check(s) == window.check(s), "\(s)") }
    }

    /// The window against a plain reference (a set of every applied sequence), seeded.
    @Test(arguments: [UInt64(1), 2, 3, 0xDEC0DE])
    func windowMatchesReference(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let size: UInt64 = 64
        let window = DedupWindow(size: Int(size))
        var applied = Set<UInt64>()
        var newest: UInt64? = nil
        var mismatches = 0
        var base: UInt64 = 1_000
        for _ in 0..<20_000 {
            // Mostly small steps around the newest, sometimes a jump.
            let roll = random.next() % 100
            if roll < 2 { base += random.next() % 500 }
            let offset = random.next() % 160
            let sequence = roll % 2 == 0 ? base + offset : base >= offset ? base - offset : 0
            let expected: DedupWindow.Verdict
            if let newest {
                if sequence > newest { expected = .new }
                else if newest - sequence >= size { expected = .tooOld }
                else { expected = applied.contains(sequence) ? .duplicate : .new }
            } else {
                expected = .new
            }
            if window.check(sequence) != expected { mismatches += 1 }
            if expected == .new {
                window.mark(sequence)
                applied.insert(sequence)
                newest = max(newest ?? sequence, sequence)
                base = max(base, sequence)
            }
        }
        #expect(mismatches == 0, "seed \(seed)")
    }
}
