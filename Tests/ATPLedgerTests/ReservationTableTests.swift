@testable import ATPLedger
import Testing

/// `ReservationTable` against a Swift `Dictionary` as the model: random inserts, updates, removals
/// (by id and by slot) and in-place changes, through several growths and long probe runs.
@Suite struct ReservationTableTests {
    struct Entry: ReservationKeyed, Equatable {
        let id: ReservationID
        var value: Int
    }

    static func id(_ number: Int) -> ReservationID {
        // Lengths 1...64 bytes, so every word count of the hash is used.
        let text = "r\(number)-" + String(repeating: "x", count: number % 50)
        return try! ReservationID(String(text.prefix(64)))
    }

    @Test(arguments: [1, 2, 3])
    func agreesWithADictionary(seed: UInt64) {
        let table = ReservationTable<Entry>()
        var model: [ReservationID: Int] = [:]
        var random = SplitMix64(seed: seed)
        for step in 0..<60_000 {
            // The key space grows then shrinks, so the table grows and then empties out again.
            let keySpace = step < 30_000 ? 1 + step / 4 : max(1, 7_500 - (step - 30_000) / 4)
            let key = Self.id(random.next(below: keySpace))
            switch random.next(below: 6) {
            case 0, 1:
                let old = table.updateValue(Entry(id: key, value: step))
                #expect(old?.value == model.updateValue(step, forKey: key))
            case 2:
                #expect(table.removeValue(forKey: key)?.value == model.removeValue(forKey: key))
            case 3:
                if let slot = table.slot(of: key) {
                    #expect(table.remove(slot: slot).value == model.removeValue(forKey: key))
                } else {
                    #expect(model[key] == nil)
                }
            case 4:
                let changed = table.modify(key) { entry -> Int in
                    entry.value += 1
                    return entry.value
                }
                if let value = model[key] { model[key] = value + 1 }
                #expect(changed == model[key])
            default:
                #expect(table[key]?.value == model[key])
            }
            #expect(table.count == model.count)
        }
        var seen: [ReservationID: Int] = [:]
        for (key, entry) in table {
            #expect(key == entry.id)
            #expect(seen.updateValue(entry.value, forKey: key) == nil, "\(key) iterated twice")
        }
        #expect(seen == model)
        for (key, value) in model { #expect(table[key]?.value == value) }
    }

    /// A slot keeps naming its value while other values come and go around it.
    @Test func slotsDoNotMove() {
        let table = ReservationTable<Entry>()
        let kept = table.insert(Entry(id: Self.id(0), value: 42))
        for number in 1..<5_000 { table.insert(Entry(id: Self.id(number), value: number)) }
        for number in stride(from: 1, to: 5_000, by: 2) { table.removeValue(forKey: Self.id(number)) }
        for number in 5_000..<9_000 { table.insert(Entry(id: Self.id(number), value: number)) }
        #expect(table.slot(of: Self.id(0)) == kept)
        #expect(table[slot: kept] == Entry(id: Self.id(0), value: 42))
        #expect(table.count == 1 + 2_499 + 4_000)
    }
}

/// `ExpiryQueue` against a plain list as the model: random adds and removals of nodes over three
/// shard positions, deadlines drawn from a narrow range (buckets shared) and a wide one (buckets
/// alone); `due` returns the model's due nodes by deadline, then in the order they were added, and
/// the invariants hold.
@Suite struct ExpiryQueueTests {
    @Test(arguments: [7, 8, 9])
    func agreesWithAList(seed: UInt64) {
        let queue = ExpiryQueue()
        var model: [(node: Int, deadline: Int64, order: Int)] = []
        var random = SplitMix64(seed: seed)
        for step in 0..<20_000 {
            let number = random.next(below: 2_000)
            let node = ExpiryQueue.node(position: number % 3, slot: number / 3)
            if let position = model.firstIndex(where: { $0.node == node }) {
                queue.remove(node: node)
                model.remove(at: position)
            } else {
                let deadline = random.next(below: 2) == 0 ? Int64(random.next(below: 40)) : Int64(random.next(below: 100_000))
                queue.add(node: node, deadline: deadline)
                model.append((node, deadline, step))
            }
            #expect(queue.count == model.count)
            #expect(queue.earliestDeadline == model.map(\.deadline).min())
            if step % 500 == 0 {
                queue.checkInvariants()
                let now = Int64(random.next(below: 100_000))
                let expected = model.filter { $0.deadline <= now }
                    .sorted { ($0.deadline, $0.order) < ($1.deadline, $1.order) }.map(\.node)
                #expect(queue.due(nowMilliseconds: now) == expected)
            }
        }
        for entry in model { queue.remove(node: entry.node) }
        queue.checkInvariants()
        #expect(queue.count == 0 && queue.earliestDeadline == nil)
    }
}

/// The engine-wide id → home shard map.
@Suite struct ReservationDirectoryTests {
    @Test func claimsInsertsAndRemoves() throws {
        let directory = ReservationDirectory()
        let a = try ReservationID("a")
        let b = try ReservationID("b")
        #expect(directory.claim(a, home: 3) == nil)
        #expect(directory.claim(a, home: 5) == 3, "a claimed id names its first home")
        #expect(directory.home(of: a) == 3)
        #expect(directory.home(of: b) == nil)
        directory.insert(b, home: 7)
        directory.insert(b, home: 7)
        #expect(directory.count == 2)
        directory.remove(b, home: 6)
        #expect(directory.home(of: b) == 7, "removal by another home leaves the id alone")
        directory.remove(b, home: 7)
        #expect(directory.home(of: b) == nil && directory.count == 1)
        #expect(directory.claim(b, home: 2) == nil, "a removed id can be claimed again")
    }

    /// Two threads claiming the same ids for different homes: each id gets exactly one home, and
    /// exactly one of the two claims of each id wins.
    @Test func concurrentClaimsGiveEachIDOneHome() async throws {
        let directory = ReservationDirectory()
        let ids = try (0..<20_000).map { try ReservationID("order-\($0)") }
        let wins = await withTaskGroup(of: Int.self) { group in
            for home in [1, 2] {
                group.addTask { ids.reduce(0) { won, id in won + (directory.claim(id, home: home) == nil ? 1 : 0) } }
            }
            return await group.reduce(0, +)
        }
        #expect(wins == ids.count)
        #expect(directory.count == ids.count)
        #expect(ids.allSatisfy { [1, 2].contains(directory.home(of: $0)) })
    }

    /// Ids differing in one byte, or only past byte 16, have different fingerprints.
    @Test func fingerprintsSeeEveryByte() throws {
        let long = String(repeating: "x", count: 40)
        let directory = ReservationDirectory()
        let keys = Set(try [long + "1", long + "2", "a", "b", String(repeating: "y", count: 64)]
            .map { directory.key(of: try ReservationID($0)) })
        #expect(keys.count == 5)
    }
}

/// `FinishedOutcomeQueue` against a fully sorted array (the order the queue promises).
@Suite struct FinishedOutcomeQueueTests {
    @Test func forgetsInSettleThenIDOrder() throws {
        var random = SplitMix64(seed: 7)
        var queue = FinishedOutcomeQueue()
        var model: [FinishedOutcome] = []
        var now: Int64 = 1_000
        var number = 0
        for step in 0..<20_000 {
            switch random.next() % 10 {
            case 0..<6:
                // Mostly this millisecond or the next; now and then an older one (late acknowledgements).
                if random.next() % 3 == 0 { now += 1 }
                let since = random.next() % 20 == 0 ? now - Int64(random.next() % 5) : now
                number += 1
                let id = try ReservationID("r-\(random.next() % 1_000_000)-\(number)")
                queue.append(id, sinceMilliseconds: since)
                model.append(FinishedOutcome(id: id, sinceMilliseconds: since))
                model.sort()
            case 6..<9:
                // By count: exactly the smallest (since, id).
                guard let first = queue.removeOldest(inIDOrder: true) else { #expect(model.isEmpty); continue }
                #expect(first == model.removeFirst(), "step \(step)")
            default:
                // By age: a whole millisecond, in any order.
                guard let since = queue.oldestMilliseconds else { #expect(model.isEmpty); continue }
                #expect(since == model.first?.sinceMilliseconds)
                var taken: [FinishedOutcome] = []
                while queue.oldestMilliseconds == since { taken.append(queue.removeOldest(inIDOrder: false)!) }
                let expected = model.prefix { $0.sinceMilliseconds == since }
                model.removeFirst(expected.count)
                #expect(taken.sorted() == Array(expected), "step \(step)")
            }
            #expect(queue.count == model.count)
        }
    }
}

/// `FingerprintTable` against a `Dictionary`: random inserts and removals through several growths,
/// with fingerprints crowded into few homes so that runs are long and removals shift them.
@Suite struct FingerprintTableTests {
    @Test func matchesADictionary() {
        var random = SplitMix64(seed: 3)
        let table = FingerprintTable(capacity: 4)
        var model: [ReservationDirectory.Key: UInt16] = [:]
        var keys: [ReservationDirectory.Key] = []
        for step in 0..<50_000 {
            let roll = random.next() % 10
            if roll < 6 || keys.isEmpty {
                // Few distinct homes: the low 5 bits of high >> 1 vary, the rest mostly not.
                let raw = (random.next() % 32) << 1 | (random.next() % 4 == 0 ? random.next() << 6 : 0)
                let key = FingerprintTable.normalized(high: raw, low: random.next())
                let value = UInt16(truncatingIfNeeded: random.next())
                let before = table.insert(high: key.high, low: key.low, value: value)
                let typed = ReservationDirectory.Key(high: key.high, low: key.low)
                #expect(before == model[typed], "step \(step)")
                if model[typed] == nil { model[typed] = value; keys.append(typed) }
            } else {
                let index = Int(random.next() % UInt64(keys.count))
                let key = keys[index]
                let wrongValue = model[key]! &+ 1
                #expect(!table.remove(high: key.high, low: key.low, value: wrongValue), "another value is left alone")
                #expect(table.remove(high: key.high, low: key.low, value: model[key]!), "step \(step)")
                model[key] = nil
                keys.swapAt(index, keys.count - 1)
                keys.removeLast()
            }
            if step % 5_000 == 0 { table.checkInvariants() }
        }
        table.checkInvariants()
        #expect(table.count == model.count)
        for (key, value) in model { #expect(table.value(high: key.high, low: key.low) == value) }
    }
}
