#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
// The monotonic clock lives in ATPThreads (the journal uses it too); ledger clients get it from here.
@_exported import func ATPThreads.monotonicMilliseconds
@_exported import func ATPThreads.monotonicNanoseconds

/// Number of online CPU cores.
public func systemCoreCount() -> Int {
    Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// Wall-clock time in milliseconds since 1970.
public func wallClockMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}

