import ATPLedger
import ATPProtocol

/// The names one run uses: its hot SKUs, the location on sale, the event source and the reservation
/// id prefix, all derived from the run tag so that runs never share stock or deduplication state.
public struct FlashSaleCatalog: Sendable, Equatable {
    /// The hot SKUs, `FS-<tag>-00001` and up.
    public let skus: [String]
    /// Where the stock on sale sits.
    public let location: String
    /// Where background receipts go.
    public let backgroundLocation: String
    /// The event source of this run's receipts (fresh per run, so deduplication never drops them).
    public let source: String
    /// The run tag.
    public let runTag: String

    /// The names of `configuration`'s run.
    public init(_ configuration: FlashSaleConfiguration) {
        runTag = configuration.runTag
        skus = (1...configuration.skuCount).map { index in
            let digits = String(index)
            return "FS-\(configuration.runTag)-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
        }
        location = configuration.location
        backgroundLocation = configuration.backgroundLocation
        source = "flash-sale-\(configuration.runTag)"
    }

    /// The id of buyer `number` of connection `connection`: `<tag>-<connection>-<number>`, at most
    /// 24 + 1 + 5 + 1 + 20 = 51 bytes, so always a valid reservation id.
    func reservationID(connection: Int, number: UInt64) -> ReservationID? {
        try? ReservationID("\(runTag)-\(connection)-\(number)")
    }

    /// A single-cell query per hot SKU at the sale location, in SKU order.
    func cellQueries() -> [WireQuery] { skus.map { .cell(sku: $0, location: location) } }
}
