import ATPProtocol
import NIOCore

/// A request on its way out, with the callback that gets its reply.
struct OutboundRequest {
    var request: Request
    var completion: @Sendable (Result<Reply, ATPClientError>) -> Void
}

/// The client side of a connection: numbers requests, writes them, decodes reply frames and calls
/// each request's completion (on the event loop). Replies may come back in any order.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutboundRequest
    typealias OutboundOut = ByteBuffer

    private var decoder: FrameDecoder
    private var cumulation: ByteBuffer? = nil
    private var pending: [UInt32: (opcode: Opcode, completion: @Sendable (Result<Reply, ATPClientError>) -> Void)] = [:]
    private var nextRequestID: UInt32 = 1
    private var failure: ATPClientError? = nil
    private var isReading = false
    private var hasUnflushedWrites = false

    init(frameBytesMax: Int) {
        decoder = FrameDecoder(frameBytesMax: frameBytesMax)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outbound = unwrapOutboundIn(data)
        if let failure {
            outbound.completion(.failure(failure))
            promise?.succeed()
            return
        }
        let id = nextRequestID
        nextRequestID = nextRequestID == .max ? 1 : nextRequestID + 1
        pending[id] = (outbound.request.opcode, outbound.completion)
        var buffer = context.channel.allocator.buffer(capacity: 64)
        outbound.request.encode(requestID: id, into: &buffer)
        // The request is ours now: a failed write fails the connection, and `failAll` answers it.
        context.write(wrapOutboundOut(buffer), promise: nil)
        promise?.succeed()
        hasUnflushedWrites = true
    }

    /// Flushes now, unless replies are being read: requests sent from completions while a read is
    /// processed leave with one flush at `channelReadComplete` (one syscall for many requests).
    func flush(context: ChannelHandlerContext) {
        if isReading { return }
        hasUnflushedWrites = false
        context.flush()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        isReading = false
        if hasUnflushedWrites {
            hasUnflushedWrites = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        isReading = true
        var bytes = unwrapInboundIn(data)
        if cumulation == nil || cumulation!.readableBytes == 0 {
            cumulation = bytes
        } else {
            cumulation!.writeBuffer(&bytes)
        }
        while var buffer = cumulation {
            let frame: Frame?
            do {
                frame = try decoder.next(from: &buffer)
                cumulation = buffer
            } catch {
                fail(.protocolViolation("\(error)"), context: context)
                return
            }
            guard let frame else { break }
            deliver(frame, context: context)
        }
    }

    private func deliver(_ frame: Frame, context: ChannelHandlerContext) {
        let reply: Reply
        do {
            reply = try Reply(decoding: frame)
        } catch {
            fail(.protocolViolation("\(error)"), context: context)
            return
        }
        if frame.opcode == .notice {
            if case .error(let notice) = reply { fail(.server(notice), context: context) }
            return
        }
        guard let waiting = pending.removeValue(forKey: frame.requestID) else {
            fail(.protocolViolation("reply to unknown request id \(frame.requestID)"), context: context)
            return
        }
        if case .error(let error) = reply {
            waiting.completion(.failure(.server(error)))
        } else {
            waiting.completion(.success(reply))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(failure ?? .connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(.protocolViolation("\(error)"), context: context)
    }

    private func fail(_ error: ATPClientError, context: ChannelHandlerContext) {
        if failure == nil { failure = error }
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: ATPClientError) {
        if failure == nil { failure = error }
        let waiting = pending
        pending.removeAll()
        for (_, entry) in waiting { entry.completion(.failure(error)) }
    }
}
