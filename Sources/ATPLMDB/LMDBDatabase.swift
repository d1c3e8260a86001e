import CLMDB

/// A named database of an environment (an `MDB_dbi` handle), valid while the environment is open
/// once the transaction that opened it committed.
public struct LMDBDatabase: Sendable, Hashable {
    let handle: MDB_dbi
    /// The database's name.
    public let name: String
}

/// Flags for `LMDBTransaction.put`.
public struct LMDBPutFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Fail with `isKeyExists` when the key is present.
    public static let noOverwrite = LMDBPutFlags(rawValue: UInt32(MDB_NOOVERWRITE))
    /// The key is larger than every key in the database: append without a search (bulk loads in
    /// key order). A smaller key fails with `isKeyExists`.
    public static let append = LMDBPutFlags(rawValue: UInt32(MDB_APPEND))
}
