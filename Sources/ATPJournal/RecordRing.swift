import Synchronization

/// The bytes appended to a stream and not yet handed to the OS: a single-producer,
/// single-consumer byte ring, preallocated once and reused, so appending never allocates.
///
/// Positions are absolute byte counts since the stream opened (they never wrap; 2^64 bytes is
/// centuries of appending); byte `p` lives at `p % capacityBytes`.
///
/// Invariants (the fence around the unsafe storage):
/// - `releasedEnd <= appendedEnd <= releasedEnd + capacityBytes`.
/// - Only the appender writes bytes, and only in `appendedEnd ..< releasedEnd + capacityBytes`
///   (free space); it publishes them by storing `appendedEnd` with release ordering.
/// - Only the flusher reads bytes, and only in `releasedEnd ..< appendedEnd` (loaded with acquire
///   ordering); it frees them by storing `releasedEnd` with release ordering once `write(2)`
///   returned, after which the appender (loading it with acquire ordering) may overwrite them.
///
/// Safety argument for `@unchecked Sendable`: the storage never moves and is freed only in
/// `deinit`; the two threads touch disjoint byte ranges, handed over by the two atomics above.
final class RecordRing: @unchecked Sendable {
    let capacityBytes: Int
    /// End of the bytes the appender has published.
    let appendedEnd = Atomic<UInt64>(0)
    /// End of the bytes the flusher has handed to the OS: the space before it is free.
    let releasedEnd = Atomic<UInt64>(0)
    private let storage: UnsafeMutableRawPointer

    init(capacityBytes: Int) {
        precondition(capacityBytes > 0, "ring capacity must be positive")
        self.capacityBytes = capacityBytes
        storage = .allocate(byteCount: capacityBytes, alignment: 64)
        // Touch every page now so the first appends do not take page faults.
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: capacityBytes)
    }

    deinit {
        storage.deallocate()
    }

    /// Free bytes for the appender, whose own published end is `appendedEnd`.
    func freeBytes(appendedEnd: UInt64) -> Int {
        let released = releasedEnd.load(ordering: .acquiring)
        let used = appendedEnd - released
        precondition(used <= UInt64(capacityBytes), "ring over-full: \(used) of \(capacityBytes) bytes")
        return capacityBytes - Int(used)
    }

    /// Copies `bytes` into the ring at `position` (appender only, inside free space).
    func copyIn(_ bytes: UnsafeRawBufferPointer, at position: UInt64) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        precondition(bytes.count <= capacityBytes, "copy larger than the ring")
        let offset = Int(position % UInt64(capacityBytes))
        let first = min(bytes.count, capacityBytes - offset)
        (storage + offset).copyMemory(from: source, byteCount: first)
        if first < bytes.count {
            storage.copyMemory(from: source + first, byteCount: bytes.count - first)
        }
    }

    /// Copies `destination.count` bytes at `position` out of the ring (flusher only, inside
    /// published bytes).
    func copyOut(at position: UInt64, into destination: UnsafeMutableRawBufferPointer) {
        guard let target = destination.baseAddress, !destination.isEmpty else { return }
        let offset = Int(position % UInt64(capacityBytes))
        let first = min(destination.count, capacityBytes - offset)
        target.copyMemory(from: storage + offset, byteCount: first)
        if first < destination.count {
            (target + first).copyMemory(from: storage, byteCount: destination.count - first)
        }
    }

    /// Calls `body` with the bytes `start ..< end` as one or two contiguous pieces, in order
    /// (flusher only, inside published bytes).
    func forEachPiece<Failure: Error>(
        from start: UInt64, to end: UInt64, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Void
    ) throws(Failure) {
        precondition(start <= end && end - start <= UInt64(capacityBytes), "bad ring range \(start)..<\(end)")
        let count = Int(end - start)
        guard count > 0 else { return }
        let offset = Int(start % UInt64(capacityBytes))
        let first = min(count, capacityBytes - offset)
        try body(UnsafeRawBufferPointer(start: storage + offset, count: first))
        if first < count {
            try body(UnsafeRawBufferPointer(start: storage, count: count - first))
        }
    }
}
