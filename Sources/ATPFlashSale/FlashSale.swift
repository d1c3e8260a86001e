import ATPClient
import ATPLedger
import ATPProtocol
import NIOCore
import NIOPosix

/// Runs a flash sale against a server: puts fresh stock of the hot SKUs on sale, lets the buyer
/// connections loose (closed loop or open loop), optionally with background queries and receipts,
/// stops at the time limit or once every SKU is sold out, reads the cells back and checks the
/// accounts (`OversellCheck`).
///
/// Cost: one admin connection, `connections` buyer connections and one background connection, on
/// `clientThreads` event-loop threads of its own; the run lasts at most `seconds` plus connecting,
/// set-up and draining (at most `BuyerDriver.drainTimeout`).
public enum FlashSale {
    /// How often the coordinator looks at the clock and the sold-out state, in milliseconds.
    static let pollMilliseconds = 2
    /// Connections opened at the same time while connecting the buyers.
    static let concurrentConnectsMax = 64

    /// Runs one sale. `log` receives progress lines (connecting, set-up, start, stop).
    /// Throws `FlashSaleError` when the configuration is invalid, the server cannot be reached, the
    /// token lacks a role, or the stock cannot be set up or read back; a run that completes returns
    /// its result even when its check failed (see `result.check.passed`).
    public static func run(_ configuration: FlashSaleConfiguration, log: @Sendable (String) -> Void = { _ in })
        async throws -> FlashSaleResult
    {
        try configuration.validate()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.clientThreads)
        do {
            let result = try await run(configuration, group: group, log: log)
            try? await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func run(_ configuration: FlashSaleConfiguration, group: MultiThreadedEventLoopGroup,
                            log: @Sendable (String) -> Void) async throws -> FlashSaleResult
    {
        let catalog = FlashSaleCatalog(configuration)
        let loops = Array(group.makeIterator())
        let admin = try await connect(configuration, loop: loops[0], name: "flash-sale-admin")
        let needed: Roles = [.reserve, .query, .ingest]
        guard admin.hello.roles.isSuperset(of: needed) || admin.hello.roles.contains(.admin) else {
            await admin.close()
            throw FlashSaleError.missingRoles("\(needed.subtracting(admin.hello.roles)) (it grants \(admin.hello.roles))")
        }
        log("setting up \(configuration.skuCount) SKUs × \(configuration.stockPerSKU) units at \(catalog.location) (run \(catalog.runTag))")
        let start = try await StockLedger.receiveStock(catalog, stockPerSKU: configuration.stockPerSKU, on: admin)

        log("connecting \(configuration.connections) buyer connections")
        let control = SaleControl(skuCount: catalog.skus.count, stopWhenSoldOut: configuration.untilSoldOut)
        let sale = try await SaleParticipants.connect(configuration, catalog: catalog, control: control, loops: loops)

        log("sale starts: \(configuration.isOpenLoop ? "open loop" : "closed loop"), up to \(configuration.seconds) s\(configuration.untilSoldOut ? " or until sold out" : "")")
        let startNanoseconds = monotonicNanoseconds()
        let deadline = startNanoseconds + UInt64(configuration.seconds * 1e9)
        sale.start(atNanoseconds: startNanoseconds, deadlineNanoseconds: deadline)
        while !control.isStopping && monotonicNanoseconds() < deadline {
            try? await Task.sleep(for: .milliseconds(pollMilliseconds))
        }
        let end: FlashSaleEnd = control.isStopping && control.isSoldOut ? .soldOut : .timeLimit
        let stopNanoseconds = monotonicNanoseconds()
        log("sale stops (\(end == .soldOut ? "sold out" : "time limit")); waiting for the last replies")
        let (tally, backgroundTally) = try await sale.stop(atTimeLimit: end == .timeLimit, skuCount: catalog.skus.count)

        let final = try await StockLedger.readCells(catalog, on: admin)
        await sale.close()
        await admin.close()

        let lastNanoseconds = tally.lastReplyNanoseconds > startNanoseconds ? tally.lastReplyNanoseconds : stopNanoseconds
        let check = OversellCheck(start: start, end: final, grantedUnitsBySKU: tally.grantedUnitsBySKU,
                                  soldOutSeen: control.soldOutFlags)
        return FlashSaleResult(configuration: configuration, end: end,
                               elapsedSeconds: Double(lastNanoseconds - startNanoseconds) / 1e9, buyers: tally,
                               background: backgroundTally, soldOutSKUs: control.soldOutSKUs, check: check)
    }

    static func connect(_ configuration: FlashSaleConfiguration, loop: EventLoop, name: String) async throws
        -> ATPConnection
    {
        do {
            return try await ATPConnection.connect(host: configuration.host, port: configuration.port, token: configuration.token,
                                                   clientName: name, group: loop)
        } catch ATPClientError.connectFailed(let why) {
            throw FlashSaleError.connectFailed(why)
        } catch {
            throw FlashSaleError.connectFailed("\(configuration.host):\(configuration.port): \(error)")
        }
    }
}
