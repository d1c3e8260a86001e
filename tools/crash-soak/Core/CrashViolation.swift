/// One check that failed: its kind, what it is about (a reservation id, a cell, a source) and what
/// differed.
public struct CrashViolation: Sendable, Equatable, CustomStringConvertible {
    /// What kind of check failed.
    public enum Kind: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
        /// atpd did not start on the data directory after the kill.
        case refusedToStart = "refused-to-start"
        /// atpd exited on its own during the load, before the kill.
        case exitedUnderLoad = "exited-under-load"
        /// atpd stopped answering, or answered with an error, while being checked after a restart.
        case checksFailed = "checks-failed"
        /// An acknowledged reservation was unknown after the restart: the probe reserve started a
        /// new one (a retrying client would hold a second time).
        case lostReservation = "lost-reservation"
        /// commit or release of an acknowledged reservation answered `unknownReservation`.
        case unknownReservation = "unknown-reservation"
        /// A reservation's state differs from what was acknowledged (allowing for its expiry).
        case wrongState = "wrong-state"
        /// A reservation's grants differ from the acknowledged ones, or an unacknowledged reserve
        /// was found partly applied.
        case wrongGrants = "wrong-grants"
        /// A reserve retry of a known id was not replayed: it created a second reservation.
        case secondHold = "second-hold"
        /// A cell's `reserved` is not the sum of the reservations found held there.
        case reservedBucket = "reserved-bucket"
        /// A cell's `committed` is not the sum of the reservations found committed there.
        case committedBucket = "committed-bucket"
        /// A cell's `onHand` is below the acknowledged receives, or above them plus the unknown ones.
        case onHand = "on-hand"
        /// After the resend of the unknown batches, `onHand` is not exactly the model's.
        case onHandAfterResend = "on-hand-after-resend"
        /// A resend counted events again (applied instead of duplicate) or refused some.
        case resendCounted = "resend-counted"
        /// The channel defined at the start is gone or changed after the restart.
        case channel
        /// A reply during the load contradicts what was acknowledged before (a commit or release
        /// answering unknownReservation, a retry not replayed, a state out of time).
        case loadReply = "load-reply"

        public var description: String { rawValue }

        public static func < (left: Kind, right: Kind) -> Bool {
            allCases.firstIndex(of: left)! < allCases.firstIndex(of: right)!
        }
    }

    /// The kind of check.
    public var kind: Kind
    /// What it is about: a reservation id, a cell ("SKU-3@S1"), a source, "atpd".
    public var subject: String
    /// What was expected and what was found.
    public var detail: String

    /// A violation from its fields.
    public init(_ kind: Kind, _ subject: String, _ detail: String) {
        self.kind = kind
        self.subject = subject
        self.detail = detail
    }

    /// "SUBJECT: [kind] detail".
    public var description: String { "\(subject): [\(kind)] \(detail)" }
}
