/// An anti-replay window over one source's sequence numbers (like IPsec's): remembers which of the
/// last `size` sequences below the newest were seen.
///
/// - a sequence above the newest moves the window up and is new;
/// - one within the window is new unless its bit is set (then a duplicate);
/// - one at or below newest − size is too old: the window can no longer tell.
///
/// The window's bits live in raw memory owned by a small class, so the hot path checks and marks a
/// sequence with plain loads and stores (no copy-on-write or uniqueness checks, and through
/// `DedupBits` no reference counting). Copies of a `DedupWindow` share that storage: it belongs to
/// one shard and is used by its worker thread only.
struct DedupWindow {
    /// Owns the raw memory: three header words (newest, hasNewest, last applied time) then the
    /// bitmap words.
    final class Storage {
        let base: UnsafeMutablePointer<UInt64>
        let wordCount: Int

        init(wordCount: Int) {
            self.wordCount = wordCount
            base = .allocate(capacity: wordCount + 3)
            base.initialize(repeating: 0, count: wordCount + 3)
        }

        deinit { base.deallocate() }
    }

    let storage: Storage
    /// The window's operations over the raw memory, without a reference count: what the event
    /// path keeps and uses (valid while `storage` lives; the shard keeps every window it made).
    let bits: DedupBits

    init(size: Int) {
        precondition(size >= 64 && size.nonzeroBitCount == 1, "window size must be a power of two >= 64")
        storage = Storage(wordCount: size / 64)
        bits = DedupBits(base: storage.base, size: UInt64(size))
    }

    /// Restores a window from a snapshot: the newest sequence and the bitmap words.
    init(size: Int, newest: UInt64?, words: [UInt64]) {
        self.init(size: size)
        precondition(words.count == storage.wordCount)
        if let newest {
            bits.newestWord.pointee = newest
            bits.hasNewestWord.pointee = 1
        }
        for (i, word) in words.enumerated() { bits.words[i] = word }
    }

    /// Newest sequence seen, or nil before the first.
    var newest: UInt64? { bits.hasNewestWord.pointee != 0 ? bits.newestWord.pointee : nil }

    /// The bitmap words (for snapshots).
    var words: [UInt64] { Array(UnsafeBufferPointer(start: bits.words, count: storage.wordCount)) }

    /// How `sequence` stands, without changing anything.
    typealias Verdict = DedupBits.Verdict

    @inline(__always) func check(_ sequence: UInt64) -> Verdict { bits.check(sequence) }

    /// Records `sequence` as applied. It must have been checked as `.new`.
    @inline(__always) func mark(_ sequence: UInt64) { bits.mark(sequence) }

    /// When this window's source last had an event applied here (engine clock, milliseconds since
    /// 1970), or nil when none was since the window was made. Not part of a snapshot.
    var lastAppliedMilliseconds: Int64? {
        let stamp = Int64(bitPattern: bits.lastAppliedWord.pointee)
        return stamp == 0 ? nil : stamp
    }
}

/// A dedup window's logic over its raw memory (see `DedupWindow`): a trivial value, so keeping and
/// using it costs no retain/release. Valid only while the owning `DedupWindow.Storage` lives.
struct DedupBits {
    let base: UnsafeMutablePointer<UInt64>
    let size: UInt64

    @inline(__always) var newestWord: UnsafeMutablePointer<UInt64> { base }
    @inline(__always) var hasNewestWord: UnsafeMutablePointer<UInt64> { base + 1 }
    /// The engine time of the last applied event (0: none), for source freshness.
    @inline(__always) var lastAppliedWord: UnsafeMutablePointer<UInt64> { base + 2 }
    @inline(__always) var words: UnsafeMutablePointer<UInt64> { base + 3 }

    /// How a sequence stands.
    enum Verdict: Equatable { case new, duplicate, tooOld }

    @inline(__always) func check(_ sequence: UInt64) -> Verdict {
        guard hasNewestWord.pointee != 0 else { return .new }
        let newest = newestWord.pointee
        if sequence > newest { return .new }
        if newest - sequence >= size { return .tooOld }
        return isSet(sequence) ? .duplicate : .new
    }

    /// Records `sequence` as applied. It must have been checked as `.new`.
    @inline(__always) func mark(_ sequence: UInt64) {
        if hasNewestWord.pointee != 0 {
            let current = newestWord.pointee
            if sequence <= current {
                assert(current - sequence < size && !isSet(sequence))
                set(sequence)
                return
            }
            if sequence - current < size {
                clearRange(from: current &+ 1, count: sequence - current - 1)
            } else {
                words.update(repeating: 0, count: Int(size / 64))
            }
        }
        newestWord.pointee = sequence
        hasNewestWord.pointee = 1
        set(sequence)
    }

    /// Stamps the source's freshness: one plain store into the header line `check` and `mark` have
    /// just touched, so it costs no cache miss and no branch.
    @inline(__always) func stampApplied(atMilliseconds milliseconds: Int64) {
        lastAppliedWord.pointee = UInt64(bitPattern: milliseconds)
    }

    @inline(__always) private func isSet(_ sequence: UInt64) -> Bool {
        let bit = sequence & (size - 1)
        return words[Int(bit >> 6)] & (1 << (bit & 63)) != 0
    }

    @inline(__always) private func set(_ sequence: UInt64) {
        let bit = sequence & (size - 1)
        words[Int(bit >> 6)] |= 1 << (bit & 63)
    }

    /// Clears the bits of `count` consecutive sequences from `first`, a word at a time (the ring
    /// wraps at `size`). Cost: O(count / 64 + 1).
    @inline(__always) private func clearRange(from first: UInt64, count: UInt64) {
        var position = first & (size - 1)
        var remaining = count
        let words = self.words
        while remaining > 0 {
            let bit = position & 63
            let run = min(64 - bit, remaining)
            let mask: UInt64 = run == 64 ? ~0 : ((1 << run) - 1) << bit
            words[Int(position >> 6)] &= ~mask
            position = (position + run) & (size - 1)
            remaining -= run
        }
    }
}
