#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CLMDB

/// An LMDB call that failed: the call, the mdb return code and `mdb_strerror`'s text for it.
///
/// LMDB's own codes are negative (`MDB_MAP_FULL` −30792 …); system errors are positive errno
/// values (`ENOENT`, `ENOSPC`, `EACCES` …). "Not found" is never an error here: lookups answer nil.
public struct LMDBError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The mdb (or errno) return code.
    public var code: Int32
    /// `mdb_strerror(code)`.
    public var message: String
    /// The C function that failed, e.g. `mdb_put`.
    public var operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
        message = String(cString: mdb_strerror(code))
    }

    /// The map (the environment's size limit) is full: grow it with `LMDBEnvironment.setMapSize(_:)`
    /// (no transaction may be open) and redo the transaction.
    public var isMapFull: Bool { code == MDB_MAP_FULL }
    /// A key put with `noOverwrite` already exists, or an `append` key is not the largest.
    public var isKeyExists: Bool { code == MDB_KEYEXIST }
    /// The file is not an LMDB file, or a page failed LMDB's structural checks.
    public var isCorrupt: Bool {
        code == MDB_CORRUPTED || code == MDB_INVALID || code == MDB_PAGE_NOTFOUND || code == MDB_VERSION_MISMATCH
            || code == MDB_INCOMPATIBLE
    }
    /// The device is out of space (`ENOSPC`).
    public var isDiskFull: Bool { code == ENOSPC }

    public var description: String { "\(operation) failed: \(message) (code \(code))" }
}

/// The one place return codes become errors: 0 is success, anything else throws.
@inline(__always)
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws(LMDBError) {
    if code != 0 { throw LMDBError(code: code, operation: operation()) }
}
