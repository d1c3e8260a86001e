import Foundation
import NIOCore

/// The clocks the harness reads: a monotonic one for latencies and buckets, the wall clock for tags.
enum MonotonicClock {
    /// Nanoseconds on the monotonic clock (NIO's uptime clock, the one its timers use).
    @inline(__always) static func nanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Milliseconds since 1970 on the wall clock.
    static func wallMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
