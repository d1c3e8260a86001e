import ATPProtocol
import Testing

@testable import ATPServer

/// The connection's plain state machine on its own, no sockets: every state against every class of
/// opcode (hello, role-free, each role's opcodes, the reserved snapshotNow, notice and unknown
/// opcodes), and every transition.
@Suite struct ConnectionStateMachineTests {
    /// Opcodes grouped by the role they need (docs/PROTOCOL.md §3, §4).
    static let roleFree: [Opcode] = [.ping, .stats]
    static let queryRole: [Opcode] = [.query, .channelShow]
    static let reserveRole: [Opcode] = [.reserve, .commit, .release]
    static let ingestRole: [Opcode] = [.ingest, .rejectionLogRead]
    static let adminRole: [Opcode] = [.channelSet, .channelRemove, .snapshotNow]
    /// Opcodes that are not requests: they need no role, and decoding answers `unknownOpcode`.
    static let notRequests: [Opcode] = [.notice, Opcode(rawValue: 0x03), Opcode(rawValue: 0x7F), Opcode(rawValue: 0xFF)]
    static let everyOpcode: [Opcode] = [.hello] + roleFree + queryRole + reserveRole + ingestRole + adminRole + notRequests

    static func ready(_ roles: Roles) -> ConnectionStateMachine {
        var machine = ConnectionStateMachine()
        machine.authenticated(as: roles)
        return machine
    }

    @Test func startsAwaitingHelloAndAcceptsFrames() {
        let machine = ConnectionStateMachine()
        #expect(machine.state == .awaitingHello)
        #expect(machine.acceptsFrames)
    }

    @Test(arguments: everyOpcode)
    func awaitingHelloRunsOnlyTheHandshake(opcode: Opcode) {
        let machine = ConnectionStateMachine()
        let action = machine.action(for: opcode)
        if opcode == .hello {
            #expect(action == .handshake)
        } else {
            guard case .reject(let code, _, let close) = action else {
                Issue.record("\(opcode) before hello: \(action)")
                return
            }
            #expect(code == .unauthenticated)
            #expect(close)
        }
    }

    @Test func authenticationMovesToReady() {
        var machine = ConnectionStateMachine()
        machine.authenticated(as: [.query, .ingest])
        #expect(machine.state == .ready([.query, .ingest]))
        #expect(machine.acceptsFrames)
    }

    @Test func aSecondHelloIsAnInvalidRequestThatKeepsTheConnection() {
        for roles in [Roles(), .query, .reserve, .ingest, .admin, .all] {
            let action = Self.ready(roles).action(for: .hello)
            guard case .reject(let code, _, let close) = action else {
                Issue.record("second hello with \(roles): \(action)")
                continue
            }
            #expect(code == .invalidRequest)
            #expect(!close)
            #expect(Self.ready(roles).state == .ready(roles), "a rejected hello changes nothing")
        }
    }

    /// Every role set that matters × every opcode: permitted opcodes execute, the others are
    /// `forbidden` without closing.
    @Test(arguments: [Roles(), .query, .reserve, .ingest, .admin, [.reserve, .query], [.query, .ingest], .all])
    func readyChecksRoles(roles: Roles) {
        let machine = Self.ready(roles)
        let isAdmin = roles.contains(.admin)
        var permitted: [Opcode] = Self.roleFree + Self.notRequests
        if isAdmin || roles.contains(.query) { permitted += Self.queryRole }
        if isAdmin || roles.contains(.reserve) { permitted += Self.reserveRole }
        if isAdmin || roles.contains(.ingest) { permitted += Self.ingestRole }
        if isAdmin { permitted += Self.adminRole }
        for opcode in Self.everyOpcode where opcode != .hello {
            let action = machine.action(for: opcode)
            if permitted.contains(opcode) {
                #expect(action == .execute, "\(opcode) with roles \(roles)")
            } else {
                guard case .reject(let code, let message, let close) = action else {
                    Issue.record("\(opcode) with roles \(roles): \(action), expected forbidden")
                    continue
                }
                #expect(code == .forbidden, "\(opcode) with roles \(roles)")
                #expect(!close, "forbidden keeps the connection open")
                #expect(message.contains("\(opcode)"), "the message names the opcode: \(message)")
            }
        }
    }

    @Test(arguments: [ConnectionStateMachine.State.awaitingHello, .ready(.all), .ready(.query)])
    func drainingRejectsEverythingWithShuttingDownAndCloses(from start: ConnectionStateMachine.State) {
        var machine = ConnectionStateMachine()
        if case .ready(let roles) = start { machine.authenticated(as: roles) }
        machine.drain()
        #expect(machine.state == .draining)
        #expect(!machine.acceptsFrames)
        for opcode in Self.everyOpcode {
            guard case .reject(let code, _, let close) = machine.action(for: opcode) else {
                Issue.record("\(opcode) while draining: \(machine.action(for: opcode))")
                continue
            }
            #expect(code == .shuttingDown)
            #expect(close)
        }
    }

    @Test(arguments: [ConnectionStateMachine.State.awaitingHello, .ready(.all), .draining])
    func closedIgnoresEverything(from start: ConnectionStateMachine.State) {
        var machine = ConnectionStateMachine()
        switch start {
        case .ready(let roles): machine.authenticated(as: roles)
        case .draining: machine.drain()
        default: break
        }
        machine.close()
        #expect(machine.state == .closed)
        #expect(!machine.acceptsFrames)
        for opcode in Self.everyOpcode {
            #expect(machine.action(for: opcode) == .ignore, "\(opcode) after close")
        }
    }

    @Test func drainAfterCloseStaysClosed() {
        var machine = Self.ready(.all)
        machine.close()
        machine.drain()
        #expect(machine.state == .closed)
        machine.close()
        #expect(machine.state == .closed, "close is idempotent")
    }

    @Test func drainIsIdempotent() {
        var machine = Self.ready(.query)
        machine.drain()
        machine.drain()
        #expect(machine.state == .draining)
    }
}
