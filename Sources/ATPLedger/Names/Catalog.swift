/// The engine's name tables: SKUs, locations, channels and sources, each interned to dense ids.
///
/// Lookups are lock-free and safe from any thread (the wire decoder calls them on I/O threads);
/// interning a new name takes a short lock once per name. Names are never removed.
public final class Catalog: Sendable {
    let skus: NameTable
    let locations: NameTable
    let channels: NameTable
    let sources: NameTable

    /// Where SKUs live: every SKU's placement number is fixed when its name is interned.
    public let placement: SKUPlacement

    /// Empty tables. `idsMax` caps every table (tests use a small cap to reach `tableFull`);
    /// `placement` must be the engine's (`LedgerConfiguration.placement`).
    public init(idsMax: Int = Int(UInt32.max) - 1,
                placement: SKUPlacement = LedgerConfiguration().placement) {
        self.placement = placement
        skus = NameTable(kind: .sku, initialCapacity: 1 << 16, idsMax: idsMax, placement: placement)
        locations = NameTable(kind: .location, idsMax: idsMax)
        channels = NameTable(kind: .channel, idsMax: idsMax)
        sources = NameTable(kind: .source, idsMax: idsMax)
    }

    func table(_ kind: NameKind) -> NameTable {
        switch kind {
        case .sku: skus
        case .location: locations
        case .channel: channels
        case .source, .reservation: sources
        }
    }

    // MARK: Bytes (the decoder's path, no allocation)

    /// The id of a name given as bytes, interning it when new. Throws `InvalidNameError` when the
    /// name is empty, too long, not UTF-8, or the table is full.
    public func intern(_ bytes: UnsafeRawBufferPointer, kind: NameKind) throws(InvalidNameError) -> UInt32 {
        precondition(kind != .reservation, "reservation ids are not interned")
        return try table(kind).intern(bytes)
    }

    /// The id of a name given as bytes, or nil when never interned. Lock-free.
    public func lookup(_ bytes: UnsafeRawBufferPointer, kind: NameKind) -> UInt32? {
        precondition(kind != .reservation, "reservation ids are not interned")
        return table(kind).lookup(bytes)
    }

    // MARK: Strings (tools, tests, configuration)

    /// Interns a SKU name.
    public func sku(_ name: String) throws(InvalidNameError) -> SKUID { SKUID(try internString(name, .sku)) }
    /// Interns a location name.
    public func location(_ name: String) throws(InvalidNameError) -> LocationID {
        LocationID(try internString(name, .location))
    }
    /// Interns a channel name (1..32 bytes).
    public func channel(_ name: String) throws(InvalidNameError) -> ChannelID {
        ChannelID(try internString(name, .channel))
    }
    /// Interns a source name.
    public func source(_ name: String) throws(InvalidNameError) -> SourceID {
        SourceID(try internString(name, .source))
    }

    /// The id of an existing SKU name, or nil.
    public func existingSKU(_ name: String) -> SKUID? { lookupString(name, .sku).map { SKUID($0) } }
    /// The id of an existing location name, or nil.
    public func existingLocation(_ name: String) -> LocationID? {
        lookupString(name, .location).map { LocationID($0) }
    }
    /// The id of an existing channel name, or nil.
    public func existingChannel(_ name: String) -> ChannelID? { lookupString(name, .channel).map { ChannelID($0) } }
    /// The id of an existing source name, or nil.
    public func existingSource(_ name: String) -> SourceID? { lookupString(name, .source).map { SourceID($0) } }

    /// The name of a SKU id.
    public func name(of id: SKUID) -> String { skus.name(id.rawValue) }
    /// The name of a location id.
    public func name(of id: LocationID) -> String { locations.name(id.rawValue) }
    /// The name of a channel id.
    public func name(of id: ChannelID) -> String { channels.name(id.rawValue) }
    /// The name of a source id.
    public func name(of id: SourceID) -> String { sources.name(id.rawValue) }

    /// Calls `body` with the bytes of a name (no allocation; used by encoders).
    public func withName<R>(_ kind: NameKind, id: UInt32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try table(kind).withName(id, body)
    }

    /// The placement number of a SKU (`local << shardBits | shard`; the id under `.skuID`). Lock-free.
    @inline(__always) public func placementNumber(of sku: SKUID) -> UInt32 { skus.placementNumber(sku.rawValue) }

    /// The shard of a SKU. Lock-free.
    @inline(__always) public func shardIndex(of sku: SKUID) -> Int {
        Int(skus.placementNumber(sku.rawValue)) & (placement.shardCount - 1)
    }

    /// The longest probe run of the `kind` table's index (tests of hash flooding).
    package func longestProbe(_ kind: NameKind) -> Int { table(kind).longestProbe() }

    /// How many names of `kind` exist.
    public func count(_ kind: NameKind) -> Int { table(kind).count }

    /// Bytes held by all name tables.
    public var bytesUsed: Int { skus.bytesUsed + locations.bytesUsed + channels.bytesUsed + sources.bytesUsed }

    private func internString(_ name: String, _ kind: NameKind) throws(InvalidNameError) -> UInt32 {
        var copy = name
        let result: Result<UInt32, InvalidNameError> = copy.withUTF8 { utf8 in
            do throws(InvalidNameError) {
                return .success(try table(kind).intern(UnsafeRawBufferPointer(utf8)))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func lookupString(_ name: String, _ kind: NameKind) -> UInt32? {
        var copy = name
        return copy.withUTF8 { table(kind).lookup(UnsafeRawBufferPointer($0)) }
    }
}
