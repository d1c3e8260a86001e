/// One line of a reservation: units of a SKU at one location, or through a channel.
public struct ReservationLine: Sendable, Equatable {
    /// Where the units come from.
    public enum Target: Sendable, Equatable {
        /// One location.
        case location(LocationID)
        /// A channel's locations in priority order, within the channel's ATP. With `allowSplit`
        /// false the line is taken from one location only.
        case channel(ChannelID, allowSplit: Bool)
    }
    public var sku: SKUID
    public var target: Target
    /// Units wanted, 1...quantityMax.
    public var quantity: Int64

    public init(sku: SKUID, target: Target, quantity: Int64) {
        self.sku = sku
        self.target = target
        self.quantity = quantity
    }
}

/// How a reservation treats lines that cannot be covered.
public enum ReservationMode: UInt8, Sendable, Equatable {
    /// Every line in full, or nothing.
    case allOrNothing = 0
    /// Each line gets what is sellable, up to its quantity.
    case partial = 1
}

/// A request to hold units for `ttlMilliseconds`.
public struct ReserveRequest: Sendable, Equatable {
    public var id: ReservationID
    public var lines: [ReservationLine]
    public var ttlMilliseconds: Int64
    public var mode: ReservationMode

    public init(id: ReservationID, lines: [ReservationLine], ttlMilliseconds: Int64, mode: ReservationMode) {
        self.id = id
        self.lines = lines
        self.ttlMilliseconds = ttlMilliseconds
        self.mode = mode
    }
}

/// Units of one line taken from one location.
public struct LineAllocation: Sendable, Equatable {
    public var location: LocationID
    public var quantity: Int64
    public init(location: LocationID, quantity: Int64) {
        self.location = location
        self.quantity = quantity
    }
}

/// What one line got.
public struct LineGrant: Sendable, Equatable {
    /// Units asked for.
    public var requested: Int64
    /// Units held (0...requested): the sum of `allocations`.
    public var granted: Int64
    /// Where the units are held, in the order they were taken.
    public var allocations: [LineAllocation]

    public init(requested: Int64, granted: Int64 = 0, allocations: [LineAllocation] = []) {
        self.requested = requested
        self.granted = granted
        self.allocations = allocations
    }
}

/// The life of a reservation: held → committed | released | expired; or refused at once.
public enum ReservationState: UInt8, Sendable, Equatable, CustomStringConvertible {
    /// Units are held (reserved) until the expiry.
    case held = 1
    /// Units turned into committed units (no expiry).
    case committed = 2
    /// Released by the client; units returned.
    case released = 3
    /// Expired by the engine; units returned.
    case expired = 4
    /// Nothing was granted.
    case refused = 5

    public var description: String {
        switch self {
        case .held: "held"
        case .committed: "committed"
        case .released: "released"
        case .expired: "expired"
        case .refused: "refused"
        }
    }
}

/// Why a reservation operation failed. Raw values are stable wire codes.
public enum ReservationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request itself is not valid; nothing was recorded.
    case invalidRequest(ReservationRequestProblem)
    /// commit or release of an id the engine does not know (never reserved, or forgotten after the
    /// retention window).
    case unknownReservation
    /// commit of a reservation that is no longer held (released, expired or refused).
    case notHeld(ReservationState)
    /// The change could not be made durable (the journal failed: disk full, I/O error); its outcome
    /// is unknown until a restart. Writes are refused until the cause is fixed and atpd restarted.
    case notDurable(String)

    public var description: String {
        switch self {
        case .invalidRequest(let problem): "invalid reservation request: \(problem)"
        case .unknownReservation: "unknown reservation id (never reserved, or older than the retention window)"
        case .notHeld(let state): "the reservation is \(state), not held"
        case .notDurable(let reason): "not durable (outcome unknown, retry after a restart): \(reason)"
        }
    }
}

/// What is wrong with a reservation request.
public enum ReservationRequestProblem: UInt8, Sendable, Equatable, CustomStringConvertible {
    case noLines = 1
    case tooManyLines = 2
    case quantityNotPositive = 3
    case quantityTooLarge = 4
    case ttlOutOfRange = 5

    public var description: String {
        switch self {
        case .noLines: "a reservation needs at least one line"
        case .tooManyLines: "more lines than reservationLinesMax"
        case .quantityNotPositive: "a line quantity must be greater than 0"
        case .quantityTooLarge: "a line quantity exceeds quantityMax"
        case .ttlOutOfRange: "ttl must be from 1 ms to reservationTTLMillisecondsMax"
        }
    }
}

/// The answer to reserve, commit and release.
public struct ReservationReply: Sendable, Equatable {
    public var id: ReservationID
    /// The state after the operation (for a replay: the state now).
    public var state: ReservationState
    /// What each line of the original reservation got (empty for an unknown id).
    public var lines: [LineGrant]
    /// When a held reservation expires, in milliseconds since 1970 (0 when not held).
    public var expiresAtMilliseconds: Int64
    /// True when the id was already known and this answer repeats the first one (idempotency).
    public var replayed: Bool
    /// Set when the operation failed; `state` is then meaningful only for `.notHeld`.
    public var error: ReservationError?

    public init(id: ReservationID, state: ReservationState, lines: [LineGrant], expiresAtMilliseconds: Int64,
                replayed: Bool, error: ReservationError? = nil) {
        self.id = id
        self.state = state
        self.lines = lines
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.replayed = replayed
        self.error = error
    }

    /// Units granted over all lines.
    public var grantedUnits: Int64 { lines.reduce(0) { $0 + $1.granted } }
    /// True when every line got all it asked for.
    public var isFullyGranted: Bool { !lines.isEmpty && lines.allSatisfy { $0.granted == $0.requested } }
}

extension SKUID {
    /// Stands for a SKU name the engine has never seen: it has no cells, so nothing is sellable.
    public static let unknown = SKUID(UInt32.max)
}

extension LocationID {
    /// Stands for a location name the engine has never seen.
    public static let unknown = LocationID(UInt32.max)
}

extension ChannelID {
    /// Stands for a channel name the engine has never seen.
    public static let unknown = ChannelID(UInt32.max)
}
