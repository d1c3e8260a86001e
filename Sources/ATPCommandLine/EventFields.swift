import ATPLedger
import ATPProtocol

/// The fields of an event in an event file: CSV column names and JSON-lines keys (docs/CLI.md).
enum EventField: String, CaseIterable, Sendable {
    case kind, sku, location, quantity, sequence
    case toLocation = "to_location"
    case correlation
    case eventMilliseconds = "event_ms"
    case bucket, outcome
    case reasonCode = "reason_code"
    case countDamaged = "count_damaged"
    case countQuarantine = "count_quarantine"
    case intoQuarantine = "into_quarantine"
    case closesInbound = "closes_inbound"

    /// Fields every event has.
    static let required: [EventField] = [.kind, .sku, .location, .quantity, .sequence]
    /// The columns of a CSV file without a header line, in order; the last three may be left out.
    static let positional: [EventField] = [.kind, .sku, .location, .quantity, .sequence, .toLocation, .correlation,
                                           .eventMilliseconds]

    /// Every field name, comma-separated, for messages.
    static var allNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The field's position in `allCases` (0 ..< 15), to keep a record's values in an array.
    var ordinal: Int {
        switch self {
        case .kind: 0
        case .sku: 1
        case .location: 2
        case .quantity: 3
        case .sequence: 4
        case .toLocation: 5
        case .correlation: 6
        case .eventMilliseconds: 7
        case .bucket: 8
        case .outcome: 9
        case .reasonCode: 10
        case .countDamaged: 11
        case .countQuarantine: 12
        case .intoQuarantine: 13
        case .closesInbound: 14
        }
    }
}

/// One event's fields as read from a file, typed on demand. An absent field (a missing or empty
/// CSV column, a missing or null JSON key) is nil; a present field of the wrong type throws.
protocol EventRecord {
    /// The field as text.
    func string(_ field: EventField) throws(LineError) -> String?
    /// The field as an integer of type `T`; throws when it is not a whole number in `T`'s range.
    func integer<T: FixedWidthInteger>(_ field: EventField, as type: T.Type) throws(LineError) -> T?
    /// The field as a boolean.
    func bool(_ field: EventField) throws(LineError) -> Bool?
}

/// Turns a record into a `WireEvent`, checking what the server would otherwise reject as malformed
/// or could not carry: kind and names, field types, and fields that do not fit the kind. Value
/// ranges (a quantity of 0, a negative count) are the server's to judge: such events are sent and
/// come back as rejections.
enum EventBuilder {
    /// The event, or a `LineError` saying which field is wrong and why.
    static func build(_ record: some EventRecord) throws(LineError) -> WireEvent {
        let kind = try parseKind(try required(record, .kind))
        let sku = try name(required(record, .sku), .sku, field: .sku)
        let location = try name(required(record, .location), .location, field: .location)
        guard let quantity = try record.integer(.quantity, as: Int64.self) else { throw missing(.quantity) }
        guard let sequence = try record.integer(.sequence, as: UInt64.self) else { throw missing(.sequence) }
        let toLocation = try record.string(.toLocation).map { text throws(LineError) in
            try name(text, .location, field: .toLocation)
        }
        let correlation = try record.string(.correlation).map { text throws(LineError) in
            try name(text, .reservation, field: .correlation)
        }
        let countDamaged = try record.integer(.countDamaged, as: Int32.self)
        let countQuarantine = try record.integer(.countQuarantine, as: Int32.self)
        let intoQuarantine = try record.bool(.intoQuarantine) ?? false
        let closesInbound = try record.bool(.closesInbound) ?? false

        if kind == .transferOut && toLocation == nil { throw LineError(message: "transferOut needs to_location") }
        try only(toLocation != nil, .toLocation, for: kind, [.transferOut])
        try only(correlation != nil, .correlation, for: kind, [.ship])
        try only(countDamaged != nil, .countDamaged, for: kind, [.count])
        try only(countQuarantine != nil, .countQuarantine, for: kind, [.count])
        try only(intoQuarantine, .intoQuarantine, for: kind, [.receive])
        try only(closesInbound, .closesInbound, for: kind, [.receive])
        var flags: EventFlags = []
        if intoQuarantine { flags.insert(.intoQuarantine) }
        if closesInbound { flags.insert(.closesInbound) }
        return WireEvent(kind: kind, sku: sku, location: location, quantity: quantity, sequence: sequence,
                         eventMilliseconds: try record.integer(.eventMilliseconds, as: Int64.self) ?? 0,
                         flags: flags, code: try code(record, kind),
                         reasonCode: try record.integer(.reasonCode, as: UInt16.self) ?? 0,
                         toLocation: toLocation, countDamaged: countDamaged, countQuarantine: countQuarantine,
                         correlation: correlation)
    }

    /// The bucket (adjust, writeOff; default onHand) or the outcome (disposition; required).
    private static func code(_ record: some EventRecord, _ kind: StockEventKind) throws(LineError) -> UInt8 {
        let bucketName = try record.string(.bucket)
        let outcomeName = try record.string(.outcome)
        try only(bucketName != nil, .bucket, for: kind, [.adjust, .writeOff])
        try only(outcomeName != nil, .outcome, for: kind, [.disposition])
        if let bucketName {
            guard let bucket = Bucket(name: bucketName) else {
                let names = Bucket.allCases.map(\.description).joined(separator: ", ")
                throw LineError(message: "unknown bucket \(bucketName.debugDescription); expected one of \(names)")
            }
            return bucket.rawValue
        }
        if kind == .disposition {
            guard let outcomeName else { throw LineError(message: "disposition needs outcome (restock, damaged, scrap or vendor)") }
            guard let outcome = DispositionOutcome(name: outcomeName) else {
                throw LineError(message: "unknown outcome \(outcomeName.debugDescription); expected restock, damaged, scrap or vendor")
            }
            return outcome.rawValue
        }
        return 0
    }

    private static func parseKind(_ text: String) throws(LineError) -> StockEventKind {
        guard let kind = StockEventKind(name: text) else {
            let names = StockEventKind.allCases.map(\.description).joined(separator: ", ")
            throw LineError(message: "unknown kind \(text.debugDescription); expected one of \(names) (or sale)")
        }
        return kind
    }

    private static func required(_ record: some EventRecord, _ field: EventField) throws(LineError) -> String {
        guard let value = try record.string(field) else { throw missing(field) }
        return value
    }

    private static func name(_ text: String, _ kind: NameKind, field: EventField) throws(LineError) -> String {
        if let problem = NameRules.problem(text, kind: kind) { throw LineError(message: "\(field.rawValue): \(problem)") }
        return text
    }

    private static func only(_ present: Bool, _ field: EventField, for kind: StockEventKind,
                             _ kinds: [StockEventKind]) throws(LineError) {
        guard present, !kinds.contains(kind) else { return }
        let allowed = kinds.map(\.description).joined(separator: " or ")
        throw LineError(message: "\(field.rawValue) is only for \(allowed) events, not \(kind)")
    }

    private static func missing(_ field: EventField) -> LineError {
        LineError(message: "\(field.rawValue) is missing")
    }

    /// Bytes the event takes in an ingest frame (docs/PROTOCOL.md §7.6): 29 fixed, the names with
    /// their length bytes, and the optional fields present.
    static func wireBytes(_ event: WireEvent) -> Int {
        var bytes = 29 + 2 + event.sku.utf8.count + event.location.utf8.count
        if let toLocation = event.toLocation { bytes += 1 + toLocation.utf8.count }
        if event.countDamaged != nil { bytes += 4 }
        if event.countQuarantine != nil { bytes += 4 }
        if let correlation = event.correlation { bytes += 1 + correlation.utf8.count }
        return bytes
    }
}
