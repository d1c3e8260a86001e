import Synchronization

/// Where each reservation's record lives: reservation id → home shard, for every core of one
/// engine (docs/ARCHITECTURE.md, "Reservations").
///
/// A new reservation's home is the shard of its first line's SKU, so that a reservation whose
/// lines all live on one shard (every one-line reservation: the flash-sale case) is decided where
/// its stock is, in one step with one journal record. An id alone does not tell that shard, so:
///
/// - a reserve claims its id here before it is decided (`claim`): an id names one reservation
///   engine-wide even when two requests with the same id name different first SKUs (the second is
///   sent to the first's home, which answers it as a retry);
/// - commit and release look the home up here (`home(of:)`);
/// - every record of every home shard is here (`Shard.insertRecord` adds it, removing the record
///   removes it), so replay and restore rebuild the directory as they rebuild the records.
///
/// The one reservation structure shared by the cores, hence locked: 64 stripes, each a mutex
/// around a `FingerprintTable`, held for one probe run (no I/O; an allocation only when a stripe
/// grows). Keys are 112-bit fingerprints of the id: 64 bits of SipHash under the process's random
/// hashing key (`Hasher`: a client cannot choose ids that collide or crowd one stripe) and 48 of
/// `hashBytes` under a random per-process seed. Two different live ids share a fingerprint with
/// probability about n² / 2¹¹³; if they ever did, the home's exact check by id would notice and
/// refuse the newer reserve rather than confuse the two (`CoreLedger.perform`).
final class ReservationDirectory: Sendable {
    /// A reservation id's fingerprint, normalised for `FingerprintTable`.
    struct Key: Hashable, Sendable {
        var high: UInt64
        var low: UInt64
    }

    private final class Stripe: @unchecked Sendable {
        let lock = Mutex<Void>(())
        /// Touched only under `lock`.
        let table = FingerprintTable()
    }

    private static let stripeBits = 6
    private let stripes: [Stripe]
    private let seed: UInt64

    init() {
        stripes = (0..<(1 << Self.stripeBits)).map { _ in Stripe() }
        seed = UInt64.random(in: .min ... .max)
    }

    /// The fingerprint of `id`.
    @inline(__always) func key(of id: ReservationID) -> Key {
        var hasher = Hasher()
        id.hash(into: &hasher)
        let high = UInt64(truncatingIfNeeded: hasher.finalize())
        let low = id.withBytes { hashBytes($0, seed: seed) }
        let normalized = FingerprintTable.normalized(high: high, low: low)
        return Key(high: normalized.high, low: normalized.low)
    }

    @inline(__always) private func withStripe<R>(_ key: Key, _ body: (FingerprintTable) -> R) -> R {
        let stripe = stripes[Int(truncatingIfNeeded: key.high >> UInt64(64 - Self.stripeBits))]
        return stripe.lock.withLock { _ in body(stripe.table) }
    }

    /// Claims `id` for a new reservation homed at `home`: returns nil when the id was free (it now
    /// maps to `home`), else the home it already maps to (which may be `home` itself).
    func claim(_ id: ReservationID, home: Int) -> Int? {
        precondition(home >= 0 && home <= Int(UInt16.max), "home shard \(home)")
        let key = key(of: id)
        return withStripe(key) { $0.insert(high: key.high, low: key.low, value: UInt16(home)) }.map(Int.init)
    }

    /// Records that `id`'s record lives on `home` (a record inserted: live, replayed or restored).
    /// An id maps to one home: a record of it on another home would be two reservations under one
    /// id, which claims prevent.
    func insert(_ id: ReservationID, home: Int) {
        precondition(home >= 0 && home <= Int(UInt16.max), "home shard \(home)")
        let key = key(of: id)
        let existing = withStripe(key) { $0.insert(high: key.high, low: key.low, value: UInt16(home)) }
        precondition(existing == nil || Int(existing!) == home,
                     "reservation \(id) has a record on shard \(home) and another home \(existing!)")
    }

    /// Removes `id` when it maps to `home` (its record was forgotten, or its reserve was given up
    /// before any record was made); an id mapped elsewhere is left alone.
    func remove(_ id: ReservationID, home: Int) {
        let key = key(of: id)
        withStripe(key) { $0.remove(high: key.high, low: key.low, value: UInt16(truncatingIfNeeded: home)) }
    }

    /// The home shard `id` maps to, if any.
    func home(of id: ReservationID) -> Int? {
        let key = key(of: id)
        return withStripe(key) { $0.value(high: key.high, low: key.low) }.map(Int.init)
    }

    /// Ids in the directory (a full pass over the stripes: statistics and checks).
    var count: Int { stripes.reduce(0) { total, stripe in total + stripe.lock.withLock { _ in stripe.table.count } } }
}

/// The rule that places a new reservation's record (its home shard).
enum ReservationHome {
    /// The shard of the first line's SKU, or the id's hashed shard when the first SKU is unknown
    /// (or there is no line). Fixed by the request alone, so replay recomputes it.
    @inline(__always) static func shard(of request: ReserveRequest, catalog: Catalog, shardCount: Int) -> Int {
        shard(of: request, shardCount: shardCount) { catalog.shardIndex(of: $0) }
    }

    /// `shard(of:catalog:shardCount:)` with SKUs placed by `shardOfSKU` (an image, which has
    /// placements but no catalog yet).
    @inline(__always) static func shard(of request: ReserveRequest, shardCount: Int,
                                        shardOfSKU: (SKUID) -> Int) -> Int {
        if let first = request.lines.first, first.sku != .unknown { return shardOfSKU(first.sku) }
        return hashedShard(of: request.id, shardCount: shardCount)
    }

    /// The shard `id` hashes to: the home of every reservation made before homes followed first
    /// lines (data directories of older builds keep theirs), and of reserves naming no known SKU first.
    @inline(__always) static func hashedShard(of id: ReservationID, shardCount: Int) -> Int {
        Int(truncatingIfNeeded: id.stableHash) & (shardCount - 1)
    }

    /// Whether `shard` may be the home of `request`'s record: where the rule puts it now, or where
    /// older builds put it (replay checks every decision record against this).
    static func isValid(_ shard: Int, for request: ReserveRequest, catalog: Catalog, shardCount: Int) -> Bool {
        isValid(shard, for: request, shardCount: shardCount) { catalog.shardIndex(of: $0) }
    }

    /// `isValid(_:for:catalog:shardCount:)` with SKUs placed by `shardOfSKU`.
    static func isValid(_ shard: Int, for request: ReserveRequest, shardCount: Int,
                        shardOfSKU: (SKUID) -> Int) -> Bool {
        shard == self.shard(of: request, shardCount: shardCount, shardOfSKU: shardOfSKU)
            || shard == hashedShard(of: request.id, shardCount: shardCount)
    }
}
