/// One entry of the rejection log: an event that was refused, why, and when.
public struct RejectedEvent: Sendable {
    /// Position in the log; increases by one per rejection since start (for paging read-back).
    public var logSequence: UInt64
    /// When the engine refused it, in milliseconds since 1970.
    public var atMilliseconds: Int64
    /// Why.
    public var reason: RejectionReason
    /// The event as decoded (ids refer to the engine's catalog), or nil when it could not be decoded.
    public var event: StockEvent?
    /// Extra context for events that never reached a shard (for example the invalid name, escaped).
    public var detail: String

    public init(logSequence: UInt64 = 0, atMilliseconds: Int64, reason: RejectionReason, event: StockEvent?,
                detail: String = "") {
        self.logSequence = logSequence
        self.atMilliseconds = atMilliseconds
        self.reason = reason
        self.event = event
        self.detail = detail
    }
}
