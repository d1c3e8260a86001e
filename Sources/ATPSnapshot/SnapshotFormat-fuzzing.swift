/// The snapshot entry decoders, for the fuzz targets of `ATPFuzzing` (issue 14: fuzzing the
/// snapshot reader). The LMDB file itself is not fuzzed: LMDB trusts its pages (its documentation
/// says a damaged file is undefined behaviour), so what atpd owns is the decoding of each entry.
package enum SnapshotEntryDecoding {
    /// Decodes `key` and `value` as the entry kind `selector` picks (any byte: taken modulo the
    /// kinds), with `version` for the kinds whose layout changed between formats. Throws when the
    /// bytes are malformed; must never crash.
    package static func decode(selector: UInt8, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer,
                                version: UInt32) throws {
        switch selector % 7 {
        case 0: _ = try SnapshotFormat.decodeNameKey(key)
        case 1: _ = try SnapshotFormat.decodeCell(key: key, value: value)
        case 2: _ = try SnapshotFormat.decodeChannel(key: key, value: value)
        case 3: _ = try SnapshotFormat.decodeDedup(key: key, value: value)
        case 4: _ = try SnapshotFormat.decodeHold(key: key, value: value, version: version)
        case 5: _ = try SnapshotFormat.decodeReservation(key: key, value: value, version: version)
        default:
            var reader = ByteReader(value)
            _ = try SnapshotFormat.decodeWorkerGenerations(&reader)
        }
    }
}
