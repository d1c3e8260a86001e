import ATPLedger
import ATPProtocol

/// Which reservation operation a reply answers.
enum ReservationOperation: String {
    case reserve, commit, release
}

/// Text, JSON and exit status of reservation replies.
enum ReservationFormatting {
    /// The result byte's name, as docs/PROTOCOL.md spells it.
    static func name(_ result: ReservationResult) -> String {
        switch result {
        case .ok: "ok"
        case .unknownReservation: "unknownReservation"
        case .notHeld: "notHeld"
        }
    }

    /// The reply as JSON. `asked` are the request's lines (reserve only) and add what each line
    /// asked for.
    static func json(_ reply: WireReservationReply, asked: [WireReservationLine]?) -> JSONValue {
        let lines = reply.lines.enumerated().map { index, grant -> JSONValue in
            var members: [(String, JSONValue)] = []
            if let asked, index < asked.count {
                members.append(("sku", .string(asked[index].sku)))
                switch asked[index].target {
                case .location(let name): members.append(("location", .string(name)))
                case .channel(let name, let allowSplit):
                    members += [("channel", .string(name)), ("split", .bool(allowSplit))]
                }
            }
            members += [("requested", .number(grant.requested)), ("granted", .number(grant.granted)),
                        ("allocations", .array(grant.allocations.map {
                            .object([("location", .string($0.location)), ("quantity", .number($0.quantity))])
                        }))]
            return .object(members)
        }
        let expires: JSONValue = reply.expiresAtMilliseconds == 0 ? .null
            : .string(Format.timestamp(milliseconds: reply.expiresAtMilliseconds))
        return .object([
            ("id", .string(reply.id.description)), ("result", .string(name(reply.result))),
            ("state", .string(reply.state.description)), ("replayed", .bool(reply.replayed)),
            ("expiresAtMilliseconds", .number(reply.expiresAtMilliseconds)), ("expiresAt", expires),
            ("lines", .array(lines)),
        ])
    }

    /// The reply for people: a summary line, then one row per line.
    static func lines(_ reply: WireReservationReply, asked: [WireReservationLine]?) -> [String] {
        var summary = "reservation \(reply.id): "
        switch reply.result {
        case .ok: summary += reply.state.description
        case .unknownReservation: summary += "unknown to the server (never reserved, or forgotten after its retention)"
        case .notHeld: summary += "not held (it is \(reply.state)), nothing changed"
        }
        if reply.state == .held && reply.expiresAtMilliseconds != 0 {
            summary += ", expires \(Format.timestamp(milliseconds: reply.expiresAtMilliseconds))"
        }
        if reply.replayed { summary += " (replayed: the id was already known; this is its recorded answer)" }
        guard !reply.lines.isEmpty else { return [summary] }
        let showAsked = asked?.count == reply.lines.count
        var table = TextTable([("LINE", .right)] + (showAsked ? [("SKU", .left), ("FROM", .left)] : [])
            + [("REQUESTED", .right), ("GRANTED", .right), ("ALLOCATIONS", .left)])
        for (index, grant) in reply.lines.enumerated() {
            let allocations = grant.allocations.map { "\($0.location) \($0.quantity)" }.joined(separator: ", ")
            var row = [String(index + 1)]
            if showAsked, let line = asked?[index] { row += [line.sku, ReservationLineSpec.describe(line.target)] }
            row += [String(grant.requested), String(grant.granted), allocations.isEmpty ? "-" : allocations]
            table.add(row)
        }
        return [summary] + table.renderedLines()
    }

    /// The exit status for `reply` to `operation`, and the note to print on stderr when it is not 0:
    /// reserve is ok when held in full; commit when committed; release when the server released
    /// (or had already ended) a known reservation.
    static func outcome(_ reply: WireReservationReply, of operation: ReservationOperation) -> (ATPExitStatus, String?) {
        let id = reply.id.description
        switch reply.result {
        case .unknownReservation:
            return (.partial, "\(operation.rawValue) \(id): unknown reservation")
        case .notHeld:
            return (.partial, "\(operation.rawValue) \(id): the reservation is \(reply.state), not held")
        case .ok:
            break
        }
        switch operation {
        case .reserve:
            let requested = reply.lines.reduce(Int64(0)) { $0 + $1.requested }
            let granted = reply.lines.reduce(Int64(0)) { $0 + $1.granted }
            if reply.state == .refused { return (.partial, "reservation \(id) refused: nothing was granted") }
            if reply.state != .held { return (.partial, "reservation \(id) is \(reply.state), not held") }
            if granted < requested {
                return (.partial, "reservation \(id) partially granted: \(granted) of \(requested) units")
            }
            return (.ok, nil)
        case .commit:
            return reply.state == .committed ? (.ok, nil) : (.partial, "commit \(id): the reservation is \(reply.state)")
        case .release:
            return (.ok, nil)
        }
    }
}
