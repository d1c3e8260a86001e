import Atomics
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Interns names of one kind to dense ids 0, 1, 2, ... Lookups are lock-free; inserts take a mutex
/// (they happen once per new name, off the steady-state hot path).
///
/// Safety argument for `@unchecked Sendable` (the unsafe memory is fenced in this type):
/// - Name bytes live in append-only chunks that are never moved or freed before `deinit`. A name's
///   bytes and its directory entry are written before its id is published, with a release store, in
///   the index entry and in `publishedCount`; readers load those with acquire ordering, so a reader
///   that sees an id sees its complete bytes.
/// - The directory (id → chunk and offset) is a fixed array of page pointers; a page is allocated and
///   stored before any id in it is published.
/// - The hash index is an open-addressing array of atomic 64-bit entries (hash tag in the high half,
///   id + 1 in the low half, 0 = empty), hashed with a secret per-process seed (`indexHash`), never
///   with the public placement hash: clients choose names and must not be able to make them collide. On growth a complete new index is built and then published
///   with a release store; old indexes are retired, not freed, until `deinit`, because a reader may
///   still be probing one. A reader of an old index misses only names inserted after it was retired,
///   and a miss always falls back to the locked insert path, which re-checks.
/// - A SKU table under `.nameHash` placement keeps each id's placement number in pages like the
///   directory's, written before the id is published (the same release/acquire argument).
/// - Every mutation happens while holding `insertLock`.
/// The secret seed of every name index's hash in this process (issue 14 item 8: names come from
/// clients, and with a public hash an ingest client could choose names that all probe one run).
private let nameIndexSeed = UInt64.random(in: .min ... .max)

final class NameTable: @unchecked Sendable {
    typealias Entry = UnsafeAtomic<UInt64>

    let kind: NameKind
    private let insertLock = Mutex<Void>(())
    /// Current index: word 0 holds the mask, words 1... the entries.
    private let currentIndex: UnsafeAtomic<UnsafeMutableRawPointer>
    private var retiredIndexes: [UnsafeMutableRawPointer] = []
    private let publishedCount: UnsafeAtomic<Int>

    private static let chunkBytes = 1 << 20
    private static let chunksMax = 1 << 16
    private static let pageEntries = 1 << 16
    private static let pagesMax = 1 << 16
    private let chunks: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private var chunkCount = 0
    private var chunkUsedBytes = NameTable.chunkBytes
    /// Directory pages: entry = chunk index << 32 | offset.
    private let pages: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>
    /// The largest id + 1 this table may hand out (tests lower it to exercise `tableFull`).
    let idsMax: Int
    /// Where the names' SKUs live (SKU tables; `.skuID`, the identity, for other kinds).
    let placement: SKUPlacement
    /// Placement number pages by id (`.nameHash` only, else nil).
    private let placementPages: UnsafeMutablePointer<UnsafeMutablePointer<UInt32>?>?
    /// Names per shard so far (`.nameHash` only).
    private var placementLocalCounts: [UInt32]

    init(kind: NameKind, initialCapacity: Int = 1024, idsMax: Int = Int(UInt32.max) - 1,
         placement: SKUPlacement = SKUPlacement(scheme: .skuID, shardCount: 1)) {
        precondition(idsMax > 0 && idsMax < Int(UInt32.max))
        precondition(kind == .sku || placement.scheme == .skuID, "only SKUs are placed on shards")
        self.kind = kind
        self.idsMax = idsMax
        self.placement = placement
        if placement.scheme == .nameHash {
            let pages = UnsafeMutablePointer<UnsafeMutablePointer<UInt32>?>.allocate(capacity: NameTable.pagesMax)
            pages.initialize(repeating: nil, count: NameTable.pagesMax)
            placementPages = pages
            placementLocalCounts = Array(repeating: 0, count: placement.shardCount)
        } else {
            placementPages = nil
            placementLocalCounts = []
        }
        currentIndex = .create(NameTable.allocateIndex(capacity: max(16, initialCapacity.nextPowerOfTwo)))
        publishedCount = .create(0)
        chunks = .allocate(capacity: NameTable.chunksMax)
        chunks.initialize(repeating: nil, count: NameTable.chunksMax)
        pages = .allocate(capacity: NameTable.pagesMax)
        pages.initialize(repeating: nil, count: NameTable.pagesMax)
    }

    deinit {
        currentIndex.load(ordering: .relaxed).deallocate()
        for index in retiredIndexes { index.deallocate() }
        currentIndex.destroy()
        publishedCount.destroy()
        for i in 0..<chunkCount { chunks[i]?.deallocate() }
        chunks.deallocate()
        for i in 0..<NameTable.pagesMax { pages[i]?.deallocate() }
        pages.deallocate()
        if let placementPages {
            for i in 0..<NameTable.pagesMax { placementPages[i]?.deallocate() }
            placementPages.deallocate()
        }
    }

    /// Number of names interned so far (ids are 0..<count).
    var count: Int { publishedCount.load(ordering: .acquiring) }

    /// The id of `bytes`, or nil when never interned. Lock-free; cost: one hash and usually one probe.
    func lookup(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
        lookup(bytes, hash: NameTable.indexHash(bytes))
    }

    /// The index's hash of a name: seeded per process, unlike the public placement hash.
    @inline(__always) static func indexHash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        hashBytes(bytes, seed: nameIndexSeed)
    }

    /// The longest distance of any name's index entry from its home position (tests: a flood of
    /// names chosen to collide must not make one run long). Takes the insert lock.
    package func longestProbe() -> Int {
        insertLock.withLock { _ in
            let index = currentIndex.load(ordering: .relaxed)
            let mask = Int(index.load(as: UInt64.self))
            var longest = 0
            for slot in 0...mask {
                let value = NameTable.entry(index, slot).load(ordering: .relaxed)
                guard value != 0 else { continue }
                let id = UInt32(truncatingIfNeeded: value) &- 1
                let home = Int(truncatingIfNeeded: NameTable.indexHash(nameBytes(id))) & mask
                longest = max(longest, (slot - home) & mask)
            }
            return longest
        }
    }

    /// The id of `bytes`, interning it when new. Throws when the name is invalid or the table full.
    func intern(_ bytes: UnsafeRawBufferPointer) throws(InvalidNameError) -> UInt32 {
        let hash = NameTable.indexHash(bytes)
        if let id = lookup(bytes, hash: hash) { return id }
        try validateName(bytes, kind: kind)
        let result: Result<UInt32, InvalidNameError> = insertLock.withLock { _ in
            if let id = lookup(bytes, hash: hash) { return .success(id) }
            let count = publishedCount.load(ordering: .relaxed)
            guard count < idsMax else { return .failure(InvalidNameError(kind: kind, problem: .tableFull)) }
            var placementNumber = UInt32(count)
            if placementPages != nil {
                // The placement hash is the public one (clients compute it), not the index's.
                guard let assigned = SKUPlacementMap.assign(nameHash: hashBytes(bytes), shardBits: placement.shardBits,
                                                            localCounts: &placementLocalCounts)
                else { return .failure(InvalidNameError(kind: kind, problem: .tableFull)) }
                placementNumber = assigned
            }
            return .success(insertLocked(bytes, hash: hash, id: UInt32(count), placement: placementNumber))
        }
        return try result.get()
    }

    /// The placement number of `id` (`SKUPlacementMap`): `local << shardBits | shard`, the id itself
    /// under `.skuID`. `id` must be below `count`, or `SKUID.unknown` (answered with itself: a local
    /// number no shard has). Lock-free: two loads under `.nameHash`.
    @inline(__always) func placementNumber(_ id: UInt32) -> UInt32 {
        guard let placementPages, let page = placementPages[Int(id) / NameTable.pageEntries] else { return id }
        assert(Int(id) < count, "name id \(id) was never interned")
        return page[Int(id) % NameTable.pageEntries]
    }

    /// Calls `body` with the bytes of name `id`. `id` must be below `count`.
    func withName<R>(_ id: UInt32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(Int(id) < count, "name id \(id) was never interned")
        return try body(nameBytes(id))
    }

    /// The name of `id` as a string.
    func name(_ id: UInt32) -> String {
        withName(id) { String(decoding: $0, as: UTF8.self) }
    }

    /// Bytes used by this table: chunks, directory pages, live index (for memory accounting).
    var bytesUsed: Int {
        insertLock.withLock { _ in
            let index = currentIndex.load(ordering: .relaxed)
            let indexBytes = (Int(index.load(as: UInt64.self)) + 2) * 8
            let pageCount = (publishedCount.load(ordering: .relaxed) + NameTable.pageEntries - 1) / NameTable.pageEntries
            let placementBytes = placementPages == nil ? 0 : pageCount * NameTable.pageEntries * 4
            return chunkCount * NameTable.chunkBytes + pageCount * NameTable.pageEntries * 8 + indexBytes + placementBytes
        }
    }

    // MARK: - Internals

    private static func allocateIndex(capacity: Int) -> UnsafeMutableRawPointer {
        precondition(capacity.nonzeroBitCount == 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: (capacity + 1) * 8, alignment: 64)
        raw.initializeMemory(as: UInt64.self, repeating: 0, count: capacity + 1)
        raw.storeBytes(of: UInt64(capacity - 1), as: UInt64.self)
        return raw
    }

    @inline(__always)
    private static func entry(_ index: UnsafeMutableRawPointer, _ slot: Int) -> Entry {
        Entry(at: (index + 8 * (slot + 1)).assumingMemoryBound(to: Entry.Storage.self))
    }

    private func lookup(_ bytes: UnsafeRawBufferPointer, hash: UInt64) -> UInt32? {
        let index = currentIndex.load(ordering: .acquiring)
        let mask = Int(index.load(as: UInt64.self))
        let tag = hash >> 32
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let value = NameTable.entry(index, slot).load(ordering: .acquiring)
            if value == 0 { return nil }
            if value >> 32 == tag {
                let id = UInt32(truncatingIfNeeded: value) &- 1
                let stored = nameBytes(id)
                if stored.count == bytes.count && memcmp(stored.baseAddress!, bytes.baseAddress!, bytes.count) == 0 {
                    return id
                }
            }
            slot = (slot + 1) & mask
        }
    }

    private func nameBytes(_ id: UInt32) -> UnsafeRawBufferPointer {
        let page = pages[Int(id) / NameTable.pageEntries]!
        let location = page[Int(id) % NameTable.pageEntries]
        let chunk = chunks[Int(location >> 32)]!
        let start = chunk + Int(location & 0xFFFF_FFFF)
        let length = Int(start.load(as: UInt8.self))
        return UnsafeRawBufferPointer(start: start + 1, count: length)
    }

    /// Appends the name, its directory entry and its index entry; publishes the id. Lock held.
    private func insertLocked(_ bytes: UnsafeRawBufferPointer, hash: UInt64, id: UInt32, placement: UInt32) -> UInt32 {
        assert(bytes.count <= 255)
        if chunkUsedBytes + bytes.count + 1 > NameTable.chunkBytes {
            precondition(chunkCount < NameTable.chunksMax, "name chunks exhausted")
            chunks[chunkCount] = .allocate(byteCount: NameTable.chunkBytes, alignment: 8)
            chunkCount += 1
            chunkUsedBytes = 0
        }
        let chunk = chunks[chunkCount - 1]!
        let offset = chunkUsedBytes
        chunk.storeBytes(of: UInt8(bytes.count), toByteOffset: offset, as: UInt8.self)
        (chunk + offset + 1).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        chunkUsedBytes += bytes.count + 1

        let pageNumber = Int(id) / NameTable.pageEntries
        if pages[pageNumber] == nil {
            let page = UnsafeMutablePointer<UInt64>.allocate(capacity: NameTable.pageEntries)
            page.initialize(repeating: 0, count: NameTable.pageEntries)
            pages[pageNumber] = page
        }
        pages[pageNumber]![Int(id) % NameTable.pageEntries] = UInt64(chunkCount - 1) << 32 | UInt64(offset)
        if let placementPages {
            if placementPages[pageNumber] == nil {
                let page = UnsafeMutablePointer<UInt32>.allocate(capacity: NameTable.pageEntries)
                page.initialize(repeating: 0, count: NameTable.pageEntries)
                placementPages[pageNumber] = page
            }
            placementPages[pageNumber]![Int(id) % NameTable.pageEntries] = placement
        }

        var index = currentIndex.load(ordering: .relaxed)
        let capacity = Int(index.load(as: UInt64.self)) + 1
        if (Int(id) + 1) * 4 > capacity * 3 {
            index = grownIndex(capacity: capacity * 2, ids: Int(id))
            retiredIndexes.append(currentIndex.load(ordering: .relaxed))
            currentIndex.store(index, ordering: .releasing)
        }
        NameTable.place(hash: hash, id: id, in: index)
        publishedCount.store(Int(id) + 1, ordering: .releasing)
        return id
    }

    /// A new index holding ids 0..<ids, not yet published.
    private func grownIndex(capacity: Int, ids: Int) -> UnsafeMutableRawPointer {
        let index = NameTable.allocateIndex(capacity: capacity)
        for id in 0..<ids {
            NameTable.place(hash: NameTable.indexHash(nameBytes(UInt32(id))), id: UInt32(id), in: index)
        }
        return index
    }

    private static func place(hash: UInt64, id: UInt32, in index: UnsafeMutableRawPointer) {
        let mask = Int(index.load(as: UInt64.self))
        var slot = Int(truncatingIfNeeded: hash) & mask
        while entry(index, slot).load(ordering: .relaxed) != 0 { slot = (slot + 1) & mask }
        entry(index, slot).store((hash >> 32) << 32 | UInt64(id + 1), ordering: .releasing)
    }
}

extension Int {
    /// The smallest power of two >= self (self > 0).
    var nextPowerOfTwo: Int {
        precondition(self > 0)
        return 1 << (Int.bitWidth - (self - 1).leadingZeroBitCount)
    }
}
