@testable import ATPLedger
import Dispatch
import Testing

/// The name catalog: interning, dense ids, concurrent lookups and inserts, a full table
/// (docs/SEMANTICS.md §1).
@Suite struct CatalogTests {
    @Test func interningIsIdempotentAndDense() throws {
        let catalog = Catalog()
        #expect(try catalog.sku("SKU-1") == SKUID(0))
        #expect(try catalog.sku("SKU-2") == SKUID(1))
        #expect(try catalog.sku("SKU-1") == SKUID(0))
        #expect(try catalog.sku("SKU-3") == SKUID(2))
        #expect(catalog.count(.sku) == 3)
        // Kinds are numbered independently.
        #expect(try catalog.location("SKU-1") == LocationID(0))
        #expect(try catalog.channel("SKU-1") == ChannelID(0))
        #expect(try catalog.source("SKU-1") == SourceID(0))
        #expect(try catalog.location("DC") == LocationID(1))
        // Names round-trip.
        #expect(catalog.name(of: SKUID(1)) == "SKU-2")
        #expect(catalog.name(of: LocationID(1)) == "DC")
        #expect(catalog.name(of: ChannelID(0)) == "SKU-1")
        #expect(catalog.name(of: SourceID(0)) == "SKU-1")
        // Lookups never intern.
        #expect(catalog.existingSKU("SKU-2") == SKUID(1))
        #expect(catalog.existingSKU("SKU-9") == nil)
        #expect(catalog.existingLocation("nowhere") == nil)
        #expect(catalog.existingChannel("DC") == nil)
        #expect(catalog.existingSource("DC") == nil)
        #expect(catalog.existingSKU("") == nil)
        #expect(catalog.count(.sku) == 3 && catalog.count(.location) == 2)
    }

    @Test func namesCompareByteForByte() throws {
        let catalog = Catalog()
        let lower = try catalog.sku("sku-1")
        let upper = try catalog.sku("SKU-1")
        let precomposed = try catalog.sku("caf\u{E9}")
        let decomposed = try catalog.sku("cafe\u{301}")
        #expect(lower != upper)
        #expect(precomposed != decomposed, "no Unicode normalisation")
        #expect(catalog.name(of: decomposed) == "cafe\u{301}")
        #expect(try catalog.sku("sku-1 ") != lower)
    }

    @Test func bytesAndStringsAgree() throws {
        let catalog = Catalog()
        let byString = try catalog.location("Zürich-1")
        let byBytes = try Array("Zürich-1".utf8).withUnsafeBytes { raw in
            try catalog.intern(raw, kind: .location)
        }
        #expect(byBytes == byString.rawValue)
        let looked = Array("Zürich-1".utf8).withUnsafeBytes { catalog.lookup($0, kind: .location) }
        #expect(looked == byString.rawValue)
        let bytes = catalog.withName(.location, id: byString.rawValue) { Array($0) }
        #expect(bytes == Array("Zürich-1".utf8))
        #expect(catalog.bytesUsed > 0)
    }

    @Test func manyNamesStayDense() throws {
        let catalog = Catalog()
        for i in 0..<50_000 {
            #expect(try catalog.location("L-\(i)").rawValue == UInt32(i))
        }
        var wrong = 0
        for i in stride(from: 0, to: 50_000, by: 7) {
            if catalog.existingLocation("L-\(i)") != LocationID(UInt32(i)) { wrong += 1 }
            if catalog.name(of: LocationID(UInt32(i))) != "L-\(i)" { wrong += 1 }
        }
        #expect(wrong == 0)
        #expect(catalog.count(.location) == 50_000)
    }

    /// Four threads intern overlapping names in different orders while two threads look up names
    /// interned before they started and names being interned now.
    @Test func concurrentLookupsAndInserts() throws {
        let catalog = Catalog()
        let preloaded = 2_000
        for i in 0..<preloaded { _ = try catalog.sku("pre-\(i)") }
        let names = (0..<20_000).map { "new-\($0)" }
        let writers = 4
        let readers = 2
        let idsByWriter = (0..<writers).map { _ in Box<[String: UInt32]>([:]) }
        let readerErrors = Box<Int>(0)
        let readerLookups = Box<Int>(0)
        DispatchQueue.concurrentPerform(iterations: writers + readers) { thread in
            if thread < writers {
                var seen: [String: UInt32] = [:]
                var random = SplitMix64(seed: UInt64(thread))
                let order = names.shuffled(using: &random)
                for name in order { seen[name] = try! catalog.sku(name).rawValue }
                idsByWriter[thread].value = seen
            } else {
                var errors = 0
                var lookups = 0
                for round in 0..<5 {
                    for i in stride(from: round, to: preloaded, by: 3) {
                        if catalog.existingSKU("pre-\(i)") != SKUID(UInt32(i)) { errors += 1 }
                        lookups += 1
                    }
                    for name in names where name.hasSuffix("7") {
                        // Either not yet interned or found with an id past the preloaded ones.
                        if let id = catalog.existingSKU(name), Int(id.rawValue) < preloaded { errors += 1 }
                        lookups += 1
                    }
                }
                readerErrors.add(errors)
                readerLookups.add(lookups)
            }
        }
        #expect(readerErrors.value == 0)
        #expect(readerLookups.value > 0)
        // Every writer saw the same id for every name; the ids are exactly the next dense range.
        let reference = idsByWriter[0].value
        #expect(reference.count == names.count)
        for writer in 1..<writers { #expect(idsByWriter[writer].value == reference) }
        #expect(Set(reference.values) == Set((preloaded..<preloaded + names.count).map { UInt32($0) }))
        #expect(catalog.count(.sku) == preloaded + names.count)
        var wrong = 0
        for (name, id) in reference where catalog.name(of: SKUID(id)) != name { wrong += 1 }
        #expect(wrong == 0)
    }

    @Test func tableFull() throws {
        let catalog = Catalog(idsMax: 3)
        #expect(try catalog.sku("a") == SKUID(0))
        #expect(try catalog.sku("b") == SKUID(1))
        #expect(try catalog.sku("c") == SKUID(2))
        #expect(throws: InvalidNameError(kind: .sku, problem: .tableFull)) { try catalog.sku("d") }
        do throws(InvalidNameError) {
            _ = try catalog.sku("e")
            Issue.record("expected tableFull")
        } catch {
            #expect(error.reason == .nameTableFull)
        }
        // Known names still resolve; other kinds have their own table.
        #expect(try catalog.sku("b") == SKUID(1))
        #expect(catalog.count(.sku) == 3)
        #expect(try catalog.location("d") == LocationID(0))
        // An invalid name is refused for what it is, even when the table is full.
        #expect(throws: InvalidNameError(kind: .sku, problem: .empty)) { try catalog.sku("") }
    }

    @Test func engineEventsInternThroughTheCatalog() {
        let f = LedgerFixture()
        f.applied(f.event(.receive, "SKU-new", "LOC-new", 1, source: "feed-new"))
        #expect(f.catalog.existingSKU("SKU-new") == SKUID(0))
        #expect(f.catalog.existingLocation("LOC-new") == LocationID(0))
        #expect(f.catalog.existingSource("feed-new") == SourceID(0))
        let stats = f.engine.statistics()
        #expect(stats.skuCount == 1 && stats.locationCount == 1 && stats.cellCount == 1)
    }
}

/// A value shared between threads of a concurrent test, guarded by a serial queue.
final class Box<Value>: @unchecked Sendable {
    private let queue = DispatchQueue(label: "box")
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { queue.sync { stored } }
        set { queue.sync { stored = newValue } }
    }
}

extension Box where Value == Int {
    func add(_ delta: Int) { queue.sync { stored += delta } }
}

/// Hash flooding (issue 14 item 8): names are hashed into the index with a per-process seed, so
/// names chosen to collide under the public hash (the one clients compute for placement) spread.
@Suite struct NameFloodingTests {
    @Test func namesThatCollideUnderThePublicHashDoNotMakeALongProbe() throws {
        // 300 names whose public hashes share their low 10 bits: one home slot in a 1,024-entry
        // index if the index used the public hash.
        var names: [String] = []
        var n = 0
        while names.count < 300 {
            var name = "FLOOD-\(n)"
            let hash = name.withUTF8 { hashBytes(UnsafeRawBufferPointer($0)) }
            if hash & 0x3FF == 0 { names.append(name) }
            n += 1
        }
        let catalog = Catalog()
        for name in names { _ = try catalog.location(name) }
        #expect(catalog.count(.location) == 300)
        let longest = catalog.longestProbe(.location)
        #expect(longest < 40, "the longest probe run is \(longest) entries")
        for (id, name) in names.enumerated() { #expect(catalog.existingLocation(name) == LocationID(UInt32(id))) }
    }
}
