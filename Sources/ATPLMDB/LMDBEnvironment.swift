import CLMDB

/// Flags for `LMDBEnvironment.init` (a subset of `mdb_env_open`'s).
public struct LMDBEnvironmentFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Open read-only: no write transaction may start.
    public static let readOnly = LMDBEnvironmentFlags(rawValue: UInt32(MDB_RDONLY))
    /// Do not fsync after each commit; call `sync(force: true)` before relying on the data.
    public static let noSync = LMDBEnvironmentFlags(rawValue: UInt32(MDB_NOSYNC))
    /// Do not fsync the meta page after each commit.
    public static let noMetaSync = LMDBEnvironmentFlags(rawValue: UInt32(MDB_NOMETASYNC))
    /// No lock file: the caller guarantees no other process writes meanwhile (read-only checks of an
    /// immutable snapshot).
    public static let noLock = LMDBEnvironmentFlags(rawValue: UInt32(MDB_NOLOCK))
    /// Do not ask the OS to read ahead (large random reads).
    public static let noReadAhead = LMDBEnvironmentFlags(rawValue: UInt32(MDB_NORDAHEAD))
    /// Read transactions are not tied to threads.
    public static let noThreadLocalStorage = LMDBEnvironmentFlags(rawValue: UInt32(MDB_NOTLS))
}

/// An LMDB environment: one directory holding `data.mdb` (and `lock.mdb` unless `noLock`).
///
/// Safety argument (the unsafe pointer code of this module is fenced here and in `LMDBTransaction`):
/// `handle` is the `MDB_env*` returned by `mdb_env_create`; it is non-nil from a successful init
/// until `close()`, which sets `isClosed` first and is the only place that frees it, so no call
/// reaches a freed environment (every entry point checks `isClosed`). The type is not `Sendable`:
/// an environment and its transactions stay on the thread that opened them, which is what LMDB
/// requires of write transactions and what `MDB_NOTLS`-free read transactions assume.
public final class LMDBEnvironment {
    private let handle: OpaquePointer
    private var isClosed = false
    /// Whether a transaction is open (LMDB forbids resizing the map meanwhile).
    private(set) var hasOpenTransaction = false
    /// The directory (or file, with MDB_NOSUBDIR, never used here) this environment lives in.
    public let path: String

    /// Opens (creating when absent and writable) the environment in directory `path`, which must
    /// exist. `mapSizeBytes` is the most the data file may grow to (grow it later with
    /// `setMapSize`); `databasesMax` caps named databases. Throws `LMDBError` (e.g. `ENOENT` for a
    /// missing directory or, read-only, a missing `data.mdb`; `MDB_INVALID` for a file that is not
    /// LMDB).
    public init(path: String, mapSizeBytes: Int, databasesMax: Int, flags: LMDBEnvironmentFlags = [],
                permissions: UInt32 = 0o644) throws(LMDBError) {
        precondition(mapSizeBytes > 0 && databasesMax >= 0)
        var created: OpaquePointer?
        try check(mdb_env_create(&created), "mdb_env_create")
        guard let created else { throw LMDBError(code: MDB_PANIC, operation: "mdb_env_create") }
        do throws(LMDBError) {
            try check(mdb_env_set_maxdbs(created, MDB_dbi(databasesMax)), "mdb_env_set_maxdbs")
            try check(mdb_env_set_mapsize(created, mapSizeBytes), "mdb_env_set_mapsize")
            try check(mdb_env_open(created, path, flags.rawValue, mdb_mode_t(permissions)), "mdb_env_open(\(path))")
        } catch {
            mdb_env_close(created)
            throw error
        }
        handle = created
        self.path = path
    }

    deinit { close() }

    /// Closes the environment; idempotent. Every transaction must be finished.
    public func close() {
        guard !isClosed else { return }
        precondition(!hasOpenTransaction, "closing an LMDB environment with a transaction open")
        isClosed = true
        mdb_env_close(handle)
    }

    /// Flushes the data to disk (`mdb_env_sync`); `force` syncs even with `noSync`. Throws on I/O
    /// errors (`ENOSPC`, `EIO`).
    public func sync(force: Bool = true) throws(LMDBError) {
        try check(mdb_env_sync(liveHandle, force ? 1 : 0), "mdb_env_sync")
    }

    /// Sets a new map size. No transaction may be open in this process. Throws `LMDBError`.
    public func setMapSize(_ bytes: Int) throws(LMDBError) {
        precondition(!hasOpenTransaction, "the LMDB map cannot be resized while a transaction is open")
        try check(mdb_env_set_mapsize(liveHandle, bytes), "mdb_env_set_mapsize")
    }

    /// The current map size, the last page in use and the page size (`mdb_env_info`, `mdb_env_stat`).
    public func info() throws(LMDBError) -> LMDBEnvironmentInfo {
        var info = MDB_envinfo()
        try check(mdb_env_info(liveHandle, &info), "mdb_env_info")
        var stat = MDB_stat()
        try check(mdb_env_stat(liveHandle, &stat), "mdb_env_stat")
        return LMDBEnvironmentInfo(mapSizeBytes: info.me_mapsize, lastPageNumber: Int(info.me_last_pgno),
                                   pageSizeBytes: Int(stat.ms_psize))
    }

    /// Runs `body` in a read-only transaction and ends it. Values read are valid only inside `body`.
    /// Throws `LMDBError` or what `body` throws.
    public func read<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        try run(readOnly: true, body)
    }

    /// Runs `body` in a write transaction: committed when `body` returns, aborted when it throws.
    /// Throws `LMDBError` (`isMapFull` when the map is too small: grow it and redo the work) or what
    /// `body` throws.
    public func write<R>(_ body: (LMDBTransaction) throws -> R) throws -> R {
        try run(readOnly: false, body)
    }

    private func run<R>(readOnly: Bool, _ body: (LMDBTransaction) throws -> R) throws -> R {
        precondition(!hasOpenTransaction, "one transaction at a time per environment (no nesting)")
        var raw: OpaquePointer?
        try check(mdb_txn_begin(liveHandle, nil, readOnly ? UInt32(MDB_RDONLY) : 0, &raw), "mdb_txn_begin")
        guard let raw else { throw LMDBError(code: MDB_PANIC, operation: "mdb_txn_begin") }
        hasOpenTransaction = true
        defer { hasOpenTransaction = false }
        let transaction = LMDBTransaction(handle: raw, isReadOnly: readOnly)
        let result: R
        do {
            result = try body(transaction)
        } catch {
            transaction.abort()
            throw error
        }
        try transaction.commit()
        return result
    }

    private var liveHandle: OpaquePointer {
        precondition(!isClosed, "use of a closed LMDB environment")
        return handle
    }
}

/// Sizes of an environment.
public struct LMDBEnvironmentInfo: Sendable, Equatable {
    /// The map size in force, in bytes.
    public var mapSizeBytes: Int
    /// The last page number in use (the data file must hold at least `(lastPageNumber + 1) * pageSizeBytes`).
    public var lastPageNumber: Int
    /// The page size, in bytes.
    public var pageSizeBytes: Int
}
