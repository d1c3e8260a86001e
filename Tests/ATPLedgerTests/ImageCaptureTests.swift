import ATPLedger
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing

/// Images are cut at one instant per core and their shards copied one at a time afterwards, while
/// the core goes on (issue 13): every copy must still be the shard as of the cut.
@Suite struct ImageCaptureTests {
    /// Every batch adds one unit to every cell of a one-core engine, so any image cut between two
    /// batches has the same onHand in every cell. Images are taken while batches keep arriving: a
    /// shard copied after a batch changed it, or changed before its copy, would show another count.
    /// On the core's own thread and on a host (thread-per-core), where the copies take other turns.
    @Test(arguments: [false, true])
    func everyShardOfAnImageIsAsOfItsCut(hosted: Bool) throws {
        var configuration = LedgerConfiguration()
        configuration.workerCount = 1
        configuration.shardCount = 16
        let hosts = hosted ? ThreadCoreHost.hosts(1) : nil
        defer { hosts?.forEach { $0.stop() } }
        let engine = try Engine(configuration: configuration, hosts: hosts)
        defer { engine.shutdown() }
        let skus = try (0..<64).map { try engine.catalog.sku("S\($0)") }
        let locations = try (0..<4).map { try engine.catalog.location("L\($0)") }
        let source = try engine.catalog.source("feed")
        let batchesApplied = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let feeder = DispatchSemaphore(value: 0)
        @Sendable func batch(_ number: Int) -> EventBatch {
            var events: [StockEvent] = []
            for sku in skus {
                for location in locations {
                    events.append(StockEvent(kind: .receive, sku: sku, location: location, quantity: 1, source: source,
                                             sequence: UInt64(number * skus.count * locations.count + events.count + 1)))
                }
            }
            return EventBatch(events: events)
        }
        #expect(engine.apply(batch(0)).outcomes.allSatisfy { $0 == .applied })
        DispatchQueue.global().async {
            var number = 1
            while !stop.load(ordering: .relaxed) {
                _ = engine.apply(batch(number))
                number += 1
                batchesApplied.store(number, ordering: .relaxed)
            }
            feeder.signal()
        }
        var counts: [Int32] = []
        var seen = 0
        for _ in 0..<30 {
            // At least one more batch between two images (the feeder runs on another thread).
            for _ in 0..<5_000 where batchesApplied.load(ordering: .relaxed) <= seen { usleep(1_000) }
            seen = batchesApplied.load(ordering: .relaxed)
            let image = engine.captureImage { _ in 0 }
            var onHand = Set<Int32>()
            image.forEachCell { onHand.insert($0.onHand) }
            #expect(image.cellCount == skus.count * locations.count)
            #expect(onHand.count == 1, "an image mixes counts \(onHand.sorted()) from before and after its cut")
            counts.append(onHand.first ?? 0)
        }
        stop.store(true, ordering: .relaxed)
        feeder.wait()
        #expect(counts == counts.sorted(), "images went back in time: \(counts)")
        #expect(counts.last! > counts.first!, "no batch was applied while the images were taken")
        #expect(batchesApplied.load(ordering: .relaxed) > 30)
    }
}
