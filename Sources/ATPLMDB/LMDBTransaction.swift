import CLMDB

/// One LMDB transaction, handed to the body of `LMDBEnvironment.read` / `write` and ended when the
/// body returns. Bytes it hands out (`withValue`, `forEach`) point into LMDB's map and are valid only
/// inside the callback that receives them: copy them out to keep them.
///
/// Safety argument: `handle` is the `MDB_txn*` from `mdb_txn_begin`. It is freed only by `commit()`
/// or `abort()`, called once by the environment after the body returns; both set `isFinished`, and
/// every operation checks it first, so a transaction that escaped its body traps instead of touching
/// freed memory. Keys and values passed in are borrowed only for the duration of the C call (LMDB
/// copies them into its pages); pointers handed out are LMDB's and are scoped to a callback. The type
/// is not `Sendable`: a transaction stays on its thread.
public final class LMDBTransaction {
    private let handle: OpaquePointer
    private var isFinished = false
    /// Whether this is a read-only transaction.
    public let isReadOnly: Bool

    init(handle: OpaquePointer, isReadOnly: Bool) {
        self.handle = handle
        self.isReadOnly = isReadOnly
    }

    deinit {
        if !isFinished { mdb_txn_abort(handle) }
    }

    func commit() throws(LMDBError) {
        precondition(!isFinished)
        isFinished = true
        try check(mdb_txn_commit(handle), "mdb_txn_commit")
    }

    func abort() {
        guard !isFinished else { return }
        isFinished = true
        mdb_txn_abort(handle)
    }

    private var live: OpaquePointer {
        precondition(!isFinished, "use of a finished LMDB transaction")
        return handle
    }

    // MARK: - Databases

    /// Opens the named database, creating it when `create` is true (write transactions only).
    /// Answers nil when it does not exist and `create` is false. Throws `LMDBError`.
    public func openDatabase(_ name: String, create: Bool = false) throws(LMDBError) -> LMDBDatabase? {
        var dbi: MDB_dbi = 0
        let code = mdb_dbi_open(live, name, create ? UInt32(MDB_CREATE) : 0, &dbi)
        if code == MDB_NOTFOUND { return nil }
        try check(code, "mdb_dbi_open(\(name))")
        return LMDBDatabase(handle: dbi, name: name)
    }

    /// Number of entries in `database` (`mdb_stat`).
    public func entryCount(in database: LMDBDatabase) throws(LMDBError) -> Int {
        var stat = MDB_stat()
        try check(mdb_stat(live, database.handle, &stat), "mdb_stat(\(database.name))")
        return stat.ms_entries
    }

    // MARK: - Writing

    /// Stores `value` under `key`. Throws `LMDBError`: `isMapFull` when the map is full (the whole
    /// transaction is then void: let it abort, grow the map, redo it), `isKeyExists` for
    /// `noOverwrite` / `append` conflicts.
    public func put(_ value: UnsafeRawBufferPointer, forKey key: UnsafeRawBufferPointer, in database: LMDBDatabase,
                    flags: LMDBPutFlags = []) throws(LMDBError) {
        precondition(!isReadOnly, "put in a read-only transaction")
        precondition(!key.isEmpty, "LMDB keys are 1...511 bytes")
        var keyVal = MDB_val(mv_size: key.count, mv_data: UnsafeMutableRawPointer(mutating: key.baseAddress))
        var dataVal = MDB_val(mv_size: value.count, mv_data: UnsafeMutableRawPointer(mutating: value.baseAddress))
        try check(mdb_put(live, database.handle, &keyVal, &dataVal, flags.rawValue), "mdb_put(\(database.name))")
    }

    /// `put` for byte arrays.
    public func put(_ value: [UInt8], forKey key: [UInt8], in database: LMDBDatabase,
                    flags: LMDBPutFlags = []) throws(LMDBError) {
        let result: Result<Void, LMDBError> = value.withUnsafeBytes { valueBytes in
            key.withUnsafeBytes { keyBytes in
                do throws(LMDBError) {
                    try put(valueBytes, forKey: keyBytes, in: database, flags: flags)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
        }
        try result.get()
    }

    /// Removes `key`; answers false when it was absent. Throws `LMDBError`.
    @discardableResult
    public func delete(key: [UInt8], in database: LMDBDatabase) throws(LMDBError) -> Bool {
        precondition(!isReadOnly, "delete in a read-only transaction")
        let code: Int32 = key.withUnsafeBytes { keyBytes in
            var keyVal = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            return mdb_del(live, database.handle, &keyVal, nil)
        }
        if code == MDB_NOTFOUND { return false }
        try check(code, "mdb_del(\(database.name))")
        return true
    }

    // MARK: - Reading

    /// Calls `body` with the value stored under `key` (valid only inside `body`); nil when absent.
    /// Throws `LMDBError` or what `body` throws.
    public func withValue<R>(forKey key: [UInt8], in database: LMDBDatabase,
                             _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R? {
        var dataVal = MDB_val()
        let code: Int32 = key.withUnsafeBytes { keyBytes in
            var keyVal = MDB_val(mv_size: keyBytes.count, mv_data: UnsafeMutableRawPointer(mutating: keyBytes.baseAddress))
            return mdb_get(live, database.handle, &keyVal, &dataVal)
        }
        if code == MDB_NOTFOUND { return nil }
        try check(code, "mdb_get(\(database.name))")
        return try body(UnsafeRawBufferPointer(start: dataVal.mv_data, count: dataVal.mv_size))
    }

    /// The value stored under `key`, copied out; nil when absent. Throws `LMDBError`.
    public func value(forKey key: [UInt8], in database: LMDBDatabase) throws -> [UInt8]? {
        try withValue(forKey: key, in: database) { Array($0) }
    }

    /// Calls `body` with every (key, value) of `database` in key order (bytes valid only during the
    /// call); `body` returns false to stop early. Cost: one cursor walk. Throws `LMDBError` (a
    /// damaged page: `isCorrupt`) or what `body` throws.
    public func forEach(in database: LMDBDatabase,
                        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
        var cursor: OpaquePointer?
        try check(mdb_cursor_open(live, database.handle, &cursor), "mdb_cursor_open(\(database.name))")
        defer { mdb_cursor_close(cursor) }
        var keyVal = MDB_val()
        var dataVal = MDB_val()
        var operation = MDB_FIRST
        while true {
            let code = mdb_cursor_get(cursor, &keyVal, &dataVal, operation)
            if code == MDB_NOTFOUND { return }
            try check(code, "mdb_cursor_get(\(database.name))")
            operation = MDB_NEXT
            let key = UnsafeRawBufferPointer(start: keyVal.mv_data, count: keyVal.mv_size)
            let value = UnsafeRawBufferPointer(start: dataVal.mv_data, count: dataVal.mv_size)
            guard try body(key, value) else { return }
        }
    }
}
