/// Why an event or request was refused. Raw values are stable wire codes.
public enum RejectionReason: UInt16, CaseIterable, Sendable, CustomStringConvertible, Error {
    /// The event kind code is not one the engine knows.
    case unknownEventKind = 1
    /// A quantity that must be > 0 was 0 or negative.
    case quantityNotPositive = 2
    /// A quantity, delta or absolute value exceeded `LedgerConfiguration.quantityMax`.
    case quantityTooLarge = 3
    /// An absolute value (count, safety stock) was negative.
    case valueNegative = 4
    /// An adjustment with delta 0.
    case deltaZero = 5
    /// adjust/writeOff named a bucket it may not change (committed, reserved, or an unknown code).
    case bucketNotAllowed = 6
    /// disposition named an unknown outcome code.
    case unknownDispositionOutcome = 7
    /// transferOut from a location to itself.
    case transferToSameLocation = 8
    /// Applying the event would take a bucket outside the 32-bit range.
    case bucketOverflow = 9
    /// The sequence is at or below (newest seen − window) for its source: cannot tell if it is a duplicate.
    case sequenceTooOld = 10
    /// A SKU name that is empty, longer than 64 bytes or not UTF-8.
    case invalidSKUName = 11
    /// A location name that is empty, longer than 64 bytes or not UTF-8.
    case invalidLocationName = 12
    /// A source name that is empty, longer than 64 bytes or not UTF-8.
    case invalidSourceName = 13
    /// A reservation id that is empty, longer than 64 bytes or not UTF-8.
    case invalidReservationID = 14
    /// The event could not be decoded (bad field lengths, unknown flags).
    case malformed = 15
    /// The name table is full (2^32 − 1 names of one kind).
    case nameTableFull = 16
    /// A ship names a correlation id that is not a valid reservation id.
    case invalidCorrelation = 17

    public var description: String {
        switch self {
        case .unknownEventKind: "unknownEventKind"
        case .quantityNotPositive: "quantityNotPositive"
        case .quantityTooLarge: "quantityTooLarge"
        case .valueNegative: "valueNegative"
        case .deltaZero: "deltaZero"
        case .bucketNotAllowed: "bucketNotAllowed"
        case .unknownDispositionOutcome: "unknownDispositionOutcome"
        case .transferToSameLocation: "transferToSameLocation"
        case .bucketOverflow: "bucketOverflow"
        case .sequenceTooOld: "sequenceTooOld"
        case .invalidSKUName: "invalidSKUName"
        case .invalidLocationName: "invalidLocationName"
        case .invalidSourceName: "invalidSourceName"
        case .invalidReservationID: "invalidReservationID"
        case .malformed: "malformed"
        case .nameTableFull: "nameTableFull"
        case .invalidCorrelation: "invalidCorrelation"
        }
    }

    /// A sentence saying what is wrong and what to do.
    public var explanation: String {
        switch self {
        case .unknownEventKind: "unknown event kind; see docs/SEMANTICS.md for the list"
        case .quantityNotPositive: "quantity must be greater than 0"
        case .quantityTooLarge: "quantity exceeds the configured maximum per event"
        case .valueNegative: "absolute value must be 0 or more"
        case .deltaZero: "adjustment delta must not be 0"
        case .bucketNotAllowed: "this event may not change that bucket (committed and reserved belong to reservations)"
        case .unknownDispositionOutcome: "disposition outcome must be restock, damaged, scrap or vendor"
        case .transferToSameLocation: "transfer source and destination are the same location"
        case .bucketOverflow: "the result would leave the 32-bit range of a bucket"
        case .sequenceTooOld: "sequence is older than the dedup window of its source; resend as a new sequence if it is not a duplicate"
        case .invalidSKUName: "SKU names are 1 to 64 bytes of UTF-8"
        case .invalidLocationName: "location names are 1 to 64 bytes of UTF-8"
        case .invalidSourceName: "source names are 1 to 64 bytes of UTF-8"
        case .invalidReservationID: "reservation ids are 1 to 64 bytes of UTF-8"
        case .malformed: "the event could not be decoded"
        case .nameTableFull: "no more names of this kind can be interned"
        case .invalidCorrelation: "the correlation id is not a valid reservation id"
        }
    }
}
