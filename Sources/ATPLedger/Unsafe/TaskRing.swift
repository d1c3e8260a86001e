import Atomics
import CATPSupport

/// A bounded multi-producer, single-consumer ring of worker tasks (Dmitry Vyukov's bounded queue,
/// one consumer). Lock-free: producers claim a position with one compare-and-swap; the consumer owns
/// its position outright.
///
/// Safety argument for `@unchecked Sendable`:
/// - each slot has a sequence number; a producer writes the payload only after claiming the slot
///   (sequence == position, CAS on `enqueuePosition`) and publishes it by storing position + 1 with
///   release ordering; the consumer reads the payload only after loading that sequence with acquire
///   ordering, then hands the slot back by storing position + capacity with release ordering;
/// - `dequeuePosition` is touched only by the one consumer thread (the owning worker);
/// - payloads are retained while in the ring (`Unmanaged.passRetained`) and released by the consumer
///   (`takeRetainedValue`) or by `deinit` for leftovers;
/// - the ring's retain happens before the slot is published, behind an opaque call
///   (`atp_reference_counting_barrier`): the optimizer treats the retain of an `Unmanaged` as free
///   to move past plain and atomic stores, and once sank it below the publishing store, so the
///   consumer could take the task, run it and drop the last reference before the producer's retain
///   ran (a use-after-free under load; `TaskRingTests` catches it in a release build).
final class TaskRing: @unchecked Sendable {
    let capacity: Int
    private let mask: Int
    private let sequences: UnsafeMutablePointer<UnsafeAtomic<Int>.Storage>
    private let payloads: UnsafeMutablePointer<Unmanaged<WorkerTask>?>
    private let enqueuePosition: UnsafeAtomic<Int>
    private var dequeuePosition = 0

    init(capacity: Int) {
        precondition(capacity >= 2 && capacity.nonzeroBitCount == 1, "ring capacity must be a power of two")
        self.capacity = capacity
        mask = capacity - 1
        sequences = .allocate(capacity: capacity)
        for i in 0..<capacity { (sequences + i).initialize(to: UnsafeAtomic<Int>.Storage(i)) }
        payloads = .allocate(capacity: capacity)
        payloads.initialize(repeating: nil, count: capacity)
        enqueuePosition = .create(0)
    }

    deinit {
        while dequeue() != nil {}
        sequences.deallocate()
        payloads.deallocate()
        enqueuePosition.destroy()
    }

    @inline(__always) private func sequence(_ slot: Int) -> UnsafeAtomic<Int> {
        UnsafeAtomic(at: sequences + slot)
    }

    /// Adds a task; false when the ring is full (the caller sees back-pressure). Any thread.
    func tryEnqueue(_ task: WorkerTask) -> Bool {
        var position = enqueuePosition.load(ordering: .relaxed)
        while true {
            let slot = position & mask
            let difference = sequence(slot).load(ordering: .acquiring) &- position
            if difference == 0 {
                let (exchanged, original) = enqueuePosition.weakCompareExchange(
                    expected: position, desired: position &+ 1, ordering: .relaxed)
                if exchanged {
                    let retained = Unmanaged.passRetained(task)
                    atp_reference_counting_barrier()
                    payloads[slot] = retained
                    sequence(slot).store(position &+ 1, ordering: .releasing)
                    return true
                }
                position = original
            } else if difference < 0 {
                return false
            } else {
                position = enqueuePosition.load(ordering: .relaxed)
            }
        }
    }

    /// Takes the oldest task, or nil when empty. Only the owning worker thread calls this.
    func dequeue() -> WorkerTask? {
        let slot = dequeuePosition & mask
        let difference = sequence(slot).load(ordering: .acquiring) &- (dequeuePosition &+ 1)
        guard difference == 0 else { return nil }
        let task = payloads[slot]!.takeRetainedValue()
        payloads[slot] = nil
        sequence(slot).store(dequeuePosition &+ capacity, ordering: .releasing)
        dequeuePosition &+= 1
        return task
    }

    /// Tasks waiting (approximate when producers are active).
    var depth: Int {
        max(0, enqueuePosition.load(ordering: .relaxed) - dequeuePosition)
    }

    /// Whether a task is waiting (exact for the consumer; a hint for others).
    var isEmpty: Bool {
        sequence(dequeuePosition & mask).load(ordering: .acquiring) != dequeuePosition &+ 1
    }
}
