/// A consistent, immutable copy of an engine's state, taken by `Engine.captureImage(mark:)` (or
/// assembled from a snapshot by `LedgerImageBuilder`) and turned back into an engine by
/// `Engine(restoring:configuration:clock:)`. It holds every cell with all buckets, the name tables
/// (ids preserved), channel definitions, reservation records with their expiry, the holds they have
/// on cells, and the dedup windows. Iterable without the engine; cheap to pass between threads.
///
/// The cut is per worker (core): each one copied its shards between two of its inputs and, at that
/// instant, called `mark` (its journal's position), so each worker's part is exactly its state after
/// its journal up to the mark. Reservations between cores at the cut (a part's tentative holds, a
/// home's record whose parts have not heard of its newest state) are resolved by recovery after the
/// journals are replayed, as after a crash (docs/SNAPSHOT.md, "Reservations at the cut").
public struct LedgerImage: Sendable {
    /// The current layout of reservations and holds. Version 1 images (from before per-core
    /// journal generations) have no hold origins or part cores; restoring one checks every hold
    /// against its record as version 1 did.
    public static let currentVersion = 2

    /// The layout of reservations and holds this image follows (1 or 2).
    public let version: Int
    /// Shards of the engine the image was taken from (restoring requires the same number).
    public let shardCount: Int
    /// How that engine placed SKUs on shards (restoring requires the same scheme).
    public let skuPlacement: SKUPlacementScheme
    /// Every SKU's placement number (from `skuNames`, `skuPlacement` and `shardCount`).
    let skuPlacements: SKUPlacementMap
    /// `dedupWindowSequences` of that engine (restoring requires the same value).
    public let dedupWindowSequences: Int
    /// The value `mark(worker)` returned for each worker, by worker index (journal positions).
    public let workerMarks: [UInt64]
    /// Wall-clock time of the cut, in milliseconds since 1970.
    public let cutWallClockMilliseconds: Int64
    /// The engine clock at the cut, in milliseconds since 1970 (a manual clock in tests).
    public let clockMilliseconds: Int64
    /// SKU names, in id order.
    public let skuNames: NameListImage
    /// Location names, in id order.
    public let locationNames: NameListImage
    /// Channel names, in id order.
    public let channelNames: NameListImage
    /// Event source names, in id order.
    public let sourceNames: NameListImage
    /// Channel definitions, by id.
    public let channels: [ChannelDefinition]
    /// The engine-wide number of the newest channel change in `channels` (0 in version 1 images).
    public let channelChangeSequence: UInt64
    /// Reservation records: held ones and settled outcomes still remembered.
    public let reservations: [ReservationImage]
    /// Units reservations hold on cells, per shard.
    public let holds: [HoldImage]
    /// Dedup windows, one per (shard, source).
    public let dedupWindows: [DedupWindowImage]
    /// Each worker's journal generation at the cut, by worker index (empty in version 1 images).
    public let workerGenerations: [WorkerGenerationImage]
    /// Cells per shard, in the shard's slot order, with their SKU chains.
    let shardCells: [ShardCellsImage]

    init(version: Int = LedgerImage.currentVersion, workerGenerations: [WorkerGenerationImage], channelChangeSequence: UInt64,
         shardCount: Int, skuPlacements: SKUPlacementMap, dedupWindowSequences: Int, workerMarks: [UInt64],
         cutWallClockMilliseconds: Int64,
         clockMilliseconds: Int64, skuNames: NameListImage, locationNames: NameListImage,
         channelNames: NameListImage, sourceNames: NameListImage, channels: [ChannelDefinition],
         reservations: [ReservationImage], holds: [HoldImage], dedupWindows: [DedupWindowImage],
         shardCells: [ShardCellsImage]) {
        precondition(shardCells.count == shardCount)
        precondition(skuPlacements.shardBits == shardCount.trailingZeroBitCount)
        precondition(skuPlacements.scheme == .skuID || skuPlacements.placements.count == skuNames.count)
        precondition(version == 1 || version == 2, "image version \(version)")
        self.version = version
        self.workerGenerations = workerGenerations
        self.channelChangeSequence = channelChangeSequence
        self.shardCount = shardCount
        skuPlacement = skuPlacements.scheme
        self.skuPlacements = skuPlacements
        self.dedupWindowSequences = dedupWindowSequences
        self.workerMarks = workerMarks
        self.cutWallClockMilliseconds = cutWallClockMilliseconds
        self.clockMilliseconds = clockMilliseconds
        self.skuNames = skuNames
        self.locationNames = locationNames
        self.channelNames = channelNames
        self.sourceNames = sourceNames
        self.channels = channels
        self.reservations = reservations
        self.holds = holds
        self.dedupWindows = dedupWindows
        self.shardCells = shardCells
    }

    /// The names of one kind (`.reservation` has none: answers an empty list).
    public func names(_ kind: NameKind) -> NameListImage {
        switch kind {
        case .sku: skuNames
        case .location: locationNames
        case .channel: channelNames
        case .source: sourceNames
        case .reservation: NameListImage()
        }
    }

    /// Number of cells.
    public var cellCount: Int { shardCells.reduce(0) { $0 + $1.cells.count } }

    /// The shard that held `sku`'s cells (a SKU of `skuNames`; any other id, as under placement by id).
    public func shardIndex(of sku: SKUID) -> Int { Int(skuPlacements.placement(of: sku.rawValue)) & (shardCount - 1) }

    /// Calls `body` with every cell in ascending (SKU id, location id) order. Cost: O(SKUs + cells),
    /// one random read per cell (it follows each SKU's chain in its shard).
    public func forEachCell(_ body: (StockCell) throws -> Void) rethrows {
        let shardMask = UInt32(shardCount - 1)
        let shardBits = UInt32(shardCount.trailingZeroBitCount)
        for id in 0..<UInt32(skuNames.count) {
            let placement = skuPlacements.placement(of: id)
            let shard = shardCells[Int(placement & shardMask)]
            let local = Int(placement >> shardBits)
            guard local < shard.firstSlotOfSKU.count else { continue }
            var slot = shard.firstSlotOfSKU[local]
            while slot != StockCell.noSlot {
                let cell = shard.cells[Int(slot)]
                try body(cell)
                slot = cell.nextSlotOfSKU
            }
        }
    }
}

/// One shard's cells as copied from its buffer: `cells` in slot order, each SKU's cells chained
/// through `nextSlotOfSKU` in ascending location order from `firstSlotOfSKU[local]`, the SKU's local
/// number on its shard (`SKUPlacementMap`).
struct ShardCellsImage: Sendable, Equatable {
    var cells: [StockCell]
    var firstSlotOfSKU: [UInt32]
}

/// The names of one kind in id order, packed in one byte array (no allocation per name).
public struct NameListImage: Sendable, Equatable {
    /// UTF-8 bytes of all names, back to back.
    var bytes: [UInt8] = []
    /// End offset in `bytes` of each name, by id.
    var ends: [UInt32] = []

    /// An empty list.
    public init() {}

    /// Number of names (ids are 0..<count).
    public var count: Int { ends.count }

    /// Bytes of all names together.
    public var byteCount: Int { bytes.count }

    /// Appends the name with the next id.
    public mutating func append(_ name: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: name)
        ends.append(UInt32(bytes.count))
    }

    /// Calls `body` with the bytes of name `id` (0..<count).
    public func withName<R>(_ id: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        precondition(id >= 0 && id < ends.count, "name id \(id) out of range 0..<\(ends.count)")
        let start = id == 0 ? 0 : Int(ends[id - 1])
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<Int(ends[id])])) }
    }

    /// Name `id` as a string.
    public func name(_ id: Int) -> String { withName(id) { String(decoding: $0, as: UTF8.self) } }
}

/// A reservation record as the home shard knew it at the cut.
public struct ReservationImage: Sendable, Equatable {
    /// The request as first received (lines, ttl, mode).
    public var request: ReserveRequest
    /// Its settled state (never in flight: see docs/SNAPSHOT.md).
    public var state: ReservationState
    /// What each line got.
    public var lineGrants: [LineGrant]
    /// Expiry of a held reservation, engine clock milliseconds since 1970.
    public var expiresAtMilliseconds: Int64
    /// When it reached its settled state (the retention window starts there); 0 for a held one.
    public var settledAtMilliseconds: Int64
    /// The other workers holding units of it, with the origin of their holds (empty when every
    /// line is on the home's worker, and in version 1 images).
    public var parts: [ReservationPartImage]
    /// Part acknowledgements still awaited before the record may be forgotten.
    public var acknowledgementsAwaited: Int
    /// The shard that keeps the record (its home): nil in images of snapshot formats 1 to 3, whose
    /// records all lived on their id's hashed shard (`ReservationHome.hashedShard`).
    public var homeShard: Int?

    /// The reservation's id.
    public var id: ReservationID { request.id }

    public init(request: ReserveRequest, state: ReservationState, lineGrants: [LineGrant],
                expiresAtMilliseconds: Int64, settledAtMilliseconds: Int64, parts: [ReservationPartImage] = [],
                acknowledgementsAwaited: Int = 0, homeShard: Int? = nil) {
        self.request = request
        self.state = state
        self.lineGrants = lineGrants
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.settledAtMilliseconds = settledAtMilliseconds
        self.parts = parts
        self.acknowledgementsAwaited = acknowledgementsAwaited
        self.homeShard = homeShard
    }
}

/// A worker holding units of a reservation whose home is another worker, and where its holds came
/// from: its journal generation and the LSN of its prepare record.
public struct ReservationPartImage: Sendable, Equatable {
    public var worker: Int
    public var generation: UInt64
    public var prepareLSN: UInt64

    public init(worker: Int, generation: UInt64, prepareLSN: UInt64) {
        self.worker = worker
        self.generation = generation
        self.prepareLSN = prepareLSN
    }
}

/// One worker's journal generation at the cut: the current one, and where each earlier one ended.
public struct WorkerGenerationImage: Sendable, Equatable {
    public var generation: UInt64
    /// (generation, its last LSN), ascending.
    public var ends: [GenerationEnd]

    public init(generation: UInt64, ends: [GenerationEnd]) {
        self.generation = generation
        self.ends = ends
    }

    /// Where an earlier generation ended.
    public struct GenerationEnd: Sendable, Equatable {
        public var generation: UInt64
        public var lastLSN: UInt64
        public init(generation: UInt64, lastLSN: UInt64) {
            self.generation = generation
            self.lastLSN = lastLSN
        }
    }
}

/// Units a reservation holds on the cells of one shard.
public struct HoldImage: Sendable, Equatable {
    /// Units on one cell.
    public struct Line: Sendable, Equatable {
        /// The cell's SKU.
        public var sku: SKUID
        /// The cell's location.
        public var location: LocationID
        /// Units held there, > 0.
        public var units: Int32
        public init(sku: SKUID, location: LocationID, units: Int32) {
            self.sku = sku
            self.location = location
            self.units = units
        }
    }
    /// How far a hold has got: a part's `tentative` holds wait for their home's decision.
    public enum Status: UInt8, Sendable, Equatable {
        case tentative = 0
        case held = 1
        case committed = 2
    }
    /// The shard of the cells.
    public var shard: Int
    /// The reservation holding them.
    public var id: ReservationID
    /// Reserved (tentative or held) or committed units.
    public var status: Status
    /// For a part's hold of a reservation whose home is another worker: the part's journal
    /// generation and prepare LSN (0 and 0 for the home's own holds and in version 1 images).
    public var originGeneration: UInt64
    public var originPrepareLSN: UInt64
    /// The cells and units.
    public var lines: [Line]

    /// Committed units (true) or reserved units (false).
    public var isCommitted: Bool { status == .committed }

    public init(shard: Int, id: ReservationID, status: Status, originGeneration: UInt64 = 0, originPrepareLSN: UInt64 = 0,
                lines: [Line]) {
        self.shard = shard
        self.id = id
        self.status = status
        self.originGeneration = originGeneration
        self.originPrepareLSN = originPrepareLSN
        self.lines = lines
    }

    /// A held (or committed) hold with no origin, as version 1 images have them.
    public init(shard: Int, id: ReservationID, isCommitted: Bool, lines: [Line]) {
        self.init(shard: shard, id: id, status: isCommitted ? .committed : .held, lines: lines)
    }
}

/// One (shard, source) dedup window: the newest sequence applied and the bitmap of the window.
public struct DedupWindowImage: Sendable, Equatable {
    /// The shard whose events the window dedups.
    public var shard: Int
    /// The event source.
    public var source: SourceID
    /// Newest sequence applied (nil before the first).
    public var newest: UInt64?
    /// `dedupWindowSequences / 64` words; bit (s mod size) set when sequence s was applied.
    public var words: [UInt64]

    public init(shard: Int, source: SourceID, newest: UInt64?, words: [UInt64]) {
        self.shard = shard
        self.source = source
        self.newest = newest
        self.words = words
    }
}
