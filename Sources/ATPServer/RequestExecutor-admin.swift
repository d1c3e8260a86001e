import ATPLedger
import ATPProtocol
import NIOCore

/// Channel definitions and statistics. These wait for every worker, so they run on the thread pool,
/// never on an event loop.
extension RequestExecutor {
    func executeChannelSet(_ wire: WireChannelDefinition, requestID: UInt32, opcode: Opcode, eventLoop: EventLoop,
                           reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) {
        let engine = self.engine
        runBlocking(eventLoop: eventLoop, requestID: requestID, opcode: opcode, reply: reply) {
            do {
                // Nothing is interned until the definition is known good: a location no event has
                // named is refused (a typo must not create a permanent location: issue 14 item 7),
                // and so is an invalid definition, before its channel's name is created.
                let catalog = engine.catalog
                for name in wire.locations { try validateName(name, kind: .location) }
                try validateName(wire.name, kind: .channel)
                // The definition's own rules first, on stand-in ids (one per distinct name).
                var standIns: [String: LocationID] = [:]
                let provisional = ChannelDefinition(
                    id: ChannelID(0),
                    locations: wire.locations.map { name in
                        if let id = standIns[name] { return id }
                        let id = LocationID(UInt32(standIns.count))
                        standIns[name] = id
                        return id
                    },
                    bufferUnits: wire.bufferUnits, capPercent: Int(wire.capPercent))
                try provisional.validate(quantityMax: engine.configuration.quantityMax)
                var locations: [LocationID] = []
                var unknown: [String] = []
                for name in wire.locations {
                    if let id = catalog.existingLocation(name) { locations.append(id) } else { unknown.append(name) }
                }
                if !unknown.isEmpty {
                    let listed = unknown.prefix(5).map(\.debugDescription).joined(separator: ", ")
                    let more = unknown.count > 5 ? " and \(unknown.count - 5) more" : ""
                    return Self.error(.notFound, "unknown location \(listed)\(more): no event has named it; a location "
                                      + "exists once an event names it", opcode: opcode, requestID: requestID)
                }
                let id = try catalog.channel(wire.name)
                try engine.defineChannel(ChannelDefinition(id: id, locations: locations, bufferUnits: wire.bufferUnits,
                                                           capPercent: Int(wire.capPercent)))
                return { Reply.channelSet.encode(opcode: opcode, requestID: requestID, into: &$0) }
            } catch let error as InvalidNameError {
                return Self.error(.invalidName, "\(error)", opcode: opcode, requestID: requestID)
            } catch ChannelDefinitionError.notDurable {
                return Self.error(.notDurable, "\(ChannelDefinitionError.notDurable)", opcode: opcode, requestID: requestID)
            } catch {
                return Self.error(.invalidRequest, "invalid channel definition: \(error)", opcode: opcode, requestID: requestID)
            }
        }
    }

    func channelShowReply(_ name: String?, requestID: UInt32, opcode: Opcode) -> ReplyWriter {
        let catalog = engine.catalog
        let definitions: [ChannelDefinition]
        if let name {
            guard let id = catalog.existingChannel(name), let definition = engine.channel(id) else {
                return Self.error(.notFound, "no channel named \(name.debugDescription)", opcode: opcode, requestID: requestID)
            }
            definitions = [definition]
        } else {
            definitions = engine.channels()
        }
        // docs/PROTOCOL.md: definitions come back sorted by channel name (byte order).
        let wire = definitions
            .map { WireChannelDefinition($0, name: catalog.name(of: $0.id), locationName: { catalog.name(of: $0) }) }
            .sorted { Array($0.name.utf8).lexicographicallyPrecedes($1.name.utf8) }
        let frameBytesMax = configuration.limits.frameBytesMax
        return { buffer in
            let start = buffer.writerIndex
            Reply.channelShow(wire).encode(opcode: opcode, requestID: requestID, into: &buffer)
            let frameBytes = buffer.writerIndex - start
            guard frameBytes > frameBytesMax else { return }
            buffer.moveWriterIndex(to: start)
            let message = "the reply would be \(frameBytes) bytes, above frameBytesMax \(frameBytesMax); ask for one channel at a time"
            Reply.error(ErrorReply(code: .replyTooLarge, message: message)).encode(opcode: opcode, requestID: requestID,
                                                                              into: &buffer)
        }
    }

    func executeChannelRemove(_ name: String, requestID: UInt32, opcode: Opcode, eventLoop: EventLoop,
                              reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) {
        let engine = self.engine
        runBlocking(eventLoop: eventLoop, requestID: requestID, opcode: opcode, reply: reply) {
            guard let id = engine.catalog.existingChannel(name) else {
                return Self.error(.notFound, "no channel named \(name.debugDescription)", opcode: opcode, requestID: requestID)
            }
            do {
                try engine.removeChannel(id)
                return { Reply.channelRemove.encode(opcode: opcode, requestID: requestID, into: &$0) }
            } catch ChannelDefinitionError.notDurable {
                return Self.error(.notDurable, "\(ChannelDefinitionError.notDurable)", opcode: opcode, requestID: requestID)
            } catch {
                return Self.error(.notFound, "no channel named \(name.debugDescription)", opcode: opcode, requestID: requestID)
            }
        }
    }

    func executeStats(prefix: String, requestID: UInt32, opcode: Opcode, eventLoop: EventLoop,
                      reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) {
        let engine = self.engine
        let extra = statisticsExtra
        runBlocking(eventLoop: eventLoop, requestID: requestID, opcode: opcode, reply: reply) {
            let entries = (StatsReply.entries(from: engine.statistics()) + extra(prefix)).filter { $0.name.hasPrefix(prefix) }
            return { Reply.stats(StatsReply(entries: entries)).encode(opcode: opcode, requestID: requestID, into: &$0) }
        }
    }
}

/// Takes a snapshot for `snapshotNow` and says what it wrote, or the error reply to send (the
/// durable ledger's; see ATPDurability `DurableLedger.snapshotHook`). Blocking: it runs on the
/// server's thread pool.
public struct SnapshotHook: Sendable {
    /// Takes the snapshot.
    public let take: @Sendable () -> Result<SnapshotNowReply, ErrorReply>

    /// A hook over `take`.
    public init(_ take: @escaping @Sendable () -> Result<SnapshotNowReply, ErrorReply>) {
        self.take = take
    }
}

extension RequestExecutor {
    /// Why this server does not offer `opcode` (answered `notImplemented` before the payload is
    /// even decoded, docs/PROTOCOL.md §5), or nil when it does.
    func notOffered(_ opcode: Opcode) -> String? {
        guard opcode == .snapshotNow, snapshot == nil else { return nil }
        return "this server runs in memory (started without a data directory): it takes no snapshots"
    }

    func executeSnapshotNow(requestID: UInt32, opcode: Opcode, eventLoop: EventLoop,
                            reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) {
        guard let snapshot else {
            reply(Self.error(.notImplemented, notOffered(.snapshotNow) ?? "no snapshots", opcode: opcode, requestID: requestID))
            return
        }
        runBlocking(eventLoop: eventLoop, requestID: requestID, opcode: opcode, reply: reply) {
            switch snapshot.take() {
            case .success(let taken): return { Reply.snapshotNow(taken).encode(opcode: opcode, requestID: requestID, into: &$0) }
            case .failure(let error): return { Reply.error(error).encode(opcode: opcode, requestID: requestID, into: &$0) }
            }
        }
    }
}
