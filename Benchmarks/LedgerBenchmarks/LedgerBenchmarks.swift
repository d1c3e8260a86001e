import ATPLedger
import Benchmark
import Dispatch

// Ledger core benchmarks (issue 2). Each benchmark's unit of work is one event, query or
// reserve+release pair: the throughput column reads directly in operations per second.
// Events arrive in batches of `batchEvents` with names already interned, as the wire decoder hands
// them over, and up to `batchesInFlight` batches are queued at once.

let batchEvents = 1000
let batchesInFlight = 16

/// An engine with one worker and `skus × locations` cells, each holding stock.
final class LedgerWorld: @unchecked Sendable {
    let engine: Engine
    let skus: [SKUID]
    let locations: [LocationID]
    let source: SourceID
    var nextSequence: UInt64 = 1

    init(skuCount: Int, locationCount: Int) {
        var configuration = LedgerConfiguration()
        configuration.workerCount = 1
        configuration.initialCellsPerShard = max(1024, (skuCount * locationCount / configuration.shardCount) * 2)
        let engine = try! Engine(configuration: configuration)
        self.engine = engine
        skus = (0..<skuCount).map { try! engine.catalog.sku("SKU-\($0)") }
        locations = (0..<locationCount).map { try! engine.catalog.location("LOC-\($0)") }
        source = try! engine.catalog.source("bench")
        var batch = EventBatch(capacity: batchEvents)
        for sku in skus {
            for location in locations {
                batch.append(event(.receive, sku, location, 1_000_000))
                if batch.count == batchEvents {
                    _ = engine.apply(batch)
                    batch = EventBatch(capacity: batchEvents)
                }
            }
        }
        if batch.count > 0 { _ = engine.apply(batch) }
    }

    func event(_ kind: StockEventKind, _ sku: SKUID, _ location: LocationID, _ quantity: Int64) -> StockEvent {
        defer { nextSequence += 1 }
        return StockEvent(kind: kind, sku: sku, location: location, quantity: quantity, source: source,
                          sequence: nextSequence)
    }

    /// Random receive/ship/adjust events over the cells, uniformly.
    func randomBatches(count: Int, seed: UInt64) -> [EventBatch] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in
            var batch = EventBatch(capacity: batchEvents)
            for _ in 0..<batchEvents {
                let sku = skus[random.next(below: skus.count)]
                let location = locations[random.next(below: locations.count)]
                let kind: StockEventKind = random.next(below: 2) == 0 ? .receive : .ship
                batch.append(event(kind, sku, location, Int64(1 + random.next(below: 3))))
            }
            return batch
        }
    }

    /// Applies `batches` (made with fresh sequence numbers), keeping `batchesInFlight` queued.
    func applyPipelined(_ batches: [EventBatch]) {
        let slots = DispatchSemaphore(value: batchesInFlight)
        for batch in batches {
            slots.wait()
            while engine.submit(batch, completion: { _ in slots.signal() }) == .inboxFull {}
        }
        for _ in 0..<batchesInFlight { slots.wait() }
        for _ in 0..<batchesInFlight { slots.signal() }
    }
}

/// 64-byte cells as plain words, for the raw-memory baseline.
final class RawCells: @unchecked Sendable {
    let words: UnsafeMutablePointer<Int64>
    init(cellCount: Int) {
        words = .allocate(capacity: cellCount * 8)
        words.initialize(repeating: 0, count: cellCount * 8)
    }
    deinit { words.deallocate() }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal, .peakMemoryResident],
        warmupIterations: 2,
        scalingFactor: .mega,
        maxDuration: .seconds(10),
        maxIterations: 20
    )

    // The baseline for the two apply benchmarks, measured in the same run: the raw memory limit of
    // this machine, a plain loop adding to one field of 64-byte cells picked at random from 1M (no
    // index, no events, no worker hand-over).
    Benchmark("baseline: raw random 64-byte cell updates over 1M cells") { (benchmark: Benchmark, raw: RawCells) in
        var random = SplitMix64(seed: 4)
        let cellCount = 1 << 20
        let cells = raw.words
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let cell = cells.advanced(by: (random.next(below: cellCount)) << 3)
            cell.pointee &+= 1
            cell[1] &-= 1
        }
        benchmark.stopMeasurement()
        blackHole(cells[0])
    } setup: {
        RawCells(cellCount: 1 << 20)
    }

    // 100k SKUs × 10 locations = 1M cells; events uniformly at random over all of them.
    Benchmark("apply events, uniform over 1M cells") { benchmark, world in
        let batches = world.randomBatches(count: benchmark.scaledIterations.count / batchEvents, seed: 1)
        benchmark.startMeasurement()
        world.applyPipelined(batches)
        benchmark.stopMeasurement()
    } setup: {
        LedgerWorld(skuCount: 100_000, locationCount: 10)
    }

    // 100 SKUs × 10 locations = 1k hot cells.
    Benchmark("apply events, hot set of 1k cells") { benchmark, world in
        let batches = world.randomBatches(count: benchmark.scaledIterations.count / batchEvents, seed: 2)
        benchmark.startMeasurement()
        world.applyPipelined(batches)
        benchmark.stopMeasurement()
    } setup: {
        LedgerWorld(skuCount: 100, locationCount: 10)
    }

    // Batches of 1,000 single-cell queries over 1M cells.
    Benchmark("batch queries (1,000 cells a batch) over 1M cells") { benchmark, world in
        var random = SplitMix64(seed: 3)
        let batches: [[AvailabilityQuery]] = (0..<benchmark.scaledIterations.count / batchEvents).map { _ in
            (0..<batchEvents).map { _ in
                .cell(world.skus[random.next(below: world.skus.count)],
                      world.locations[random.next(below: world.locations.count)])
            }
        }
        benchmark.startMeasurement()
        let slots = DispatchSemaphore(value: batchesInFlight)
        for batch in batches {
            slots.wait()
            while world.engine.submit(queries: batch, completion: { result in
                blackHole(result.answers.count)
                slots.signal()
            }) == .inboxFull {}
        }
        for _ in 0..<batchesInFlight { slots.wait() }
        benchmark.stopMeasurement()
        for _ in 0..<batchesInFlight { slots.signal() }
    } setup: {
        LedgerWorld(skuCount: 100_000, locationCount: 10)
    }

    // Reserve 1 unit of one hot SKU and release it again; 1,000 pairs in flight.
    Benchmark(
        "reserve+release pairs on one hot SKU",
        configuration: .init(scalingFactor: .kilo, maxDuration: .seconds(10), maxIterations: 200)
    ) { benchmark, world in
        let sku = world.skus[0]
        let location = world.locations[0]
        let ids = benchmark.scaledIterations.map { _ in
            defer { world.nextSequence += 1 }
            return try! ReservationID("order-\(world.nextSequence)")
        }
        benchmark.startMeasurement()
        let done = DispatchSemaphore(value: 0)
        for id in ids {
            let request = ReserveRequest(id: id, lines: [ReservationLine(sku: sku, target: .location(location), quantity: 1)],
                                         ttlMilliseconds: 60_000, mode: .allOrNothing)
            while world.engine.submitReserve(request, completion: { _ in done.signal() }) == .inboxFull {}
        }
        for _ in ids { done.wait() }
        for id in ids {
            while world.engine.submitRelease(id, completion: { _ in done.signal() }) == .inboxFull {}
        }
        for _ in ids { done.wait() }
        benchmark.stopMeasurement()
    } setup: {
        LedgerWorld(skuCount: 10, locationCount: 1)
    }
}
