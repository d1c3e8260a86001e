import ATPClient
import NIOCore

/// The connections of one sale once connected: the buyers, the pacers of an open loop, and the
/// background traffic; started, stopped and closed together.
struct SaleParticipants {
    let buyers: [BuyerDriver]
    /// One per event loop in an open loop, each with its loop's buyers.
    let pacers: [(EventLoop, ArrivalPacer)]
    let background: BackgroundDriver?

    /// Connects the buyers (and the background connection, if it has a rate).
    static func connect(_ configuration: FlashSaleConfiguration, catalog: FlashSaleCatalog, control: SaleControl,
                        loops: [EventLoop]) async throws -> SaleParticipants
    {
        let connections = try await connectBuyers(configuration, loops: loops)
        let buyers = connections.enumerated().map { index, connection in
            BuyerDriver(connection: connection, index: index, catalog: catalog, control: control, configuration: configuration)
        }
        let pacers = configuration.isOpenLoop ? makePacers(buyers, loops: loops, configuration: configuration, control: control) : []
        var background: BackgroundDriver? = nil
        if configuration.backgroundQueriesPerSecond > 0 || configuration.backgroundEventsPerSecond > 0 {
            let connection = try await FlashSale.connect(configuration, loop: loops[loops.count - 1], name: "flash-sale-background")
            background = BackgroundDriver(connection: connection, catalog: catalog, control: control, configuration: configuration)
        }
        return SaleParticipants(buyers: buyers, pacers: pacers, background: background)
    }

    /// Lets everyone loose at `start`, up to `deadline` (monotonic nanoseconds).
    func start(atNanoseconds start: UInt64, deadlineNanoseconds deadline: UInt64) {
        for buyer in buyers {
            buyer.connection.eventLoop.execute { buyer.start(atNanoseconds: start, deadlineNanoseconds: deadline) }
        }
        for (loop, pacer) in pacers { loop.execute { pacer.start(atNanoseconds: start, deadlineNanoseconds: deadline) } }
        if let background {
            background.connection.eventLoop.execute { background.start(atNanoseconds: start, deadlineNanoseconds: deadline) }
        }
    }

    /// Stops everyone, waits for the last replies and returns the merged tallies. At the time limit
    /// the buyers that arrived before it are still served; after a sell-out waiting buyers are dropped.
    func stop(atTimeLimit: Bool, skuCount: Int) async throws -> (BuyerTally, BackgroundTally?) {
        // Pacers first: on the same loop, their catch-up reaches the buyers before the buyers stop.
        for (loop, pacer) in pacers { loop.execute { pacer.stop(catchUp: atTimeLimit) } }
        for buyer in buyers { buyer.connection.eventLoop.execute { buyer.stop(dropBacklog: !atTimeLimit) } }
        if let background { background.connection.eventLoop.execute { background.stop(catchUp: atTimeLimit) } }
        var tally = BuyerTally(skuCount: skuCount)
        for buyer in buyers {
            try await buyer.drainedFuture.get()
            tally.add(try await buyer.connection.eventLoop.submit { buyer.tally }.get())
        }
        var backgroundTally: BackgroundTally? = nil
        if let background {
            try await background.drainedFuture.get()
            backgroundTally = try await background.connection.eventLoop.submit { background.tally }.get()
        }
        return (tally, backgroundTally)
    }

    /// Closes every connection.
    func close() async {
        for buyer in buyers { await buyer.connection.close() }
        if let background { await background.connection.close() }
    }

    /// Opens the buyer connections, `FlashSale.concurrentConnectsMax` at a time; connection `i` runs on loop
    /// `i % loops.count`. On a failure the connections already open are closed.
    private static func connectBuyers(_ configuration: FlashSaleConfiguration, loops: [EventLoop]) async throws
        -> [ATPConnection]
    {
        var connections: [ATPConnection] = []
        connections.reserveCapacity(configuration.connections)
        do {
            let step = FlashSale.concurrentConnectsMax
            for first in stride(from: 0, to: configuration.connections, by: step) {
                let indices = first..<min(configuration.connections, first + step)
                let batch = try await withThrowingTaskGroup(of: (Int, ATPConnection).self) { group in
                    for index in indices {
                        group.addTask {
                            (index, try await FlashSale.connect(configuration, loop: loops[index % loops.count], name: "flash-sale-\(index)"))
                        }
                    }
                    var opened: [(Int, ATPConnection)] = []
                    for try await pair in group { opened.append(pair) }
                    return opened.sorted { $0.0 < $1.0 }.map(\.1)
                }
                connections.append(contentsOf: batch)
            }
        } catch {
            for connection in connections { await connection.close() }
            throw error
        }
        return connections
    }

    /// One pacer per event loop, each with its loop's connections and its share of the rate.
    private static func makePacers(_ buyers: [BuyerDriver], loops: [EventLoop], configuration: FlashSaleConfiguration,
                                   control: SaleControl) -> [(EventLoop, ArrivalPacer)]
    {
        let used = loops.indices.filter { $0 < buyers.count }
        return used.map { loopIndex in
            let drivers = stride(from: loopIndex, to: buyers.count, by: loops.count).map { buyers[$0] }
            let share = configuration.arrivalsPerSecond * Double(drivers.count) / Double(buyers.count)
            return (loops[loopIndex], ArrivalPacer(eventLoop: loops[loopIndex], drivers: drivers, arrivalsPerSecond: share,
                                                   control: control))
        }
    }
}
