import ATPClient
import ATPFlashSale
import ATPLedger
import ATPProtocol
import Testing

/// The flash-sale harness (Sources/ATPFlashSale) against a real server on loopback: many pipelined
/// buyers on a few hot SKUs sell the stock out exactly, the open loop paces its buyers, and the
/// oversell check and the command line refuse what is wrong.
@Suite struct FlashSaleTests {
    static func configuration(_ fixture: ServerFixture, tag: String) -> FlashSaleConfiguration {
        var configuration = FlashSaleConfiguration()
        configuration.port = fixture.port
        configuration.runTag = tag
        configuration.seconds = 30
        return configuration
    }

    @Test func manyPipelinedBuyersSellOutExactlyTheStock() async throws {
        let fixture = try ServerFixture()
        var configuration = Self.configuration(fixture, tag: "SELLOUT")
        configuration.connections = 50
        configuration.depth = 4
        configuration.skuCount = 3
        configuration.stockPerSKU = 400
        configuration.maxUnitsPerBuyer = 3
        configuration.untilSoldOut = true
        let result = try await FlashSale.run(configuration)

        #expect(result.end == .soldOut)
        #expect(result.soldOutSKUs == 3)
        #expect(result.check.passed, "\(result.check.failures)")
        #expect(result.check.oversoldUnits == 0)
        #expect(result.check.remainingUnits == 0)
        #expect(result.check.stockUnits == 1200)
        #expect(result.check.grantedUnits == 1200)
        #expect(result.buyers.grantedUnits == 1200)
        #expect(result.buyers.errors == 0, "\(result.buyers.errorSamples)")
        #expect(result.buyers.granted + result.buyers.refused == result.buyers.attempts)
        #expect(result.buyers.granted >= 400)  // at most 3 units each
        #expect(result.buyers.refused >= 3)  // a 1-unit refusal per SKU ends the sale
        #expect(UInt64(result.buyers.attempts) == result.buyers.latencyMicroseconds.totalCount)
        #expect(result.buyers.answeredPerSecond.reduce(0, +) == result.buyers.attempts)
        for line in result.check.skus {
            #expect(line.stockUnits == 400 && line.grantedUnits == 400 && line.heldUnits == 400 && line.remainingUnits == 0)
        }

        // The server agrees: every granted reservation is held, and nothing of the SKUs is sellable.
        let client = try await fixture.connect()
        let answers = try await client.query((1...3).map { .sku("FS-SELLOUT-0000\($0)") })
        #expect(answers.answers.map(\.sellable) == [0, 0, 0])
        #expect(try await client.stat("reservations.granted") == Int64(result.buyers.granted))
        await client.close()

        let summary = try result.summaryJSON()
        let text = String(decoding: summary, as: UTF8.self)
        #expect(text.contains("\"checkPassed\" : true"))
        #expect(result.hgrm.contains("Percentile"))
        #expect(result.table().contains("PASSED"))
    }

    @Test func openLoopPacesBuyersBesideBackgroundQueriesAndReceipts() async throws {
        let fixture = try ServerFixture()
        var configuration = Self.configuration(fixture, tag: "OPEN")
        configuration.connections = 8
        configuration.depth = 2
        configuration.skuCount = 4
        configuration.stockPerSKU = 1_000_000
        configuration.arrivalsPerSecond = 1000
        configuration.seconds = 1
        configuration.backgroundQueriesPerSecond = 200
        configuration.backgroundEventsPerSecond = 250
        let result = try await FlashSale.run(configuration)

        // The counts are exact by construction, however busy the machine: buyer k is meant to arrive
        // at k ms (k = 0..999), query q at 5q ms (q = 0..199), receipt r at 4r ms (r = 0..249), and
        // at the time limit whatever was meant to arrive before it and was not sent yet (a late
        // wake-up) is sent and answered before the run ends. Only latencies depend on the machine,
        // and they are not asserted.
        #expect(result.end == .timeLimit)
        #expect(result.buyers.attempts == 1000, "\(result.buyers.attempts) buyers arrived")
        #expect(result.buyers.errors == 0, "\(result.buyers.errorSamples)")
        #expect(result.buyers.refused == 0)
        #expect(result.buyers.granted == 1000)
        #expect(result.buyers.latencyMicroseconds.totalCount == 1000)
        #expect(result.buyers.answeredPerSecond.reduce(0, +) == 1000)
        #expect(result.check.passed, "\(result.check.failures)")
        #expect(result.check.remainingUnits == 4_000_000 - result.buyers.grantedUnits)
        let background = try #require(result.background)
        #expect(background.errors == 0, "\(background.errorSamples)")
        #expect(background.queriesAnswered == 200)
        #expect(background.eventsApplied == 250)

        // The receipts went to the background location, beside (not into) the stock on sale.
        let client = try await fixture.connect()
        let store = try await client.query((1...4).map { .cell(sku: "FS-OPEN-0000\($0)", location: "FLASH-STORE") })
        #expect(store.answers.reduce(0) { $0 + $1.sellable } == Int64(background.eventsApplied))
        await client.close()
    }

    @Test func reusingARunTagIsRefusedBeforeTheSale() async throws {
        let fixture = try ServerFixture()
        var configuration = Self.configuration(fixture, tag: "AGAIN")
        configuration.connections = 2
        configuration.skuCount = 2
        configuration.stockPerSKU = 10
        configuration.untilSoldOut = true
        let first = try await FlashSale.run(configuration)
        #expect(first.check.passed)
        do {
            let second = try await FlashSale.run(configuration)
            Issue.record("a second run with the same tag ran: \(second.check)")
        } catch let error as FlashSaleError {
            guard case .setupFailed(let why) = error else {
                Issue.record("expected setupFailed, got \(error)")
                return
            }
            #expect(why.contains("fresh --run-tag"), "\(why)")
        }
    }

    @Test func aServerThatIsNotThereIsAClearError() async throws {
        var configuration = FlashSaleConfiguration()
        configuration.port = 1  // nothing listens on port 1 here
        await #expect(throws: FlashSaleError.self) { _ = try await FlashSale.run(configuration) }
    }

    @Test func theCheckCatchesOversoldUnaccountedAndLeftOverUnits() {
        func cell(_ sku: String, sellable: Int64, reserved: Int64) -> CellReading {
            CellReading(sku: sku, sellable: sellable, onHand: 10, reserved: reserved, committed: 0)
        }
        let start = [cell("A", sellable: 10, reserved: 0), cell("B", sellable: 10, reserved: 0), cell("C", sellable: 10, reserved: 0),
                     cell("D", sellable: 10, reserved: 0)]
        let end = [cell("A", sellable: 0, reserved: 12),  // 12 held of 10: oversold by 2
                   cell("B", sellable: 3, reserved: 6),  // 7 gone, 6 granted: 1 unaccounted
                   cell("C", sellable: 2, reserved: 8),  // refused at 1 unit while 2 were left
                   cell("D", sellable: 0, reserved: 10)]  // exact
        let check = OversellCheck(start: start, end: end, grantedUnitsBySKU: [12, 6, 8, 10], soldOutSeen: [true, false, true, true])
        #expect(!check.passed)
        #expect(check.oversoldUnits == 2)
        #expect(check.skus[0].oversoldUnits == 2)
        #expect(check.skus[1].unaccountedUnits == 1)
        #expect(check.skus[2].leftAfterSoldOutUnits == 2)
        #expect(check.skus[3] == OversellCheck.SKULine(sku: "D", stockUnits: 10, grantedUnits: 10, remainingUnits: 0, heldUnits: 10,
                                                       oversoldUnits: 0, unaccountedUnits: 0, soldOutSeen: true,
                                                       leftAfterSoldOutUnits: 0))
        #expect(check.failures.count == 4)  // A oversold and unaccounted (10 − 0 ≠ 12), B unaccounted, C left over
        #expect(check.failures.contains { $0.hasPrefix("A: 2 units oversold") })
        #expect(check.failures.contains { $0.hasPrefix("C: 2 units still sellable") })

        let exact = OversellCheck(start: start, end: Array(repeating: cell("D", sellable: 0, reserved: 10), count: 4),
                                  grantedUnitsBySKU: [10, 10, 10, 10], soldOutSeen: [true, true, true, true])
        #expect(exact.passed)
    }

    @Test func theCommandLineRefusesBadOptionsByName() throws {
        let parsed = try FlashSaleCommandLine(arguments: [
            "--port", "7500", "--connections", "1000", "--depth", "16", "--skus", "10", "--stock-per-sku", "5_000",
            "--max-units", "3", "--rate", "50000", "--seconds", "5", "--until-sold-out", "--json", "out.json", "--hgrm", "out.hgrm",
        ])
        #expect(parsed.configuration.port == 7500)
        #expect(parsed.configuration.connections == 1000)
        #expect(parsed.configuration.depth == 16)
        #expect(parsed.configuration.stockPerSKU == 5000)
        #expect(parsed.configuration.arrivalsPerSecond == 50_000)
        #expect(parsed.configuration.untilSoldOut)
        #expect(parsed.jsonPath == "out.json" && parsed.hgrmPath == "out.hgrm")

        #expect(throws: FlashSaleError.invalidConfiguration(option: "--depth", value: "0", reason: "must be from 1 to 1024")) {
            try FlashSaleCommandLine(arguments: ["--depth", "0"])
        }
        #expect(throws: FlashSaleError.invalidConfiguration(option: "--rate", value: "fast", reason: "is not a number")) {
            try FlashSaleCommandLine(arguments: ["--rate", "fast"])
        }
        #expect(throws: FlashSaleError.usage("unknown option --buyers (see --help)")) {
            try FlashSaleCommandLine(arguments: ["--buyers", "5"])
        }
        #expect(throws: FlashSaleError.usage("--seconds needs a value (see --help)")) {
            try FlashSaleCommandLine(arguments: ["--seconds"])
        }
        #expect(throws: FlashSaleError.self) { try FlashSaleCommandLine(arguments: ["--run-tag", "has space"]) }
    }
}
