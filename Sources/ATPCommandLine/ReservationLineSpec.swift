import ATPLedger
import ATPProtocol

/// A reservation line as written on the command line: `SKU@TARGET=QTY`.
///
/// TARGET is a location (`DC-1` or `location:DC-1`), a channel whose locations may share the line
/// (`channel:web`, wire target 2), or a channel that must fill the line from one location
/// (`channel-nosplit:web`, wire target 3). The SKU is everything before the first `@`, the
/// quantity everything after the last `=`.
enum ReservationLineSpec {
    /// The wire line, or a message saying what is wrong with `text`.
    static func parse(_ text: String) -> Result<WireReservationLine, LineError> {
        guard let at = text.firstIndex(of: "@"), let equals = text.lastIndex(of: "="), at < equals else {
            return .failure(LineError(message: "\(text.debugDescription) is not SKU@LOCATION=QTY, SKU@channel:NAME=QTY or SKU@channel-nosplit:NAME=QTY"))
        }
        let sku = String(text[..<at])
        let place = String(text[text.index(after: at)..<equals])
        let quantityText = String(text[text.index(after: equals)...])
        guard let quantity = Int64(quantityText), quantity >= 1 else {
            return .failure(LineError(message: "\(text.debugDescription): the quantity \(quantityText.debugDescription) must be a whole number of at least 1"))
        }
        if let problem = NameRules.problem(sku, kind: .sku) {
            return .failure(LineError(message: "\(text.debugDescription): \(problem)"))
        }
        let target: WireReservationLine.Target
        let kind: NameKind
        if let name = place.dropPrefix("channel:") {
            target = .channel(name, allowSplit: true)
            kind = .channel
        } else if let name = place.dropPrefix("channel-nosplit:") {
            target = .channel(name, allowSplit: false)
            kind = .channel
        } else {
            target = .location(place.dropPrefix("location:") ?? place)
            kind = .location
        }
        let name = switch target {
        case .location(let name), .channel(let name, _): name
        }
        if let problem = NameRules.problem(name, kind: kind) {
            return .failure(LineError(message: "\(text.debugDescription): \(problem)"))
        }
        return .success(WireReservationLine(sku: sku, target: target, quantity: quantity))
    }

    /// How a line's target reads in tables: "DC-1", "channel web", "channel web (one location)".
    static func describe(_ target: WireReservationLine.Target) -> String {
        switch target {
        case .location(let name): name
        case .channel(let name, let allowSplit): allowSplit ? "channel \(name)" : "channel \(name) (one location)"
        }
    }
}

extension String {
    /// The rest of the string after `prefix`, or nil when it does not start with it.
    func dropPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
