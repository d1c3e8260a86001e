import ATPLedger
import Testing

/// Channels: definitions, the ATP formula, channel queries and channel reservation lines
/// (docs/SEMANTICS.md §7, same numbers).
@Suite struct ChannelTests {
    /// SKU-1 with sellable S1 = 6, S2 = 3, DC1 = 20 (+ 10 inbound), and the channels web, store, market.
    func example() -> LedgerFixture {
        let f = LedgerFixture()
        f.applied(
            f.event(.receive, "SKU-1", "S1", 6), f.event(.receive, "SKU-1", "S2", 3),
            f.event(.receive, "SKU-1", "DC1", 20), f.event(.adjust, "SKU-1", "DC1", 10) { $0.bucket = .inbound })
        try! f.engine.defineChannel(ChannelDefinition(
            id: f.channel("web"), locations: [f.location("DC1"), f.location("S1")], bufferUnits: 3, capPercent: 50))
        try! f.engine.defineChannel(ChannelDefinition(
            id: f.channel("store"), locations: [f.location("S1"), f.location("S2")]))
        try! f.engine.defineChannel(ChannelDefinition(
            id: f.channel("market"), locations: [f.location("S2"), f.location("S1")], bufferUnits: 1))
        return f
    }

    func channelAnswer(_ f: LedgerFixture, _ channel: String, sku: String = "SKU-1") -> QueryAnswer {
        f.engine.query([.channel(f.sku(sku), f.channel(channel))]).answers[0]
    }

    @Test func atpFormulaWithBufferAndCap() {
        let f = example()
        let web = channelAnswer(f, "web")
        #expect(web.sellable == 11 && web.projected == 16 && web.exists && !web.isShort)
        let store = channelAnswer(f, "store")
        #expect(store.sellable == 9 && store.projected == 9)
        let market = channelAnswer(f, "market")
        #expect(market.sellable == 8 && market.projected == 8)
        // The formula itself, including the floor and the max(0, ...).
        let definition = ChannelDefinition(id: f.channel("web"), locations: [f.location("S1")], bufferUnits: 3,
                                           capPercent: 50)
        #expect(definition.atp(sellableSum: 26) == 11)
        #expect(definition.atp(sellableSum: 36) == 16)
        #expect(definition.atp(sellableSum: 3) == 0)
        #expect(definition.atp(sellableSum: 1) == 0)
        #expect(ChannelDefinition(id: f.channel("x"), locations: [f.location("S1")], capPercent: 1)
            .atp(sellableSum: 199) == 1)
    }

    @Test func channelQueryCellsInPriorityOrder() {
        let f = example()
        let result = f.engine.query([.channel(f.sku("SKU-1"), f.channel("market")),
                                     .channel(f.sku("SKU-1"), f.channel("web"))])
        #expect(result.cells(of: 0).map(\.cell.location) == [f.location("S2"), f.location("S1")])
        #expect(result.cells(of: 0).map(\.sellable) == [3, 6])
        #expect(result.cells(of: 1).map(\.cell.location) == [f.location("DC1"), f.location("S1")])
        #expect(result.cells(of: 1).map(\.projected) == [30, 6])

        // A channel location without a cell of the SKU reads as zeros, not existing.
        try! f.engine.defineChannel(ChannelDefinition(id: f.channel("wide"),
                                                      locations: [f.location("S9"), f.location("S2")]))
        let wide = f.engine.query([.channel(f.sku("SKU-1"), f.channel("wide"))])
        #expect(wide.answers[0].sellable == 3 && wide.answers[0].exists)
        #expect(wide.cells(of: 0).map(\.exists) == [false, true])
        // A SKU with no cell at all: not existing, 0.
        let none = f.engine.query([.channel(f.sku("SKU-none"), f.channel("store"))])
        #expect(!none.answers[0].exists && none.answers[0].sellable == 0)
        #expect(none.cells(of: 0).count == 2)
    }

    @Test func channelShortFlag() {
        let f = example()
        f.applied(f.event(.ship, "SKU-1", "S2", 4))
        let store = channelAnswer(f, "store")
        #expect(store.isShort && store.sellable == 6)
        #expect(!channelAnswer(f, "web").isShort)
    }

    @Test func defineReplaceRemove() throws {
        let f = example()
        #expect(f.engine.channels().map(\.id) == [f.channel("web"), f.channel("store"), f.channel("market")])
        let web = f.channel("web")
        #expect(f.engine.channel(web) == ChannelDefinition(
            id: web, locations: [f.location("DC1"), f.location("S1")], bufferUnits: 3, capPercent: 50))

        // Replace: new buffer and cap, new order.
        try f.engine.defineChannel(ChannelDefinition(id: web, locations: [f.location("S1"), f.location("DC1")],
                                                     bufferUnits: 0, capPercent: 100))
        #expect(channelAnswer(f, "web").sellable == 26)
        #expect(f.engine.query([.channel(f.sku("SKU-1"), web)]).cells(of: 0).map(\.cell.location)
            == [f.location("S1"), f.location("DC1")])
        #expect(f.engine.channels().count == 3)

        // Remove: reads as unknown, no cells; removing again throws.
        try f.engine.removeChannel(web)
        #expect(f.engine.channel(web) == nil)
        let gone = f.engine.query([.channel(f.sku("SKU-1"), web)])
        #expect(gone.answers[0] == f.engine.query([.channel(f.sku("SKU-1"), .unknown)]).answers[0])
        #expect(!gone.answers[0].exists && gone.answers[0].sellable == 0 && gone.cells(of: 0).isEmpty)
        #expect(throws: ChannelDefinitionError.unknownChannel) { try f.engine.removeChannel(web) }
        #expect(f.engine.channels().map(\.id) == [f.channel("store"), f.channel("market")])
        #expect(f.engine.statistics().channelCount == 2)
        // A reservation through a removed channel gets nothing.
        let reply = f.reserve("via-removed", sku: "SKU-1", channel: "web", 1, allowSplit: true, mode: .partial)
        #expect(reply.state == .refused)
    }

    @Test func invalidDefinitions() {
        let f = example()
        let id = f.channel("bad")
        let s1 = f.location("S1")
        let cases: [(ChannelDefinition, ChannelDefinitionError)] = [
            (ChannelDefinition(id: id, locations: []), .noLocations),
            (ChannelDefinition(id: id, locations: (0..<4097).map { LocationID(UInt32($0)) }), .tooManyLocations),
            (ChannelDefinition(id: id, locations: [s1, f.location("S2"), s1]), .duplicateLocation),
            (ChannelDefinition(id: id, locations: [s1, .unknown]), .unknownLocation),
            (ChannelDefinition(id: id, locations: [s1], bufferUnits: -1), .bufferOutOfRange),
            (ChannelDefinition(id: id, locations: [s1], bufferUnits: 1_000_000_001), .bufferOutOfRange),
            (ChannelDefinition(id: id, locations: [s1], capPercent: 0), .capOutOfRange),
            (ChannelDefinition(id: id, locations: [s1], capPercent: 101), .capOutOfRange),
        ]
        for (definition, error) in cases {
            #expect(throws: error) { try f.engine.defineChannel(definition) }
        }
        #expect(f.engine.channel(id) == nil && f.engine.channels().count == 3)
        // The limits themselves are accepted.
        #expect(throws: Never.self) {
            try f.engine.defineChannel(ChannelDefinition(id: id, locations: (0..<4096).map { LocationID(UInt32($0)) },
                                                         bufferUnits: 1_000_000_000, capPercent: 1))
        }
    }

    /// The reservation table of §7, each row on a fresh copy of the example.
    @Test(arguments: [
        // (channel, quantity, allowSplit, mode, granted, [(location, units)])
        ChannelCase("store", 8, split: true, .allOrNothing, granted: 8, [("S1", 6), ("S2", 2)]),
        ChannelCase("store", 8, split: false, .allOrNothing, granted: 0, []),
        ChannelCase("store", 8, split: false, .partial, granted: 6, [("S1", 6)]),
        ChannelCase("store", 3, split: false, .allOrNothing, granted: 3, [("S1", 3)]),
        ChannelCase("store", 10, split: true, .allOrNothing, granted: 0, []),
        ChannelCase("store", 10, split: true, .partial, granted: 9, [("S1", 6), ("S2", 3)]),
        ChannelCase("market", 5, split: true, .allOrNothing, granted: 5, [("S2", 3), ("S1", 2)]),
        ChannelCase("market", 5, split: false, .allOrNothing, granted: 5, [("S1", 5)]),
        ChannelCase("market", 9, split: true, .allOrNothing, granted: 0, []),
        ChannelCase("web", 12, split: true, .partial, granted: 11, [("DC1", 11)]),
    ])
    func reservationLine(_ c: ChannelCase) {
        let f = example()
        let reply = f.reserve("order", sku: "SKU-1", channel: c.channel, c.quantity, allowSplit: c.split, mode: c.mode)
        #expect(reply.grantedUnits == c.granted)
        #expect(reply.state == (c.granted > 0 ? .held : .refused))
        #expect(reply.lines[0].allocations
            == c.allocations.map { LineAllocation(location: f.location($0.0), quantity: $0.1) })
        for (location, units) in c.allocations {
            #expect(f.cell("SKU-1", location).cell.reserved == Int32(units))
        }
        f.engine.checkInvariants()
    }

    @Test func noSplitPartialTakesTheEarliestOfEqualLocations() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-1", "A", 2), f.event(.receive, "SKU-1", "B", 4),
                  f.event(.receive, "SKU-1", "C", 4))
        try! f.engine.defineChannel(ChannelDefinition(
            id: f.channel("ch"), locations: [f.location("A"), f.location("C"), f.location("B")]))
        let reply = f.reserve("o", sku: "SKU-1", channel: "ch", 7, allowSplit: false, mode: .partial)
        #expect(reply.lines[0].allocations == [LineAllocation(location: f.location("C"), quantity: 4)])
    }

    @Test func channelsShareLocations() {
        let f = example()
        #expect(f.reserve("order", sku: "SKU-1", channel: "store", 8, allowSplit: true).isFullyGranted)
        #expect(channelAnswer(f, "web").sellable == 8)
        #expect(channelAnswer(f, "store").sellable == 1)
        #expect(channelAnswer(f, "market").sellable == 0)
        // A location line lowers what channels see too, and ignores channel buffers and caps.
        #expect(f.reserve("direct", [("SKU-1", "DC1", 20)]).isFullyGranted)
        #expect(channelAnswer(f, "web").sellable == 0)
        // Releasing gives every channel its units back.
        #expect(f.release("order").state == .released)
        #expect(f.release("direct").state == .released)
        #expect(channelAnswer(f, "web").sellable == 11)
        #expect(channelAnswer(f, "store").sellable == 9)
        #expect(channelAnswer(f, "market").sellable == 8)
    }

    @Test func channelLinesAcrossShardsAllOrNothing() {
        let f = example()
        f.applied(f.event(.receive, "SKU-2", "S1", 1))
        #expect(f.engine.shardIndex(of: f.sku("SKU-1")) != f.engine.shardIndex(of: f.sku("SKU-2")))
        let store = f.channel("store")
        let request = ReserveRequest(id: f.rid("two"), lines: [
            ReservationLine(sku: f.sku("SKU-1"), target: .channel(store, allowSplit: true), quantity: 9),
            ReservationLine(sku: f.sku("SKU-2"), target: .channel(store, allowSplit: true), quantity: 2),
        ], ttlMilliseconds: 1_000, mode: .allOrNothing)
        #expect(f.engine.reserve(request).state == .refused)
        #expect(channelAnswer(f, "store").sellable == 9)
        #expect(channelAnswer(f, "store", sku: "SKU-2").sellable == 1)
        f.engine.checkInvariants()
    }
}

/// One row of the channel reservation table.
struct ChannelCase: Sendable, CustomStringConvertible {
    var channel: String
    var quantity: Int64
    var split: Bool
    var mode: ReservationMode
    var granted: Int64
    var allocations: [(String, Int64)]

    init(_ channel: String, _ quantity: Int64, split: Bool, _ mode: ReservationMode, granted: Int64,
         _ allocations: [(String, Int64)]) {
        self.channel = channel
        self.quantity = quantity
        self.split = split
        self.mode = mode
        self.granted = granted
        self.allocations = allocations
    }

    var description: String { "\(channel) \(quantity) split=\(split) \(mode)" }
}
