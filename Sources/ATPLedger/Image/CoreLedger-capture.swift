/// A core's image cut one shard at a time: the state is the core's at one instant (the cut, between
/// two inputs, at one journal mark), but its shards are copied later, one per turn of the core,
/// so no input waits for more than one shard's copy. A shard not yet copied is copied before
/// anything changes it (`preserveForImage`), so every copy still holds the shard as of the cut.
///
/// What changes a shard goes through one of two doors, both guarded:
/// - the event path (`CoreLedger.apply`), which preserves the shards of a batch before applying it;
/// - `CoreLedger.shard(_:)`, through which every reservation, message, expiry, replay and recovery
///   step reaches a shard (queries read through `withShard`, which does not copy).
/// Debug builds also copy every shard eagerly at the cut and check that each later copy equals it,
/// so a path that changed an uncopied shard without a copy fails the tests and the simulator.
final class ImageCapture {
    /// The core's part, with everything but the shards filled in at the cut.
    private(set) var part: WorkerImagePart
    /// Each owned shard's copy, by the shard's position in the core (nil until copied).
    private var copies: [ShardImagePart?]
    /// Positions not yet copied, ascending; `nextPending` indexes the first one that may still be.
    private var nextPending = 0
    private(set) var copiedCount = 0
    /// Called once, on the core's thread, when the last shard was copied.
    let completion: (WorkerImagePart) -> Void
    /// Debug builds: every shard as of the cut, to check the later copies against.
    private var expected: [ShardImagePart]?

    init(part: WorkerImagePart, shardCount: Int, expected: [ShardImagePart]?,
         completion: @escaping (WorkerImagePart) -> Void) {
        precondition(expected == nil || expected!.count == shardCount)
        self.part = part
        self.copies = Array(repeating: nil, count: shardCount)
        self.expected = expected
        self.completion = completion
    }

    /// Whether the shard at `position` still waits for its copy.
    @inline(__always) func isPending(_ position: Int) -> Bool { copies[position] == nil }

    /// The first position still waiting, if any.
    var firstPending: Int? {
        while nextPending < copies.count, copies[nextPending] != nil { nextPending += 1 }
        return nextPending < copies.count ? nextPending : nil
    }

    var isComplete: Bool { copiedCount == copies.count }

    /// Keeps the copy of the shard at `position`; returns the whole part once it was the last.
    func keep(_ copy: ShardImagePart, at position: Int) -> WorkerImagePart? {
        precondition(copies[position] == nil, "shard \(copy.index) copied twice for one image")
        if let expected {
            precondition(copy == expected[position],
                         "shard \(copy.index) changed after its core's cut before its copy: a path skipped preserveForImage")
        }
        copies[position] = copy
        copiedCount += 1
        guard isComplete else { return nil }
        for copy in copies { part.add(copy!) }
        copies = []
        return part
    }
}

extension CoreLedger {
    /// Cuts this core's image now (between two inputs), marked with `mark` (its journal's position),
    /// without copying any shard yet: `copyNextImageShard()` copies them one at a time, and anything
    /// about to change an uncopied shard copies it first. `completion` gets the part, on this core's
    /// thread, once the last shard is copied (at once when the core has no shard). One capture at a
    /// time: a capture still in progress is finished first.
    func beginImageCapture(mark: UInt64, completion: @escaping (WorkerImagePart) -> Void) {
        finishImageCapture()
        var expected: [ShardImagePart]? = nil
        assert({ expected = shards.map { $0.captureImage() }; return true }())
        let capture = ImageCapture(part: imagePartHeader(mark: mark), shardCount: shards.count, expected: expected,
                                   completion: completion)
        if shards.isEmpty { return completion(capture.part) }
        imageCapture = capture
    }

    /// Whether a capture is waiting for shard copies.
    var isCapturingImage: Bool { imageCapture != nil }

    /// Copies the next shard the capture in progress still waits for. Returns whether more remain
    /// (false when none was in progress).
    @discardableResult
    func copyNextImageShard() -> Bool {
        guard let capture = imageCapture, let position = capture.firstPending else { return false }
        copyShardForImage(at: position, capture)
        return imageCapture != nil
    }

    /// Copies every shard the capture in progress still waits for (before a stop, or a new capture).
    func finishImageCapture() {
        while copyNextImageShard() {}
    }

    /// Copies shard `shardIndex` (owned) for the capture in progress if it was not copied yet: call
    /// before anything changes it. Costs one load and branch when no capture is in progress.
    @inline(__always) func preserveForImage(_ shardIndex: Int) {
        guard let capture = imageCapture else { return }
        let position = shardIndex / configuration.workerCount
        assert(shards[position].index == shardIndex)
        if capture.isPending(position) { copyShardForImage(at: position, capture) }
    }

    private func copyShardForImage(at position: Int, _ capture: ImageCapture) {
        guard let whole = capture.keep(shards[position].captureImage(), at: position) else { return }
        imageCapture = nil
        capture.completion(whole)
    }
}
