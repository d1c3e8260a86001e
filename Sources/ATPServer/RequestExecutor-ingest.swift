import ATPLedger
import ATPProtocol
import NIOCore

/// Event ingest: names are interned here (a new SKU or location is created by its first event);
/// events whose names or flags are invalid, or that the ledger would refuse whatever its state
/// (`StockEvent.statelessRejection`: a quantity out of range, a bucket a kind does not take...),
/// are rejected before the batch reaches the engine and before any of their names is interned (a
/// refused event leaves no SKU, location or source behind: issue 14 item 7), logged and reported
/// with their index like the engine's own rejections.
extension RequestExecutor {
    func executeIngest(_ request: IngestRequest, requestID: UInt32, opcode: Opcode,
                       reply: @escaping @Sendable (@escaping ReplyWriter) -> Void) -> ExecuteOutcome {
        let catalog = engine.catalog
        var batch = EventBatch(capacity: request.count)
        var indexMap: [Int32] = []
        indexMap.reserveCapacity(request.count)
        var early: [IngestRejection] = []
        var logged: [RejectedEvent] = []
        let now = engine.clock.nowMilliseconds()
        let quantityMax = engine.configuration.quantityMax
        request.withUnsafeNames { names in
            let sourceText = escapedName(names[request.source])
            /// Logs event `index` as received (names escaped), so the log shows what the feed sent.
            func reject(_ index: Int, _ reason: RejectionReason, _ detail: String) {
                early.append(IngestRejection(index: UInt32(index), reason: reason))
                let wire = request.events[index]
                let received = ReceivedEvent(
                    kindCode: wire.kindCode, flags: wire.flags.rawValue, code: wire.code, reasonCode: wire.reasonCode,
                    sequence: wire.sequence, quantity: wire.quantity, eventMilliseconds: wire.eventMilliseconds,
                    source: sourceText, sku: escapedName(names[wire.sku]), location: escapedName(names[wire.location]),
                    toLocation: wire.toLocation.isPresent ? escapedName(names[wire.toLocation]) : nil,
                    countDamaged: wire.flags.contains(.countsDamaged) ? wire.countDamaged : nil,
                    countQuarantine: wire.flags.contains(.countsQuarantine) ? wire.countQuarantine : nil,
                    correlation: wire.correlation.isPresent ? escapedName(names[wire.correlation]) : nil)
                logged.append(RejectedEvent(atMilliseconds: now, reason: reason, event: nil, received: received,
                                            detail: detail))
            }
            do throws(InvalidNameError) {
                try validateName(names[request.source], kind: .source)
            } catch {
                let detail = "source \"\(sourceText)\": \(error)"
                for index in request.events.indices { reject(index, error.reason, detail) }
                return
            }
            // Interned with the first event that passes every check before the engine's.
            var source: SourceID? = nil
            /// The id of a name the catalogue holds (valid already: only valid names are interned), or
            /// nil once a new name is checked. Throws when the new name is invalid.
            func knownID(_ name: NameRef, _ kind: NameKind) throws(InvalidNameError) -> UInt32? {
                if let id = catalog.lookup(names[name], kind: kind) { return id }
                try validateName(names[name], kind: kind)
                return nil
            }
            /// The id of a name `knownID` answered for: interned now when it was new.
            func id(_ known: UInt32?, _ name: NameRef, _ kind: NameKind) throws(InvalidNameError) -> UInt32 {
                if let known { return known }
                return try catalog.intern(names[name], kind: kind)
            }
            for (index, wire) in request.events.enumerated() {
                if let reason = wire.structuralRejection {
                    reject(index, reason, "event kind \(wire.kindCode) with flags 0x\(String(wire.flags.rawValue, radix: 16))")
                    continue
                }
                let hasToLocation = wire.flags.contains(.hasToLocation)
                do throws(InvalidNameError) {
                    // The names are checked, not interned, until the event passes the stateless checks;
                    // a known name keeps the id of its one lookup.
                    let knownSKU = try knownID(wire.sku, .sku)
                    let knownLocation = try knownID(wire.location, .location)
                    let knownToLocation = hasToLocation ? try knownID(wire.toLocation, .location) : nil
                    var correlation: ReservationID? = nil
                    if wire.flags.contains(.hasCorrelation) {
                        do {
                            correlation = try ReservationID(bytes: names[wire.correlation])
                        } catch {
                            reject(index, .invalidCorrelation, "correlation \"\(escapedName(names[wire.correlation]))\"")
                            continue
                        }
                    }
                    // Checked on stand-in ids (equal locations, equal ids) before any name is interned;
                    // the real ids replace them once it passes.
                    let sameLocations = hasToLocation && names[wire.location].elementsEqual(names[wire.toLocation])
                    guard var event = wire.stockEvent(
                        sku: SKUID(0), location: LocationID(0),
                        toLocation: hasToLocation ? LocationID(sameLocations ? 0 : 1) : nil, source: SourceID(0))
                    else {
                        reject(index, .unknownEventKind, "event kind \(wire.kindCode)")
                        continue
                    }
                    event.correlation = correlation == nil ? 0 : 1
                    if let reason = event.statelessRejection(quantityMax: quantityMax,
                                                             correlationCount: correlation == nil ? 0 : 1) {
                        reject(index, reason, "refused on receipt; its names were not created")
                        continue
                    }
                    if source == nil { source = SourceID(try catalog.intern(names[request.source], kind: .source)) }
                    event.source = source!
                    event.sku = SKUID(try id(knownSKU, wire.sku, .sku))
                    event.location = LocationID(try id(knownLocation, wire.location, .location))
                    if hasToLocation { event.toLocation = LocationID(try id(knownToLocation, wire.toLocation, .location)) }
                    batch.append(event, correlation: correlation)
                    indexMap.append(Int32(index))
                } catch {
                    // Name the offending name (escaped, as a reader of the log needs to see it).
                    let offending: NameRef = switch error.kind {
                    case .sku: wire.sku
                    case .location where wire.flags.contains(.hasToLocation)
                        && validatesAsLocation(names[wire.location]): wire.toLocation
                    default: wire.location
                    }
                    reject(index, error.reason, "\"\(escapedName(names[offending]))\": \(error)")
                }
            }
        }
        let recordEarly = { [engine] in if !logged.isEmpty { engine.recordRejections(logged) } }
        if batch.count == 0 {
            recordEarly()
            let answer = Reply.ingest(IngestReply(outcomes: [EventOutcome](), earlyRejections: early))
            reply { answer.encode(opcode: opcode, requestID: requestID, into: &$0) }
            return .started
        }
        // Every event in the batch passed `statelessRejection` with the engine's limit above.
        batch.checkedForQuantityMax = quantityMax
        let map = indexMap
        let earlyRejections = early
        let submitted = engine.submit(batch) { result in
            if let failure = result.durabilityFailure {
                let refusal = Reply.error(ErrorReply(code: .notDurable, message: failure.description))
                return reply { refusal.encode(opcode: opcode, requestID: requestID, into: &$0) }
            }
            let answer = Reply.ingest(IngestReply(result, indexMap: { Int(map[$0]) }, earlyRejections: earlyRejections))
            reply { answer.encode(opcode: opcode, requestID: requestID, into: &$0) }
        }
        guard submitted == .accepted else { return .inboxFull }
        recordEarly()
        return .started
    }

    /// A page of the rejection log with names spelled out, trimmed to fit one frame.
    func rejectionLogReply(_ read: RejectionLogReadRequest) -> RejectionLogReply {
        let catalog = engine.catalog
        let limit = min(Int(read.limit), configuration.limits.batchItemsMax)
        let page = engine.rejections(afterSequence: read.afterSequence, limit: limit)
        var entries: [WireRejectedEvent] = []
        // Frame header and the reply's fixed fields, then each entry's exact encoded size.
        var bytes = 64
        for entry in page.entries {
            var logged: LoggedEvent? = nil
            if let received = entry.received {
                logged = LoggedEvent(source: received.source, event: WireEvent(received))
            } else if let event = entry.event {
                let toLocation = event.kind == .transferOut ? catalog.name(of: event.toLocation) : nil
                logged = LoggedEvent(source: catalog.name(of: event.source), event: WireEvent(
                    event, sku: catalog.name(of: event.sku), location: catalog.name(of: event.location),
                    toLocation: toLocation, correlation: nil))
            }
            let wire = WireRejectedEvent(logSequence: entry.logSequence, atMilliseconds: entry.atMilliseconds,
                                         reason: entry.reason, event: logged, detail: entry.detail)
            bytes += wire.encodedBytes
            if bytes > configuration.limits.frameBytesMax { break }
            entries.append(wire)
        }
        return RejectionLogReply(oldestKeptSequence: page.oldestKeptSequence, newestSequence: page.newestSequence,
                                 droppedCount: page.droppedCount, entries: entries)
    }
}

/// Whether `bytes` is an acceptable location name (used only to say which of two names was refused).
private func validatesAsLocation(_ bytes: UnsafeRawBufferPointer) -> Bool {
    do throws(InvalidNameError) { try validateName(bytes, kind: .location); return true } catch { return false }
}
