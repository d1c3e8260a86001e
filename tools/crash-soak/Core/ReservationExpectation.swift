import ATPLedger
import ATPProtocol

/// What the server may answer about one reservation id during a time window, given what the model
/// knows: the states it may be in, whether it may be unknown, and the grants it must show.
///
/// Time: a held reservation is held while the server's clock is before its `expiresAt` and expired
/// from then on (docs/SEMANTICS.md §6). The window is the server-clock interval in which the
/// question was asked (from the send of the request to its reply); an expiry within `margin` of it
/// may go either way, outside it must be on the right side.
public struct ReservationExpectation: Sendable, Equatable {
    /// The grants a found reservation must show.
    public enum Grants: Sendable, Equatable {
        /// Exactly these (an acknowledged reserve).
        case exactly([WireLineGrant])
        /// Any grants the request allows as a whole: one per line, each line's allocations on its
        /// target adding up to its grant, all or nothing in `allOrNothing` mode (an unacknowledged
        /// reserve, found applied).
        case whole
    }

    /// The states it may be found in.
    public var states: Set<ReservationState>
    /// Whether it may be unknown to the server (an unacknowledged reserve that did not happen).
    public var mayBeUnknown: Bool
    /// The grants it must show when found.
    public var grants: Grants

    /// Whether every allowed state is final (released, expired, refused): a release then changes
    /// nothing and must replay.
    public var isSettled: Bool {
        !mayBeUnknown && !states.isEmpty && states.isSubset(of: [.released, .expired, .refused])
    }

    /// Whether it must be committed: a commit then changes nothing and must replay.
    public var isCommitted: Bool { !mayBeUnknown && states == [.committed] }

    /// The states a reservation that expires within `expiry` may be in when asked during
    /// `window`, if nothing else happened to it.
    public static func byTime(expiry: ClosedRange<Int64>, window: ClosedRange<Int64>, margin: Int64) -> Set<ReservationState> {
        if expiry.upperBound + margin <= window.lowerBound { return [.expired] }
        if expiry.lowerBound - margin >= window.upperBound { return [.held] }
        return [.held, .expired]
    }

    /// The expectation for `entry` asked about during `window` (server clock, milliseconds).
    public init(_ entry: ModelReservation, window: ClosedRange<Int64>, margin: Int64) {
        // Never seen held and nothing in flight: no expiry to come (far enough to add margins to).
        let expiry = entry.expiresAtMilliseconds ?? Int64.max / 2...Int64.max / 2
        let timed = Self.byTime(expiry: expiry, window: window, margin: margin)
        // An operation sent once the reservation had surely expired cannot have changed it.
        let sentAfterExpiry = expiry.upperBound + margin <= entry.pendingSentAtMilliseconds
        grants = entry.state == nil ? .whole : .exactly(entry.lines)
        mayBeUnknown = false
        switch (entry.state, entry.pending) {
        case (nil, _):
            // The reserve never answered: not applied, or applied whole (held then maybe expired,
            // or refused).
            mayBeUnknown = true
            states = timed.union([.refused])
        case (.held, .commit?):
            states = sentAfterExpiry ? timed : timed.union([.committed])
        case (.held, .release?):
            states = sentAfterExpiry ? timed : timed.union([.released])
        case (.held, _):
            states = timed
        case (.committed, .release?):
            states = [.committed, .released]
        case (let state?, _):
            states = [state]
        }
    }

    /// A planted expectation (for tests of the checker).
    public init(states: Set<ReservationState>, mayBeUnknown: Bool, grants: Grants) {
        self.states = states
        self.mayBeUnknown = mayBeUnknown
        self.grants = grants
    }

    /// Why `found` (the grants in a reply about `request`) is not what this expectation allows, or
    /// nil when it is.
    public func grantProblem(_ found: [WireLineGrant], state: ReservationState, request: WireReserveRequest,
                             channel: WireChannelDefinition?) -> String? {
        switch grants {
        case .exactly(let lines):
            return found == lines ? nil : "grants \(found.compactDescription), acknowledged \(lines.compactDescription)"
        case .whole:
            return Self.wholeProblem(found, state: state, request: request, channel: channel)
        }
    }

    /// Why `found` is not a whole answer to `request`, or nil when it is.
    static func wholeProblem(_ found: [WireLineGrant], state: ReservationState, request: WireReserveRequest,
                             channel: WireChannelDefinition?) -> String? {
        guard found.count == request.lines.count else {
            return "\(found.count) lines for a request of \(request.lines.count): \(found.compactDescription)"
        }
        var anyGranted = false
        for (line, grant) in zip(request.lines, found) {
            let allocated = grant.allocations.reduce(0) { $0 + $1.quantity }
            guard grant.requested == line.quantity, allocated == grant.granted, grant.granted <= grant.requested,
                  grant.granted >= 0 else {
                return "line \(line.sku) asked \(line.quantity), found \(found.compactDescription)"
            }
            switch line.target {
            case .location(let location):
                if grant.allocations.contains(where: { $0.location != location }) {
                    return "line \(line.sku) at \(location) allocated elsewhere: \(found.compactDescription)"
                }
            case .channel(_, let allowSplit):
                if let channel, grant.allocations.contains(where: { !channel.locations.contains($0.location) }) {
                    return "line \(line.sku) through \(channel.name) allocated outside it: \(found.compactDescription)"
                }
                if !allowSplit && grant.allocations.count > 1 {
                    return "no-split line \(line.sku) taken from several locations: \(found.compactDescription)"
                }
            }
            if grant.granted > 0 { anyGranted = true }
            if request.mode == .allOrNothing && state != .refused && grant.granted != grant.requested {
                return "all-or-nothing reservation \(state) with a short line: \(found.compactDescription)"
            }
        }
        if state == .refused && anyGranted { return "refused with units granted: \(found.compactDescription)" }
        if state != .refused && !anyGranted { return "\(state) with nothing granted: \(found.compactDescription)" }
        return nil
    }
}
