import ATPLedger
import ATPProtocol
import NIOCore

/// Sent down every connection's pipeline when the server shuts down.
struct ServerShutdownEvent: Sendable {}

/// A query of this read answered inline: its request and the answers of the read's batch it takes.
private struct InlineRequest {
    var request: QueryRequest
    var requestID: UInt32
    var answers: Range<Int>
}

/// One client connection: decodes frames, runs the handshake, executes requests in pipeline order
/// (answers may come back out of order, matched by request id), and writes replies with coalesced
/// flushes. Back-pressure: it stops taking frames and reading (holds `read()`) while
/// `inFlightRequestsMax` requests are in flight, while a request waits for room in a full shard
/// inbox, while the peer is slow to read (the channel is not writable: `outboundBytesHighWaterMark`
/// bytes queued), and while the replies it owes could fill that budget again (`replyBytesOwed`:
/// each request's `ReplyEstimate`, counted from when it is taken until its reply is handed to the
/// channel). So a client that pipelines large-reply queries and never reads holds at most about
/// twice `outboundBytesHighWaterMark` plus one reply, and the requests beyond stay unread in its
/// socket (issue 14 item 1). Nothing is buffered without bound.
///
/// Exclusivity: the properties marked `@exclusivity(unchecked)` are touched only on the connection's
/// event loop, by this handler's methods, never through overlapping `inout` accesses (the runtime
/// checks cost about 2 % of a query's CPU, measured with perf on the inline path).
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A request that met a full inbox: retried until it fits or `inboxWaitMillisecondsMax` passes.
    private struct Stalled {
        var request: Request
        var opcode: Opcode
        var requestID: UInt32
        var since: NIODeadline
    }

    private let executor: RequestExecutor
    private let counters: ServerCounters
    /// The engine core this connection's event loop hosts (thread-per-core), or nil: requests for
    /// that core's shards are executed inline, during the read.
    private let coreIndex: Int?
    /// Replies executed inline during this read, flushed once when the read's frames are done.
    @exclusivity(unchecked) private var inlineReplies: ByteBuffer? = nil
    /// The last flushed `inlineReplies`, kept to write the next read's replies into. Once the
    /// channel has written it (usually within the flush) this is its only reference, and clearing
    /// it reuses its storage: no allocation per read. While a write still holds it, clearing
    /// copies on write, i.e. allocates as a new buffer would. Kept only up to
    /// `spareReplyBufferBytesMax` of capacity, so an idle connection holds little.
    @exclusivity(unchecked) private var spareReplyBuffer: ByteBuffer? = nil
    private static let spareReplyBufferBytesMax = 64 << 10
    /// This read's queries for the connection's own core, answered together when the read's frames
    /// are done (their cache misses overlap); reused storage, no allocation per request once grown.
    @exclusivity(unchecked) private var inlineBatch = InlineQueryBatch()
    /// The requests behind `inlineBatch`, in read order: which answers each one's reply takes.
    @exclusivity(unchecked) private var inlineRequests: [InlineRequest] = []
    /// Inline query replies of this read per `QueryRequestKind`, timed once at the flush.
    private var inlineKinds = QueryKindCounts()
    /// Reservation operations of this read answered inline (their replies are in `inlineReplies`).
    private var inlineOperationsAnswered = 0
    /// While an inline reservation operation runs, its token (0 otherwise): its completion, when
    /// called before the operation returns, writes the reply into `inlineReplies` and sets
    /// `inlineOperationAnswered`; called later, it goes through the mailbox.
    @exclusivity(unchecked) private var inlineOperationToken: UInt64 = 0
    private var lastInlineOperationToken: UInt64 = 0
    private var inlineOperationAnswered = false
    /// When the frames being handled were read (`NIODeadline` uptime nanoseconds): one clock read
    /// per `processFrames`, shared by its requests.
    private var readNanoseconds: UInt64 = 0
    /// This loop's per-request counters (frames sent by outcome, query latency).
    private let metrics: LoopRequestMetrics
    private let limits: ProtocolLimits
    private let onClose: @Sendable (ObjectIdentifier) -> Void
    private var machine = ConnectionStateMachine()
    @exclusivity(unchecked) private var decoder: FrameDecoder
    @exclusivity(unchecked) private var cumulation: ByteBuffer? = nil
    /// Bytes of `cumulation` storage last added to `counters.inboundBytesBuffered`.
    private var inboundBytesReported = 0
    /// Requests read and not yet answered; mirrored into `server.requests.inFlight` and its peak.
    private var inFlight = 0 {
        didSet {
            counters.requestsInFlight.wrappingIncrement(by: inFlight - oldValue, ordering: .relaxed)
            if inFlight > oldValue { ServerCounters.raise(counters.requestsInFlightPeak, to: inFlight) }
        }
    }
    private var readHeldBack = false
    /// The `ReplyEstimate`s of the requests taken and not yet answered into the channel: in flight
    /// (worker, other core, journal) or answered inline and waiting for this read's flush. The
    /// connection takes no frame while it is at least `outboundBytesBudget`.
    private var replyBytesOwed = 0
    /// `replyBytesOwed` as last added to `server.bytes.replyOwed` (brought up to date once per read
    /// and per delivery, not per request: `reportOwedBytes()`).
    private var replyBytesOwedReported = 0
    /// The most this connection has owed (its contribution to `server.bytes.replyOwedPeak`).
    private var replyBytesOwedPeak = 0
    /// The part of `replyBytesOwed` answered inline during this read: handed over at its flush.
    private var inlineReplyBytesOwed = 0
    /// The `ReplyEstimate`s taken in this turn of `processFrames`: at `turnReplyBytesMax` the turn
    /// ends and the connection's other frames wait for the loop's next turn (`yieldTurn`).
    private var turnReplyBytes = 0
    /// A turn's share of reply work: a quarter of the budget, at most 256 KiB (a read of small
    /// requests never reaches it: 64 KiB of single-cell queries owe about 40 KiB).
    private let turnReplyBytesMax: Int
    /// How far ahead a yielded turn goes on: long enough that the loop polls its sockets first.
    static let yieldedTurnDelay = TimeAmount.microseconds(50)
    /// Waiting for the loop's next turn (`yieldTurn`): no frame is taken, nothing is read.
    private var yieldedTurn = false
    /// `outboundBytesHighWaterMark`: the replies a connection may owe before it stops taking frames.
    private let outboundBytesBudget: Int
    /// The engine's catalog: how many locations it knows bounds a SKU or channel query's reply.
    private let catalog: Catalog
    /// The peer closed its sending side (half-close): close once everything read is answered.
    private var inputClosed = false
    private var stalled: Stalled? = nil
    /// Single-frame queries decoded in this read, submitted to the engine together when the read's
    /// frames are done: one engine task and one hop back per read instead of one per request.
    @exclusivity(unchecked) private var pendingQueries: [PendingQuery] = []
    /// Set while `pendingQueries` wait for room in a full engine inbox.
    private var queriesStalledSince: NIODeadline? = nil
    private var mailbox: ReplyMailbox? = nil
    private var context: ChannelHandlerContext? = nil
    /// This connection's place among those waiting for their `hello` (`counters.handshakes`) until
    /// its own succeeds; nil then.
    private var handshakeTicket: UInt64? = nil
    private var handshakeTimer: Scheduled<Void>? = nil
    /// When the connection last received bytes (`NIODeadline` uptime nanoseconds).
    private var lastReceivedNanoseconds: UInt64 = 0
    /// The next idle check of an authenticated connection (`limits.idleTimeoutMilliseconds`).
    private var idleTimer: Scheduled<Void>? = nil

    init(executor: RequestExecutor, counters: ServerCounters, coreIndex: Int? = nil, metrics: LoopRequestMetrics,
         onClose: @escaping @Sendable (ObjectIdentifier) -> Void) {
        self.executor = executor
        self.counters = counters
        self.coreIndex = coreIndex
        self.metrics = metrics
        self.limits = executor.configuration.limits
        self.onClose = onClose
        self.outboundBytesBudget = executor.configuration.outboundBytesHighWaterMark
        self.turnReplyBytesMax = min(executor.configuration.outboundBytesHighWaterMark / 4, 256 << 10)
        self.catalog = executor.engine.catalog
        // Until hello succeeds a frame may be at most handshakeFrameBytesMax: an unauthenticated
        // connection cannot make the server hold a 16 MiB frame.
        decoder = FrameDecoder.forHandshake(limits: executor.configuration.limits)
        counters.connectionHandlersAlive.wrappingIncrement(ordering: .relaxed)
    }

    deinit { counters.connectionHandlersAlive.wrappingDecrement(ordering: .relaxed) }

    /// Lets go of the context when the channel's pipeline is torn down: the context holds this
    /// handler, so keeping it made a cycle that kept every closed connection's handler, context
    /// and buffers alive (issue 14 item 2: about 1.5 KB per connection, never returned). Timers
    /// and the mailbox were let go of by `channelInactive`, which comes first.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        mailbox = ReplyMailbox(eventLoop: context.eventLoop, handler: self, counters: counters)
    }

    func channelActive(context: ChannelHandlerContext) {
        counters.connectionsAccepted.wrappingIncrement(ordering: .relaxed)
        let open = counters.connectionsOpen.wrappingIncrementThenLoad(ordering: .relaxed)
        if open > limits.connectionsMax {
            counters.connectionsRefused.wrappingIncrement(ordering: .relaxed)
            closeWithNotice(.tooManyConnections, "\(limits.connectionsMax) connections are open; retry later")
        } else {
            // Until its hello succeeds the connection waits within the handshake budget, and for
            // at most handshakeTimeoutMilliseconds (issue 14 item 5).
            let (ticket, oldest) = counters.handshakes.admit(context.channel)
            handshakeTicket = ticket
            oldest?.pipeline.fireUserInboundEventTriggered(HandshakeEvictedEvent())
            let timeout = limits.handshakeTimeoutMilliseconds
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            handshakeTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout))) {
                bound.value.handshakeTimedOut(afterMilliseconds: timeout)
            }
        }
        context.fireChannelActive()
    }

    /// The connection's `hello` did not succeed in time: say so and close.
    private func handshakeTimedOut(afterMilliseconds timeout: Int) {
        guard handshakeTicket != nil, case .awaitingHello = machine.state else { return }
        counters.handshakesTimedOut.wrappingIncrement(ordering: .relaxed)
        leaveHandshakes()
        closeWithNotice(.unauthenticated, "no successful hello within \(timeout) ms (handshakeTimeoutMilliseconds)")
    }

    /// Checks for idleness after `nanoseconds` (one timer per connection, re-armed by the check
    /// itself rather than by every read).
    private func scheduleIdleCheck(inNanoseconds nanoseconds: Int64) {
        guard let context else { return }
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: .nanoseconds(max(nanoseconds, 1_000_000))) {
            bound.value.checkIdle()
        }
    }

    /// Closes an authenticated connection that received nothing for `idleTimeoutMilliseconds` and
    /// waits for no reply, with the notice `idleTimeout`; otherwise checks again when it could next
    /// have been idle that long (issue 14: idle timeout).
    private func checkIdle() {
        idleTimer = nil
        let timeout = Int64(limits.idleTimeoutMilliseconds) * 1_000_000
        guard timeout > 0, case .ready = machine.state else { return }
        if inFlight > 0 || stalled != nil || !pendingQueries.isEmpty {
            return scheduleIdleCheck(inNanoseconds: timeout)
        }
        let idle = Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds &- lastReceivedNanoseconds)
        guard idle >= timeout else { return scheduleIdleCheck(inNanoseconds: timeout - idle) }
        counters.connectionsIdleClosed.wrappingIncrement(ordering: .relaxed)
        closeWithNotice(.idleTimeout, "nothing received for \(limits.idleTimeoutMilliseconds) ms "
                        + "(idleTimeoutMilliseconds); reconnect to send more")
    }

    /// Takes the connection out of the waiting handshakes (its hello succeeded, it was evicted, or it
    /// closes). Idempotent.
    private func leaveHandshakes() {
        handshakeTimer?.cancel()
        handshakeTimer = nil
        guard let ticket = handshakeTicket else { return }
        handshakeTicket = nil
        counters.handshakes.remove(ticket)
    }

    func channelInactive(context: ChannelHandlerContext) {
        leaveHandshakes()
        idleTimer?.cancel()
        idleTimer = nil
        machine.close()
        dropUnstartedRequests()
        counters.connectionsOpen.wrappingDecrement(ordering: .relaxed)
        mailbox?.handler = nil
        cumulation = nil
        reportInboundBytes()
        reportOwedBytes()
        onClose(ObjectIdentifier(context.channel))
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard machine.acceptsFrames else { return }
        if var buffered = cumulation, buffered.readableBytes > 0 {
            cumulation = nil  // keeps `buffered` uniquely referenced: appending must not copy
            // Decoded bytes are dropped before the buffer would grow: under a steady stream that
            // never ends on a frame boundary it would otherwise keep every byte ever read.
            if buffered.readerIndex > 0 && buffered.writableBytes < bytes.readableBytes { buffered.discardReadBytes() }
            buffered.writeBuffer(&bytes)
            cumulation = buffered
        } else {
            cumulation = bytes
        }
        processFrames()
        lastReceivedNanoseconds = readNanoseconds
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        processFrames()
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is HandshakeEvictedEvent {
            // The admission that evicted it removed it already; leaving again is harmless.
            guard handshakeTicket != nil else { return }
            leaveHandshakes()
            counters.handshakesEvicted.wrappingIncrement(ordering: .relaxed)
            closeWithNotice(.tooManyConnections, "\(limits.unauthenticatedConnectionsMax) connections are waiting "
                            + "for their hello (unauthenticatedConnectionsMax); this, the oldest, is closed")
            return
        }
        if event is ServerShutdownEvent {
            machine.drain()
            if inFlight == 0 { closeWithNotice(.shuttingDown, "the server is shutting down") }
            return
        }
        if case ChannelEvent.inputClosed = event {
            // The peer sent its last byte: the requests read so far are answered, then the
            // connection closes (a partial frame left over was cut short and is never applied).
            inputClosed = true
            cumulation = nil
            reportInboundBytes()
            closeIfInputClosedAndAnswered()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Closes once the peer has closed its side and every request it sent has its reply written.
    private func closeIfInputClosedAndAnswered() {
        guard inputClosed, inFlight == 0, stalled == nil, pendingQueries.isEmpty, let context else { return }
        if case .closed = machine.state { return }
        machine.close()
        flushInlineReplies()
        // Closes after the writes queued before it (the promise completes in write order).
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        machine.close()
        context.close(promise: nil)
    }

    /// Outbound `read()`: held back while the connection must not take more work.
    func read(context: ChannelHandlerContext) {
        if isBlocked {
            if !readHeldBack { counters.readPauses.wrappingIncrement(ordering: .relaxed) }
            readHeldBack = true
        } else {
            context.read()
        }
    }

    private var isBlocked: Bool {
        guard let context else { return true }
        return yieldedTurn || stalled != nil || queriesStalledSince != nil || inFlight >= limits.inFlightRequestsMax
            || replyBytesOwed >= outboundBytesBudget || !context.channel.isWritable || !machine.acceptsFrames
    }

    /// Forgets the requests read but not handed to the engine yet (this read's queries, gathered
    /// for one batch at its end): the connection is closing and nobody will read their replies.
    /// They leave `server.requests.inFlight`, where they were counted when read.
    private func dropUnstartedRequests() {
        inFlight -= pendingQueries.count
        for pending in pendingQueries { replyBytesOwed -= pending.replyBytesOwed }
        replyBytesOwed -= inlineReplyBytesOwed
        inlineReplyBytesOwed = 0
        pendingQueries.removeAll()
        queriesStalledSince = nil
        inlineRequests.removeAll()
        inlineBatch.removeAll()
    }

    // MARK: - Frames

    /// Decodes and handles buffered frames while the connection may take work, then lets reading go on.
    private func processFrames() {
        guard let context else { return }
        readNanoseconds = NIODeadline.now().uptimeNanoseconds
        turnReplyBytes = 0
        // Whether the loop stopped with frames possibly left (blocked, or the turn's share used).
        var stoppedEarly = false
        while var buffer = cumulation {
            if isBlocked || turnReplyBytes >= turnReplyBytesMax {
                stoppedEarly = true
                break
            }
            let frame: Frame?
            do {
                frame = try decoder.next(from: &buffer)
                cumulation = buffer
            } catch {
                cumulation = nil
                dropUnstartedRequests()
                closeWithNotice(ErrorReply(error))
                return
            }
            guard let frame else { break }
            counters.framesReceived.wrappingIncrement(ordering: .relaxed)
            handle(frame)
        }
        noteOwedPeak()
        flushInlineReplies()
        if let buffer = cumulation, buffer.readableBytes == 0 { cumulation = nil }
        reportInboundBytes()
        submitPendingQueries()
        reportOwedBytes()
        // This turn took its share of reply work, or filled the budget with replies written just
        // now: the rest of the frames wait for the loop's next turn, after the other connections
        // it has events for, so one connection's large replies never hold up everyone else's.
        if stoppedEarly, cumulation != nil, !isBlocked {
            yieldTurn(context: context)
            return
        }
        if readHeldBack && !isBlocked {
            readHeldBack = false
            context.read()
        }
    }

    /// Lets the event loop serve its other connections before this one's remaining frames: goes on
    /// in a task scheduled `yieldedTurnDelay` ahead. (A task queued with `execute` runs after the
    /// I/O events the loop has in hand, but a loop runs every queued task, even ones queued by
    /// those tasks, before it polls its sockets again: from the second yield on, this connection's
    /// turns ran back to back and nobody else's new input was read in between.)
    private func yieldTurn(context: ChannelHandlerContext) {
        yieldedTurn = true
        counters.turnsYielded.wrappingIncrement(ordering: .relaxed)
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: Self.yieldedTurnDelay) {
            bound.value.yieldedTurn = false
            bound.value.processFrames()
        }
    }

    /// Brings `server.bytes.replyOwed` up to date with `replyBytesOwed` (one atomic add when it
    /// changed), and its peak.
    private func reportOwedBytes() {
        noteOwedPeak()
        guard replyBytesOwed != replyBytesOwedReported else { return }
        counters.replyBytesOwed.wrappingIncrement(by: replyBytesOwed - replyBytesOwedReported, ordering: .relaxed)
        replyBytesOwedReported = replyBytesOwed
    }

    /// Raises `server.bytes.replyOwedPeak` when this connection owes more than it ever did (a plain
    /// comparison otherwise).
    @inline(__always) private func noteOwedPeak() {
        assert(replyBytesOwed >= 0 && inlineReplyBytesOwed >= 0 && inlineReplyBytesOwed <= replyBytesOwed,
               "owed reply bytes \(replyBytesOwed), inline \(inlineReplyBytesOwed)")
        guard replyBytesOwed > replyBytesOwedPeak else { return }
        replyBytesOwedPeak = replyBytesOwed
        ServerCounters.raise(counters.replyBytesOwedPeak, to: replyBytesOwed)
    }

    /// Brings `server.bytes.inboundBuffered` (and its peak) up to date with `cumulation`.
    private func reportInboundBytes() {
        let held = cumulation?.capacity ?? 0
        guard held != inboundBytesReported else { return }
        counters.inboundBytesBuffered.wrappingIncrement(by: held - inboundBytesReported, ordering: .relaxed)
        inboundBytesReported = held
        ServerCounters.raise(counters.inboundBytesBufferedPeak, to: held)
    }

    private func handle(_ frame: Frame) {
        switch machine.action(for: frame.opcode) {
        case .ignore:
            return
        case .reject(let code, let message, let close):
            writeError(code, message, opcode: frame.opcode, requestID: frame.requestID, thenClose: close)
        case .handshake, .execute:
            if frame.flags.isEmpty, let reason = executor.notOffered(frame.opcode) {
                writeError(.notImplemented, reason, opcode: frame.opcode, requestID: frame.requestID, thenClose: false)
                return
            }
            let request: Request
            do {
                request = try Request(decoding: frame, limits: limits)
            } catch {
                let reply = ErrorReply(error)
                // A hello that fails for any reason closes: the connection never became usable (§3).
                writeError(reply.code, reply.message, opcode: frame.opcode, requestID: frame.requestID,
                           thenClose: error.closesConnection || frame.opcode == .hello)
                return
            }
            if case .hello(let hello) = request {
                let (writer, roles) = executor.handshake(hello, requestID: frame.requestID, coreIndex: coreIndex)
                if let roles {
                    machine.authenticated(as: roles)
                    decoder = FrameDecoder(limits: limits)
                    leaveHandshakes()
                    lastReceivedNanoseconds = readNanoseconds
                    if limits.idleTimeoutMilliseconds > 0 {
                        scheduleIdleCheck(inNanoseconds: Int64(limits.idleTimeoutMilliseconds) * 1_000_000)
                    }
                }
                write([writer], thenClose: roles == nil)
                return
            }
            start(request, opcode: frame.opcode, requestID: frame.requestID,
                  since: NIODeadline.uptimeNanoseconds(readNanoseconds))
        }
    }

    /// Hands a request to the executor; a full inbox stalls the connection and retries shortly.
    /// Queries wait in `pendingQueries` for the end of the read (`submitPendingQueries()`).
    private func start(_ request: Request, opcode: Opcode, requestID: UInt32, since: NIODeadline) {
        guard let context, let mailbox else { return }
        if case .query(let query) = request {
            let owed = ReplyEstimate.bytes(of: query, catalog: catalog)
            replyBytesOwed += owed
            turnReplyBytes += owed
            if coreIndex != nil && answerInline(query, requestID: requestID) {
                inlineReplyBytesOwed += owed
                return
            }
            inFlight += 1
            // One clock read per read's worth of queries: they are submitted together.
            let started = pendingQueries.first?.startNanoseconds ?? readNanoseconds
            pendingQueries.append(PendingQuery(request: query, requestID: requestID, startNanoseconds: started,
                                               kind: QueryRequestKind(query), replyBytesOwed: owed))
            return
        }
        let owed = ReplyEstimate.bytes(of: request)
        replyBytesOwed += owed
        turnReplyBytes += owed
        if let coreIndex, performInline(request, opcode: opcode, requestID: requestID, onCore: coreIndex, owed: owed) {
            return
        }
        inFlight += 1
        let outcome = executor.execute(request, requestID: requestID, opcode: opcode, eventLoop: context.eventLoop) {
            mailbox.post($0, owedBytes: owed)
        }
        guard case .inboxFull = outcome else { return }
        inFlight -= 1
        replyBytesOwed -= owed
        counters.inboxFullRetries.wrappingIncrement(ordering: .relaxed)
        let waited = NIODeadline.now() - since
        if waited > .milliseconds(Int64(executor.configuration.inboxWaitMillisecondsMax)) {
            writeError(.serverBusy, "the engine is saturated; retry after a short delay", opcode: opcode,
                       requestID: requestID, thenClose: false)
            return
        }
        stalled = Stalled(request: request, opcode: opcode, requestID: requestID, since: since)
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .microseconds(200)) { loopBound.value.retryStalled() }
    }

    /// Submits the queries gathered from this read as one engine batch. On a full inbox they stay
    /// queued (reading pauses) and are retried shortly, until `inboxWaitMillisecondsMax`, after which
    /// each gets `serverBusy`.
    private func submitPendingQueries() {
        guard !pendingQueries.isEmpty, let context, let mailbox else { return }
        let outcome: ExecuteOutcome
        outcome = executor.executeQueries(pendingQueries) { mailbox.post($0) }
        guard case .inboxFull = outcome else {
            pendingQueries.removeAll(keepingCapacity: true)
            queriesStalledSince = nil
            return
        }
        counters.inboxFullRetries.wrappingIncrement(ordering: .relaxed)
        let since = queriesStalledSince ?? .now()
        if NIODeadline.now() - since > .milliseconds(Int64(executor.configuration.inboxWaitMillisecondsMax)) {
            let refused = pendingQueries
            pendingQueries.removeAll(keepingCapacity: true)
            queriesStalledSince = nil
            inFlight -= refused.count
            for query in refused {
                replyBytesOwed -= query.replyBytesOwed
                writeError(.serverBusy, "the engine is saturated; retry after a short delay", opcode: .query,
                           requestID: query.requestID, thenClose: false)
            }
            return
        }
        queriesStalledSince = since
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .microseconds(200)) {
            let handler = loopBound.value
            handler.queriesStalledSince.map { _ in handler.processFrames() }
        }
    }

    private func retryStalled() {
        guard let waiting = stalled else { return }
        stalled = nil
        guard machine.acceptsFrames || inFlight > 0 else { return }
        start(waiting.request, opcode: waiting.opcode, requestID: waiting.requestID, since: waiting.since)
        processFrames()
    }

    // MARK: - Inline execution (thread-per-core)

    /// Answers a query on this loop's own core, when every item is for that core; the reply goes
    /// into `inlineReplies`. False (nothing done) when some item is for another core.
    private func answerInline(_ query: QueryRequest, requestID: UInt32) -> Bool {
        guard let coreIndex else { return false }
        guard let answers = executor.appendInline(query, onCore: coreIndex, to: &inlineBatch) else { return false }
        inlineRequests.append(InlineRequest(request: query, requestID: requestID, answers: answers))
        return true
    }

    /// Performs a reserve, commit or release whose home is this loop's own core, during the read.
    /// Answered at once (no journal to wait for, a refusal, a replay), its reply joins this read's
    /// inline replies; otherwise it is in flight and its reply comes through the mailbox. False
    /// (nothing done) for every other request and for reservations homed on another core.
    private func performInline(_ request: Request, opcode: Opcode, requestID: UInt32, onCore core: Int,
                               owed: Int) -> Bool {
        switch request {
        case .reserve, .commit, .release: break
        default: return false
        }
        guard let context, let mailbox else { return false }
        lastInlineOperationToken &+= 1
        let token = lastInlineOperationToken
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let catalog = executor.engine.catalog
        let completion: ReservationCompletion = { answer in
            if eventLoop.inEventLoop, handler.value.inlineOperationToken == token {
                handler.value.appendInlineReply(answer, opcode: opcode, requestID: requestID, owed: owed)
            } else {
                mailbox.post({
                    RequestExecutor.encodeReservationReply(answer, opcode: opcode, requestID: requestID,
                                                           catalog: catalog, into: &$0)
                }, owedBytes: owed)
            }
        }
        inlineOperationToken = token
        inlineOperationAnswered = false
        let performed = executor.performReservationInline(request, onCore: core, completion: completion)
        inlineOperationToken = 0
        guard performed else { return false }
        if !inlineOperationAnswered {
            // Executed during the read; its reply waits (for the journal, or other cores).
            inFlight += 1
            counters.requestsInline.wrappingIncrement(ordering: .relaxed)
        }
        return true
    }

    /// The reply of an inline reservation operation answered before it returned.
    private func appendInlineReply(_ answer: ReservationReply, opcode: Opcode, requestID: UInt32, owed: Int) {
        guard let context else { return }
        inlineReplyBytesOwed += owed
        var buffer = inlineReplies.take() ?? replyBuffer(capacity: 256, context: context)
        RequestExecutor.encodeReservationReply(answer, opcode: opcode, requestID: requestID,
                                               catalog: executor.engine.catalog, into: &buffer)
        inlineReplies = buffer
        inlineOperationAnswered = true
        inlineOperationsAnswered += 1
    }

    /// Answers this read's inline queries in one pass over the core's cells and encodes their replies.
    private func answerInlineRequests() {
        guard !inlineRequests.isEmpty, let coreIndex, let context else { return }
        let answered = executor.engine.answerInline(&inlineBatch, onCore: coreIndex)
        assert(answered, "inline queries on a loop that does not host their core")
        // Taken out of the property while written: a second reference would copy it on write.
        var buffer = inlineReplies.take() ?? replyBuffer(capacity: 32 * inlineRequests.count + 64, context: context)
        let catalog = executor.engine.catalog
        // The batch and requests are moved into locals for the loop: read from the properties, each
        // request's encoding copied the batch's four arrays (about 200 instructions a query).
        var batch = InlineQueryBatch()
        swap(&batch, &inlineBatch)
        var requests: [InlineRequest] = []
        swap(&requests, &inlineRequests)
        for inline in requests {
            RequestExecutor.encodeQueryReply(batch, answers: inline.answers, request: inline.request,
                                             requestID: inline.requestID, catalog: catalog,
                                             frameBytesMax: limits.frameBytesMax, into: &buffer)
            inlineKinds[QueryRequestKind(inline.request)] += 1
        }
        inlineReplies = buffer
        requests.removeAll(keepingCapacity: true)
        batch.removeAll()
        swap(&batch, &inlineBatch)
        swap(&requests, &inlineRequests)
    }

    /// Answers and writes the queries executed inline during this read, with one flush, and counts
    /// and times them (one clock read).
    private func flushInlineReplies() {
        answerInlineRequests()
        replyBytesOwed -= inlineReplyBytesOwed
        inlineReplyBytesOwed = 0
        guard let buffer = inlineReplies.take(), let context else { return }
        let answered = inlineKinds.total + inlineOperationsAnswered
        inlineOperationsAnswered = 0
        metrics.deliveryNanoseconds = NIODeadline.now().uptimeNanoseconds
        metrics.recordQueries(inlineKinds, startNanoseconds: readNanoseconds)
        inlineKinds = QueryKindCounts()
        counters.requestsAnswered.wrappingIncrement(by: UInt64(answered), ordering: .relaxed)
        counters.requestsInline.wrappingIncrement(by: UInt64(answered), ordering: .relaxed)
        let channel = context.channel  // an existential: copied once, not per use
        guard channel.isActive else { return }
        metrics.recordFramesSent(in: buffer, from: buffer.readerIndex)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        if buffer.capacity <= Self.spareReplyBufferBytesMax { spareReplyBuffer = buffer }
        // The kernel did not take it all (rare on the inline path): sampled for the stats.
        if !channel.isWritable, let queued = try? channel.syncOptions?.getOption(.bufferedWritableBytes) {
            ServerCounters.raise(counters.outboundBytesBufferedPeak, to: queued)
        }
    }

    /// An empty buffer for this read's inline replies: the spare one cleared when there is one
    /// (`spareReplyBuffer`), else a new one of `capacity` bytes.
    private func replyBuffer(capacity: Int, context: ChannelHandlerContext) -> ByteBuffer {
        guard var buffer = spareReplyBuffer.take() else { return context.channel.allocator.buffer(capacity: capacity) }
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    // MARK: - Writing

    /// Writes replies that came back from the engine (called on the event loop by the mailbox):
    /// reply writers, and query replies the answering core encoded already.
    /// `owedBytes`: the `ReplyEstimate`s of all of them, which the connection stops owing.
    func deliver(_ writers: [ReplyWriter], encoded: [EncodedQueryReplies] = [], owedBytes: Int) {
        let count = writers.count + encoded.reduce(0) { $0 + $1.count }
        inFlight -= count
        replyBytesOwed -= owedBytes
        reportOwedBytes()
        assert(inFlight >= 0, "more replies than requests")
        counters.requestsAnswered.wrappingIncrement(by: UInt64(count), ordering: .relaxed)
        metrics.deliveryNanoseconds = NIODeadline.now().uptimeNanoseconds
        if !encoded.isEmpty { writeEncoded(encoded) }
        if !writers.isEmpty { write(writers, thenClose: false) }
        if case .draining = machine.state, inFlight == 0 {
            closeWithNotice(.shuttingDown, "the server is shutting down")
            return
        }
        processFrames()
        closeIfInputClosedAndAnswered()
    }

    /// Writes query replies encoded elsewhere (no copy: each buffer is one write, one flush for all)
    /// and records their latencies.
    private func writeEncoded(_ encoded: [EncodedQueryReplies]) {
        guard let context, context.channel.isActive else { return }
        if inlineReplies != nil || !inlineRequests.isEmpty { flushInlineReplies() }
        for replies in encoded {
            metrics.recordQueries(replies.kinds, startNanoseconds: replies.startNanoseconds)
            metrics.recordFramesSent(in: replies.bytes, from: replies.bytes.readerIndex)
            context.write(wrapOutboundOut(replies.bytes), promise: nil)
        }
        context.flush()
        if let queued = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes) {
            ServerCounters.raise(counters.outboundBytesBufferedPeak, to: queued)
        }
    }

    private func write(_ writers: [ReplyWriter], thenClose: Bool) {
        guard let context, context.channel.isActive else { return }
        // Replies executed inline earlier in this read go first, in the same flush.
        if inlineReplies != nil || !inlineRequests.isEmpty { flushInlineReplies() }
        var buffer = context.channel.allocator.buffer(capacity: 512)
        for writer in writers { writer(&buffer) }
        metrics.recordFramesSent(in: buffer, from: buffer.readerIndex)
        if thenClose {
            machine.close()
            let promise = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: promise)
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            promise.futureResult.whenComplete { _ in loopBound.value.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        // What the kernel did not take at once stays queued here: sampled for the stats.
        if let queued = try? context.channel.syncOptions?.getOption(.bufferedWritableBytes) {
            ServerCounters.raise(counters.outboundBytesBufferedPeak, to: queued)
        }
    }

    private func writeError(_ code: ErrorCode, _ message: String, opcode: Opcode, requestID: UInt32, thenClose: Bool) {
        counters.errorsSent.wrappingIncrement(ordering: .relaxed)
        write([RequestExecutor.error(code, message, opcode: opcode, requestID: requestID)], thenClose: thenClose)
    }

    private func closeWithNotice(_ code: ErrorCode, _ message: String) {
        closeWithNotice(ErrorReply(code: code, message: message))
    }

    private func closeWithNotice(_ notice: ErrorReply) {
        counters.errorsSent.wrappingIncrement(ordering: .relaxed)
        write([{ Reply.encodeNotice(notice, into: &$0) }], thenClose: true)
    }
}
