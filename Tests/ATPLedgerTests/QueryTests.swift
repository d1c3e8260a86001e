import ATPLedger
import Testing

/// Availability queries (docs/SEMANTICS.md §8).
@Suite struct QueryTests {
    @Test func cellQuery() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 10), f.event(.adjust, "SKU-1", "S1", 4) { $0.bucket = .inbound })
        let result = f.engine.query([.cell(f.sku("SKU-1"), f.location("S1"))])
        let answer = result.answers[0]
        #expect(answer.sellable == 10 && answer.projected == 14 && answer.exists && !answer.isShort)
        let cells = Array(result.cells(of: 0))
        #expect(cells.count == 1)
        #expect(cells[0].exists && cells[0].cell.sku == f.sku("SKU-1") && cells[0].cell.location == f.location("S1"))
        #expect(Buckets(cells[0].cell) == Buckets(onHand: 10, inbound: 4))

        // A cell that does not exist (known SKU, known location): zeros, one cell, exists false.
        f.applied(f.event(.receive, "SKU-2", "S2", 1))
        let absent = f.engine.query([.cell(f.sku("SKU-1"), f.location("S2"))])
        #expect(!absent.answers[0].exists && absent.answers[0].sellable == 0 && absent.answers[0].projected == 0)
        #expect(absent.cells(of: 0).count == 1 && absent.cells(of: 0).first!.exists == false)
        #expect(Buckets(absent.cells(of: 0).first!.cell) == Buckets())
    }

    @Test func skuQueryAscendingLocationOrderAndTotals() {
        let f = LedgerFixture()
        // Location ids: Z = 0, A = 1, M = 2 (order of first use), cells created in another order.
        let z = f.location("Z"), a = f.location("A"), m = f.location("M")
        #expect(z.rawValue == 0 && a.rawValue == 1 && m.rawValue == 2)
        f.applied(
            f.event(.receive, "SKU-1", "M", 5), f.event(.receive, "SKU-1", "Z", 7),
            f.event(.adjust, "SKU-1", "A", 3) { $0.bucket = .inbound }, f.event(.ship, "SKU-1", "A", 1),
            f.event(.receive, "SKU-2", "Z", 100))
        let result = f.engine.query([.sku(f.sku("SKU-1"))])
        let answer = result.answers[0]
        // Sellable sums per-cell sellable (A is short and counts 0, not −1).
        #expect(answer.sellable == 12 && answer.projected == 15 && answer.exists && answer.isShort)
        #expect(result.cells(of: 0).map(\.cell.location) == [z, a, m])
        #expect(result.cells(of: 0).map(\.sellable) == [7, 0, 5])
        #expect(result.cells(of: 0).allSatisfy { $0.exists && $0.cell.sku == f.sku("SKU-1") })
    }

    /// Issue 14 item 6: answers without cells copy none out of the ledger (a batch of SKU queries
    /// used to copy every cell of every SKU for a reply that carries only sums), and their sums,
    /// shortness and existence are those of the answers with cells.
    @Test func answersWithoutCellsCopyNoneAndAgree() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 10), f.event(.receive, "SKU-1", "S2", 7), f.event(.ship, "SKU-1", "S3", 1),
                  f.event(.receive, "SKU-2", "S1", 3))
        try! f.engine.defineChannel(ChannelDefinition(id: f.channel("web"), locations: [f.location("S2"), f.location("S1")],
                                                      bufferUnits: 2))
        let queries: [AvailabilityQuery] = [
            .sku(f.sku("SKU-1")), .cell(f.sku("SKU-1"), f.location("S1")), .cell(f.sku("SKU-2"), f.location("S2")),
            .channel(f.sku("SKU-1"), f.channel("web")), .sku(f.sku("NONE")), .channel(f.sku("SKU-2"), f.channel("nope")),
        ]
        let full = f.engine.query(queries)
        let bare = f.engine.query(queries, collectingCells: false)
        #expect(full.cells(of: 0).count == 3 && full.cells(of: 3).count == 2)
        for index in queries.indices {
            #expect(bare.cells(of: index).isEmpty, "answer \(index) carries cells")
            let (a, b) = (full.answers[index], bare.answers[index])
            #expect(a.sellable == b.sellable && a.projected == b.projected && a.isShort == b.isShort && a.exists == b.exists,
                    "answer \(index): \(a) against \(b)")
        }
    }

    /// A batch copies at most `cellsMax` cells: the answer that would pass it keeps none and says so
    /// (`cellsOmitted`), with its sums complete; the answers before keep theirs.
    @Test func anAnswerPastCellsMaxKeepsNoCellsAndSaysSo() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "A", "S1", 1), f.event(.receive, "A", "S2", 2), f.event(.receive, "A", "S3", 3),
                  f.event(.receive, "B", "S1", 4), f.event(.receive, "B", "S2", 5), f.event(.receive, "B", "S3", 6))
        let result = f.engine.query([.sku(f.sku("A")), .sku(f.sku("B")), .cell(f.sku("A"), f.location("S1"))], cellsMax: 4)
        #expect(result.cells(of: 0).count == 3 && !result.answers[0].cellsOmitted)
        #expect(result.cells(of: 1).isEmpty && result.answers[1].cellsOmitted)
        #expect(result.answers[1].sellable == 15 && result.answers[1].exists)
        #expect(result.cells(of: 2).count == 1 && !result.answers[2].cellsOmitted, "one more cell fits the cap")
    }

    @Test func channelQuery() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 10), f.event(.receive, "SKU-1", "S2", 7))
        try! f.engine.defineChannel(ChannelDefinition(id: f.channel("web"), locations: [f.location("S2"), f.location("S1")],
                                                      bufferUnits: 2, capPercent: 60))
        let result = f.engine.query([.channel(f.sku("SKU-1"), f.channel("web"))])
        // floor((17 − 2) × 60 / 100) = 9
        #expect(result.answers[0].sellable == 9 && result.answers[0].projected == 9 && result.answers[0].exists)
        #expect(result.cells(of: 0).map(\.cell.location) == [f.location("S2"), f.location("S1")])
    }

    @Test func batchMixingKinds() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "A", "S1", 4), f.event(.receive, "A", "S2", 6), f.event(.receive, "B", "S1", 3),
                  f.event(.receive, "C", "S2", 2))
        try! f.engine.defineChannel(ChannelDefinition(id: f.channel("ch"), locations: [f.location("S1")]))
        let a = f.sku("A"), b = f.sku("B"), c = f.sku("C")
        let s1 = f.location("S1"), s2 = f.location("S2")
        let queries: [AvailabilityQuery] = [
            .sku(a), .cell(b, s1), .channel(a, f.channel("ch")), .cell(c, s1), .sku(.unknown),
            .channel(c, .unknown), .cell(a, s2), .sku(c), .channel(b, f.channel("ch")), .cell(.unknown, .unknown),
        ]
        let result = f.engine.query(queries)
        #expect(result.answers.map(\.sellable) == [10, 3, 4, 0, 0, 0, 6, 2, 3, 0])
        #expect(result.answers.map(\.exists) == [true, true, true, false, false, false, true, true, true, false])
        #expect((0..<queries.count).map { result.cells(of: $0).count } == [2, 1, 1, 1, 0, 0, 1, 1, 1, 1])
        #expect(result.cells(of: 6).first!.cell.onHand == 6)
        #expect(f.counters.queriesAnswered == 10)
    }

    @Test func unknownNamesReadAsNotExisting() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "S1", 10))
        #expect(f.catalog.existingSKU("SKU-404") == nil)
        #expect(f.catalog.existingLocation("S404") == nil)
        #expect(f.catalog.existingChannel("nope") == nil)
        let sku = f.catalog.existingSKU("SKU-404") ?? .unknown
        let location = f.catalog.existingLocation("S404") ?? .unknown
        let channel = f.catalog.existingChannel("nope") ?? .unknown
        let result = f.engine.query([
            .cell(sku, f.location("S1")), .cell(f.sku("SKU-1"), location), .sku(sku), .channel(f.sku("SKU-1"), channel),
            .channel(sku, channel),
        ])
        for answer in result.answers {
            #expect(!answer.exists && answer.sellable == 0 && answer.projected == 0 && !answer.isShort)
        }
        #expect(result.cells(of: 0).first!.cell.sku == .unknown)
        #expect(result.cells(of: 1).first!.cell.location == .unknown)
        #expect(result.cells(of: 2).isEmpty && result.cells(of: 3).isEmpty && result.cells(of: 4).isEmpty)
        // Asking created no names.
        #expect(f.catalog.count(.sku) == 1 && f.catalog.count(.location) == 1)
    }

    @Test func emptyBatch() {
        let f = LedgerFixture()
        let result = f.engine.query([])
        #expect(result.answers.isEmpty)
    }

    /// A catalogue sync: 100,000 SKUs in one batch, answers in batch order.
    @Test func hundredThousandSKUBatch() {
        let f = LedgerFixture()
        let count = 100_000
        let dc = f.location("DC")
        let shop = f.location("SHOP")
        // One source per location: each numbers its events in order (one source mixing two ranges
        // would see the lower one rejected as too old once the higher one is a window ahead).
        let source = f.source("erp")
        let shopSource = f.source("pos")
        var skus: [SKUID] = []
        skus.reserveCapacity(count)
        var batch = EventBatch(capacity: count + count / 10)
        for i in 0..<count {
            let sku = try! f.catalog.sku("SKU-\(i)")
            skus.append(sku)
            batch.append(StockEvent(kind: .receive, sku: sku, location: dc, quantity: Int64(i % 97 + 1),
                                    source: source, sequence: UInt64(i)))
            if i % 10 == 0 {
                batch.append(StockEvent(kind: .receive, sku: sku, location: shop, quantity: 1000, source: shopSource,
                                        sequence: UInt64(i)))
            }
        }
        #expect(f.engine.apply(batch).appliedCount == count + count / 10)
        try! f.engine.defineChannel(ChannelDefinition(id: f.channel("web"), locations: [dc], bufferUnits: 1))

        let queries = skus.reversed().map { AvailabilityQuery.sku($0) }
        let result = f.engine.query(queries)
        #expect(result.answers.count == count)
        var wrong = 0
        for (n, answer) in result.answers.enumerated() {
            let i = count - 1 - n
            let expected = Int64(i % 97 + 1) + (i % 10 == 0 ? 1000 : 0)
            if answer.sellable != expected || !answer.exists || result.cells(of: n).count != (i % 10 == 0 ? 2 : 1) {
                wrong += 1
            }
        }
        #expect(wrong == 0)

        let channelResult = f.engine.query(skus.map { .channel($0, f.channel("web")) })
        var wrongChannel = 0
        for (i, answer) in channelResult.answers.enumerated() where answer.sellable != Int64(i % 97) {
            wrongChannel += 1
        }
        #expect(wrongChannel == 0)
        #expect(f.engine.statistics().cellCount == count + count / 10)
    }
}
