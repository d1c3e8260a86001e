import ATPLedger
import ATPProtocol

/// An upper bound on the bytes of a request's reply, known before the request runs, so that a
/// connection can stop taking requests once the replies it owes could fill its outbound budget
/// (`ServerConfiguration.outboundBytesHighWaterMark`; issue 14 items 1 and 6).
///
/// A query's bound follows the layout of docs/PROTOCOL.md §7.3: 15 bytes of header and options,
/// 17 per answer, and with `includeCells` 4 more per answer plus, per cell, 34 bytes and the
/// location's name (at most 64 bytes): one cell for a cell query, at most every location the
/// catalog knows for a SKU or channel query. Other requests' replies are small and bounded by
/// their request (a reservation reply by its lines; a rejection-log read by its limit); the bound
/// uses each one's largest fields. The bound may be several times the real size (names are shorter
/// than 64 bytes; few SKUs stock everywhere): it only budgets.
enum ReplyEstimate {
    /// Frame header (10) + options (1) + count (4).
    static let queryHeaderBytes = 15
    /// status (1) + sellable (8) + projected (8).
    static let answerBytes = 17
    /// cellCount (4), with `includeCells`.
    static let cellCountBytes = 4
    /// The longest location name (1 + 64) + status (1) + eight `i32` buckets (32).
    static let cellBytesMax = 1 + 64 + 1 + 32
    /// The shortest: a one-byte name.
    static let cellBytesMin = 1 + 1 + 1 + 32
    /// Any other reply whose size its request does not tell: replies to ping, commit and release (a
    /// reservation reply of up to `reservationLinesMax` lines), ingest, channel requests, stats,
    /// snapshot and errors fit this or are rare (stats and channel show answer an administrator).
    static let otherReplyBytes = 4096
    /// A reservation reply's bytes per line beyond `otherReplyBytes`: two names and the numbers.
    static let reservationLineBytes = 2 * 65 + 32

    /// The bound for a request other than a query (a query's is `bytes(of:catalog:)`).
    static func bytes(of request: Request) -> Int {
        switch request {
        case .query:
            preconditionFailure("a query's bound needs the catalog")
        case .reserve(let reserve):
            return otherReplyBytes + reserve.lines.count * reservationLineBytes
        case .rejectionLogRead(let read):
            // Entries of a few names and a message each; the reply stops at frameBytesMax anyway.
            return otherReplyBytes + Int(min(read.limit, 1 << 20)) * 512
        default:
            return otherReplyBytes
        }
    }

    /// The bound for a query: see the type's comment. O(1) without `includeCells`, else one pass
    /// over the item kinds.
    @inline(__always) static func bytes(of query: QueryRequest, catalog: Catalog) -> Int {
        guard query.options.contains(.includeCells) else {
            return queryHeaderBytes + query.count * answerBytes
        }
        return bytes(of: query, locationCount: catalog.count(.location))
    }

    /// The bound for a query with `includeCells` when the catalog knows `locationCount` locations.
    static func bytes(of query: QueryRequest, locationCount: Int) -> Int {
        var cells = 0
        for index in 0..<query.count {
            cells += query.item(at: index).kind == .cell ? 1 : max(locationCount, 0)
        }
        return queryHeaderBytes + query.count * (answerBytes + cellCountBytes) + cells * cellBytesMax
    }
}
