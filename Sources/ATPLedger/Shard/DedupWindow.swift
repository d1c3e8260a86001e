/// An anti-replay window over one source's sequence numbers (like IPsec's): remembers which of the
/// last `size` sequences below the newest were seen.
///
/// - a sequence above the newest moves the window up and is new;
/// - one within the window is new unless its bit is set (then a duplicate);
/// - one at or below newest − size is too old: the window can no longer tell.
///
/// The window's bits live in raw memory owned by a small class, so the hot path checks and marks a
/// sequence with plain loads and stores (no copy-on-write or uniqueness checks). Copies of a
/// `DedupWindow` share that storage: it belongs to one shard and is used by its worker thread only.
struct DedupWindow {
    final class Storage {
        var newest: UInt64 = 0
        var hasNewest = false
        let words: UnsafeMutablePointer<UInt64>
        let wordCount: Int

        init(wordCount: Int) {
            self.wordCount = wordCount
            words = .allocate(capacity: wordCount)
            words.initialize(repeating: 0, count: wordCount)
        }

        deinit { words.deallocate() }
    }

    let storage: Storage
    let size: UInt64

    init(size: Int) {
        precondition(size >= 64 && size.nonzeroBitCount == 1, "window size must be a power of two >= 64")
        self.size = UInt64(size)
        storage = Storage(wordCount: size / 64)
    }

    /// Restores a window from a snapshot: the newest sequence and the bitmap words.
    init(size: Int, newest: UInt64?, words: [UInt64]) {
        self.init(size: size)
        precondition(words.count == storage.wordCount)
        if let newest {
            storage.newest = newest
            storage.hasNewest = true
        }
        for (i, word) in words.enumerated() { storage.words[i] = word }
    }

    /// Newest sequence seen, or nil before the first.
    var newest: UInt64? { storage.hasNewest ? storage.newest : nil }

    /// The bitmap words (for snapshots).
    var words: [UInt64] { Array(UnsafeBufferPointer(start: storage.words, count: storage.wordCount)) }

    /// How `sequence` stands, without changing anything.
    enum Verdict: Equatable { case new, duplicate, tooOld }

    @inline(__always) func check(_ sequence: UInt64) -> Verdict {
        guard storage.hasNewest else { return .new }
        let newest = storage.newest
        if sequence > newest { return .new }
        if newest - sequence >= size { return .tooOld }
        return isSet(sequence) ? .duplicate : .new
    }

    /// Records `sequence` as applied. It must have been checked as `.new`.
    @inline(__always) func mark(_ sequence: UInt64) {
        if storage.hasNewest {
            let current = storage.newest
            if sequence <= current {
                assert(current - sequence < size && !isSet(sequence))
                set(sequence)
                return
            }
            if sequence - current < size {
                clearRange(from: current &+ 1, count: sequence - current - 1)
            } else {
                storage.words.update(repeating: 0, count: storage.wordCount)
            }
        }
        storage.newest = sequence
        storage.hasNewest = true
        set(sequence)
    }

    @inline(__always) private func isSet(_ sequence: UInt64) -> Bool {
        let bit = sequence & (size - 1)
        return storage.words[Int(bit >> 6)] & (1 << (bit & 63)) != 0
    }

    @inline(__always) private func set(_ sequence: UInt64) {
        let bit = sequence & (size - 1)
        storage.words[Int(bit >> 6)] |= 1 << (bit & 63)
    }

    /// Clears the bits of `count` consecutive sequences from `first`, a word at a time (the ring
    /// wraps at `size`). Cost: O(count / 64 + 1).
    @inline(__always) private func clearRange(from first: UInt64, count: UInt64) {
        var position = first & (size - 1)
        var remaining = count
        let words = storage.words
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
