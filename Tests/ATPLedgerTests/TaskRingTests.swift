@testable import ATPLedger
import Atomics
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// The workers' inbox ring (`TaskRing`): capacity, order, and the hand-over of the last reference
/// from a producer to the consumer while both run flat out.
@Suite struct TaskRingTests {
    /// A task that counts its own end and carries a canary the consumer checks.
    final class ProbeTask: WorkerTask, @unchecked Sendable {
        static let canaryValue: UInt64 = 0xA7A7_5EED_0BAD_F00D
        let producer: Int
        let serial: Int
        var canary = ProbeTask.canaryValue
        let freed: ManagedAtomic<Int>

        init(producer: Int, serial: Int, freed: ManagedAtomic<Int>) {
            self.producer = producer
            self.serial = serial
            self.freed = freed
        }

        deinit {
            precondition(canary == ProbeTask.canaryValue, "task \(producer)/\(serial) freed twice or overwritten")
            canary = 0
            freed.wrappingIncrement(ordering: .relaxed)
        }
    }

    @Test func refusesWhenFullAndKeepsOrder() {
        let freed = ManagedAtomic(0)
        do {
            let ring = TaskRing(capacity: 4)
            for serial in 0..<4 { #expect(ring.tryEnqueue(ProbeTask(producer: 0, serial: serial, freed: freed))) }
            #expect(!ring.tryEnqueue(ProbeTask(producer: 0, serial: 4, freed: freed)))
            #expect(ring.depth == 4)
            for serial in 0..<3 { #expect((ring.dequeue() as? ProbeTask)?.serial == serial) }
            #expect(ring.tryEnqueue(ProbeTask(producer: 0, serial: 5, freed: freed)))
            #expect((ring.dequeue() as? ProbeTask)?.serial == 3)
            #expect((ring.dequeue() as? ProbeTask)?.serial == 5)
            #expect(ring.dequeue() == nil)
            #expect(ring.isEmpty)
            // Leftovers are released with the ring.
            #expect(ring.tryEnqueue(ProbeTask(producer: 0, serial: 6, freed: freed)))
        }
        #expect(freed.load(ordering: .relaxed) == 7)
    }

    /// Producers hand over their only reference; the consumer runs and drops each task at once: every
    /// task arrives once, in its producer's order, and is freed once. The ring's own reference must
    /// exist before the task is published: the optimizer once sank `Unmanaged.passRetained`'s retain
    /// below the publishing store, so a consumer that ran while a producer was preempted between the
    /// two freed a task the producer then retained (a use-after-free crash-soak found in a release
    /// atpd). Only optimized code has that shape and the window is a few instructions wide:
    /// `tools/ring-stress.sh` runs this test in a release build with 30x the tasks, where it caught
    /// the bug in 1 of 3 rounds with the fix taken out.
    @Test func handsOverTheLastReferenceUnderContention() {
        // More threads than the machine's 2 cores, so producers are preempted mid-enqueue.
        let producers = 3
        // `ATP_RING_STRESS_TASKS` raises the count for long runs (tools/ring-stress.sh).
        let perProducer = ProcessInfoLite.integer("ATP_RING_STRESS_TASKS") ?? 1_000_000
        let freed = ManagedAtomic(0)
        let ring = TaskRing(capacity: 64)
        let finished = (0..<producers).map { _ in OneShot<Bool>() }
        for producer in 0..<producers {
            let done = finished[producer]
            startThread(name: "ring-producer-\(producer)") {
                for serial in 0..<perProducer {
                    enqueueHandingOver(ProbeTask(producer: producer, serial: serial, freed: freed), to: ring)
                }
                done.fulfil(true)
            }
        }
        var nextSerial = [Int](repeating: 0, count: producers)
        var outOfOrder = 0
        var received = 0
        while received < producers * perProducer {
            guard let task = ring.dequeue() else { sched_yield(); continue }
            guard let probe = task as? ProbeTask, probe.canary == ProbeTask.canaryValue else {
                Issue.record("a dequeued task is not a live probe")
                return
            }
            if probe.serial != nextSerial[probe.producer] { outOfOrder += 1 }
            nextSerial[probe.producer] = probe.serial + 1
            received += 1
        }
        for done in finished { _ = done.wait() }
        #expect(outOfOrder == 0)
        #expect(ring.dequeue() == nil)
        #expect(freed.load(ordering: .relaxed) == producers * perProducer)
    }

    /// Enqueues `task`, retrying while the ring is full, and keeps no reference once it is in.
    @inline(never) func enqueueHandingOver(_ task: __owned ProbeTask, to ring: TaskRing) {
        while !ring.tryEnqueue(task) { sched_yield() }
    }
}

/// Reads an integer from the environment (no Foundation in this target).
enum ProcessInfoLite {
    static func integer(_ name: String) -> Int? {
        guard let raw = getenv(name) else { return nil }
        return Int(String(cString: raw))
    }
}
