import ATPLedger

#if canImport(Glibc)
import Glibc
#endif

// A short demo of the ledger core: a demo catalogue, a stream of events, reservations through a
// channel, and a few queries printed. `atp-demo --memory-cells N` instead loads N cells and prints
// the bytes each takes (buffers + index + names) and the process's resident memory.

func residentBytes() -> Int {
    guard let file = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(file) }
    var size = 0
    var resident = 0
    _ = withUnsafeMutablePointer(to: &size) { sizePointer in
        withUnsafeMutablePointer(to: &resident) { residentPointer in
            withVaList([sizePointer, residentPointer]) { vfscanf(file, "%ld %ld", $0) }
        }
    }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

func mebibytes(_ bytes: Int) -> String { "\((bytes * 10) / (1 << 20) / 10).\((bytes * 10) / (1 << 20) % 10) MiB" }

func measureMemory(cells: Int) {
    let locationCount = 10
    let skuCount = max(1, cells / locationCount)
    var configuration = LedgerConfiguration()
    configuration.initialCellsPerShard = 1024
    let engine = try! Engine(configuration: configuration)
    let before = residentBytes()
    let source = try! engine.catalog.source("memory")
    let locations = (0..<locationCount).map { try! engine.catalog.location("STORE-\($0)") }
    var sequence: UInt64 = 1
    var batch = EventBatch(capacity: 10_000)
    let start = monotonicNanoseconds()
    for s in 0..<skuCount {
        let sku = try! engine.catalog.sku("SKU-\(100_000_000 + s)")
        for location in locations {
            batch.append(StockEvent(kind: .receive, sku: sku, location: location, quantity: 5, source: source,
                                    sequence: sequence))
            sequence += 1
        }
        if batch.count >= 10_000 {
            _ = engine.submitBlocking(batch)
            batch = EventBatch(capacity: 10_000)
        }
    }
    if batch.count > 0 { _ = engine.submitBlocking(batch) }
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    let stats = engine.statistics()
    let after = residentBytes()
    print("cells:                 \(stats.cellCount) (\(skuCount) SKUs × \(locationCount) locations), loaded in \(String(format2: seconds)) s")
    print("cell buffers + index:  \(mebibytes(stats.cellBytes)) = \(stats.cellBytes / max(1, stats.cellCount)) bytes/cell")
    print("name tables:           \(mebibytes(stats.nameBytes)) = \(stats.nameBytes / max(1, stats.cellCount)) bytes/cell")
    print("all-in (engine count): \(String(format2: stats.bytesPerCell)) bytes/cell")
    print("resident growth:       \(mebibytes(after - before)) = \(String(format2: Double(after - before) / Double(max(1, stats.cellCount)))) bytes/cell (includes allocator slack and doubling headroom)")
    engine.shutdown()
}

extension String {
    init(format2 value: Double) {
        let scaled = Int((value * 100).rounded())
        self = "\(scaled / 100).\(String(repeating: "0", count: scaled % 100 < 10 ? 1 : 0))\(scaled % 100)"
    }
}

extension Engine {
    func submitBlocking(_ batch: EventBatch) -> EventBatchResult { apply(batch) }
}

func demo() {
    let engine = try! Engine()
    let catalog = engine.catalog
    let stores = (1...5).map { try! catalog.location("STORE-\($0)") }
    let dc = try! catalog.location("DC-EAST")
    let feed = try! catalog.source("wms-demo")
    var sequence: UInt64 = 1
    var batch = EventBatch()
    for s in 0..<2000 {
        let sku = try! catalog.sku("SKU-\(10_000 + s)")
        batch.append(StockEvent(kind: .receive, sku: sku, location: dc, quantity: Int64(100 + s % 50), source: feed,
                                sequence: sequence))
        sequence += 1
        for (i, store) in stores.enumerated() {
            batch.append(StockEvent(kind: .receive, sku: sku, location: store, quantity: Int64((s + i) % 12),
                                    source: feed, sequence: sequence))
            sequence += 1
        }
    }
    let applied = engine.apply(batch)
    print("applied \(applied.appliedCount) receipts over \(catalog.count(.sku)) SKUs and \(catalog.count(.location)) locations")

    let web = try! catalog.channel("web")
    try! engine.defineChannel(ChannelDefinition(id: web, locations: [dc] + stores, bufferUnits: 5, capPercent: 90))
    let marketplace = try! catalog.channel("marketplace")
    try! engine.defineChannel(ChannelDefinition(id: marketplace, locations: [dc], bufferUnits: 10, capPercent: 50))

    let sku = try! catalog.sku("SKU-10007")
    let reply = engine.reserve(ReserveRequest(
        id: try! ReservationID("ORDER-1"),
        lines: [ReservationLine(sku: sku, target: .channel(web, allowSplit: true), quantity: 3)],
        ttlMilliseconds: 15 * 60 * 1000, mode: .allOrNothing))
    print("reserve ORDER-1 for 3 × SKU-10007 via web: \(reply.state), granted \(reply.grantedUnits) from "
          + reply.lines[0].allocations.map { "\(catalog.name(of: $0.location))×\($0.quantity)" }.joined(separator: ", "))

    let result = engine.query([.sku(sku), .channel(sku, web), .channel(sku, marketplace), .cell(sku, stores[0])])
    print("SKU-10007 across locations: sellable \(result.answers[0].sellable), projected \(result.answers[0].projected)")
    for cell in result.cells(of: 0) {
        print("  \(catalog.name(of: cell.cell.location)): onHand \(cell.cell.onHand) reserved \(cell.cell.reserved) sellable \(cell.sellable)")
    }
    print("SKU-10007 in channel web: ATP \(result.answers[1].sellable)")
    print("SKU-10007 in channel marketplace: ATP \(result.answers[2].sellable)")
    let stats = engine.statistics()
    print("engine: \(stats.cellCount) cells, \(stats.counters.eventsApplied) events applied, \(stats.heldReservations) reservation held")
    engine.shutdown()
}

/// Applies `millions` × 1M events over `skuCount × 10` cells on one worker, 16 batches in flight;
/// prints events/s. For profiling (perf record) more than for figures: Benchmarks/ has those.
func profileApply(skuCount: Int, millions: Int) {
    var configuration = LedgerConfiguration()
    configuration.workerCount = 1
    configuration.initialCellsPerShard = max(1024, skuCount * 10 / 64 * 2)
    let engine = try! Engine(configuration: configuration)
    let source = try! engine.catalog.source("profile")
    let skus = (0..<skuCount).map { try! engine.catalog.sku("SKU-\($0)") }
    let locations = (0..<10).map { try! engine.catalog.location("L-\($0)") }
    var sequence: UInt64 = 1
    var generator = SplitMix64(seed: 42)
    func random(_ bound: Int) -> Int { generator.next(below: bound) }
    var preload = EventBatch(capacity: skuCount * 10)
    for sku in skus {
        for location in locations {
            preload.append(StockEvent(kind: .receive, sku: sku, location: location, quantity: 1_000_000, source: source,
                                      sequence: sequence))
            sequence += 1
        }
    }
    _ = engine.apply(preload)
    var batches: [EventBatch] = []
    for _ in 0..<(1000 * millions) {
        var batch = EventBatch(capacity: 1000)
        for _ in 0..<1000 {
            batch.append(StockEvent(kind: random(2) == 0 ? .receive : .ship, sku: skus[random(skus.count)],
                                    location: locations[random(10)], quantity: 1, source: source, sequence: sequence))
            sequence += 1
        }
        batches.append(batch)
    }
    let inFlight = ManagedCounter()
    let start = monotonicNanoseconds()
    do {
        for batch in batches {
            while inFlight.value >= 16 { }
            inFlight.add(1)
            while engine.submit(batch, completion: { _ in inFlight.add(-1) }) == .inboxFull {}
        }
    }
    while inFlight.value > 0 {}
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    print("\(millions)M events over \(skuCount * 10) cells in \(String(format2: seconds)) s: \(String(format2: Double(millions) / seconds)) M events/s")
    engine.shutdown()
}

/// Answers `millions` × 1M single-cell queries over `skuCount × 10` cells on one worker, in batches
/// of 1,000 with 16 in flight; prints queries/s. For profiling, like `--profile-apply`.
func profileQuery(skuCount: Int, millions: Int) {
    var configuration = LedgerConfiguration()
    configuration.workerCount = 1
    configuration.initialCellsPerShard = max(1024, skuCount * 10 / 64 * 2)
    let engine = try! Engine(configuration: configuration)
    let source = try! engine.catalog.source("profile")
    let skus = (0..<skuCount).map { try! engine.catalog.sku("SKU-\($0)") }
    let locations = (0..<10).map { try! engine.catalog.location("L-\($0)") }
    var sequence: UInt64 = 1
    var preload = EventBatch(capacity: skuCount * 10)
    for sku in skus {
        for location in locations {
            preload.append(StockEvent(kind: .receive, sku: sku, location: location, quantity: 100, source: source,
                                      sequence: sequence))
            sequence += 1
        }
    }
    _ = engine.apply(preload)
    var generator = SplitMix64(seed: 7)
    func random(_ bound: Int) -> Int { generator.next(below: bound) }
    let batches: [[AvailabilityQuery]] = (0..<(1000 * millions)).map { _ in
        (0..<1000).map { _ in .cell(skus[random(skus.count)], locations[random(10)]) }
    }
    let inFlight = ManagedCounter()
    let start = monotonicNanoseconds()
    for batch in batches {
        while inFlight.value >= 16 {}
        inFlight.add(1)
        while engine.submit(queries: batch, completion: { _ in inFlight.add(-1) }) == .inboxFull {}
    }
    while inFlight.value > 0 {}
    let seconds = Double(monotonicNanoseconds() - start) / 1e9
    print("\(millions)M single-cell queries over \(skuCount * 10) cells in \(String(format2: seconds)) s: \(String(format2: Double(millions) / seconds)) M queries/s")
    engine.shutdown()
}

import Atomics
final class ManagedCounter: Sendable {
    let atomic = ManagedAtomic<Int>(0)
    var value: Int { atomic.load(ordering: .acquiring) }
    func add(_ delta: Int) { atomic.wrappingIncrement(by: delta, ordering: .acquiringAndReleasing) }
}

let arguments = CommandLine.arguments
if let flag = arguments.firstIndex(of: "--profile-query"), flag + 2 < arguments.count,
   let skuCount = Int(arguments[flag + 1]), let millions = Int(arguments[flag + 2]) {
    profileQuery(skuCount: skuCount, millions: millions)
} else if let flag = arguments.firstIndex(of: "--profile-apply"), flag + 2 < arguments.count,
   let skuCount = Int(arguments[flag + 1]), let millions = Int(arguments[flag + 2]) {
    profileApply(skuCount: skuCount, millions: millions)
} else if let flag = arguments.firstIndex(of: "--memory-cells"), flag + 1 < arguments.count, let cells = Int(arguments[flag + 1]) {
    measureMemory(cells: cells)
} else {
    demo()
}
