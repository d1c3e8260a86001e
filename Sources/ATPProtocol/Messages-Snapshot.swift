import NIOCore

/// The reply to `snapshotNow` (docs/PROTOCOL.md §7.12): the snapshot written.
public struct SnapshotNowReply: Sendable, Equatable {
    /// The new snapshot's id (its directory under `<data>/snapshots`).
    public var snapshotID: UInt64
    /// How long the snapshot took (cut, wait for the journal, LMDB write), in milliseconds.
    public var durationMilliseconds: UInt64
    /// Cells in the snapshot.
    public var cellCount: UInt64
    /// Size of the snapshot's data file, in bytes.
    public var sizeBytes: UInt64

    /// A reply from its fields.
    public init(snapshotID: UInt64, durationMilliseconds: UInt64, cellCount: UInt64, sizeBytes: UInt64) {
        self.snapshotID = snapshotID
        self.durationMilliseconds = durationMilliseconds
        self.cellCount = cellCount
        self.sizeBytes = sizeBytes
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        buffer.writeLE(snapshotID)
        buffer.writeLE(durationMilliseconds)
        buffer.writeLE(cellCount)
        buffer.writeLE(sizeBytes)
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Self {
        SnapshotNowReply(snapshotID: try reader.read(UInt64.self, "snapshotID"),
                         durationMilliseconds: try reader.read(UInt64.self, "durationMilliseconds"),
                         cellCount: try reader.read(UInt64.self, "cellCount"),
                         sizeBytes: try reader.read(UInt64.self, "sizeBytes"))
    }
}
