/// An anti-replay window over one source's sequence numbers (like IPsec's): remembers which of the
/// last `size` sequences below the newest were seen.
///
/// - a sequence above the newest moves the window up and is new;
/// - one within the window is new unless its bit is set (then a duplicate);
/// - one at or below newest − size is too old: the window can no longer tell.
struct DedupWindow {
    /// Newest sequence seen, or nil before the first.
    private(set) var newest: UInt64? = nil
    private var bits: [UInt64]
    let size: UInt64

    init(size: Int) {
        precondition(size >= 64 && size.nonzeroBitCount == 1, "window size must be a power of two >= 64")
        self.size = UInt64(size)
        bits = Array(repeating: 0, count: size / 64)
    }

    /// How `sequence` stands, without changing anything.
    enum Verdict: Equatable { case new, duplicate, tooOld }

    func check(_ sequence: UInt64) -> Verdict {
        guard let newest else { return .new }
        if sequence > newest { return .new }
        if newest - sequence >= size { return .tooOld }
        return isSet(sequence) ? .duplicate : .new
    }

    /// Records `sequence` as applied. It must have been checked as `.new`.
    mutating func mark(_ sequence: UInt64) {
        if let current = newest, sequence <= current {
            assert(current - sequence < size && !isSet(sequence))
            set(sequence)
            return
        }
        let start = newest.map { $0 &+ 1 } ?? sequence
        if let current = newest, sequence - current < size {
            var cleared = start
            while cleared < sequence {
                clear(cleared)
                cleared &+= 1
            }
        } else {
            for i in bits.indices { bits[i] = 0 }
        }
        newest = sequence
        set(sequence)
    }

    /// Restores a window from a snapshot: the newest sequence and the bitmap words.
    init(size: Int, newest: UInt64?, words: [UInt64]) {
        self.init(size: size)
        precondition(words.count == bits.count)
        self.newest = newest
        bits = words
    }

    /// The bitmap words (for snapshots).
    var words: [UInt64] { bits }

    @inline(__always) private func isSet(_ sequence: UInt64) -> Bool {
        let bit = sequence & (size - 1)
        return bits[Int(bit >> 6)] & (1 << (bit & 63)) != 0
    }

    @inline(__always) private mutating func set(_ sequence: UInt64) {
        let bit = sequence & (size - 1)
        bits[Int(bit >> 6)] |= 1 << (bit & 63)
    }

    @inline(__always) private mutating func clear(_ sequence: UInt64) {
        let bit = sequence & (size - 1)
        bits[Int(bit >> 6)] &= ~(1 << (bit & 63))
    }
}
