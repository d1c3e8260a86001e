import ATPProtocol
import NIOCore
import NIOPosix
import Synchronization

/// A loopback TCP connection that sends hand-made bytes and reads frames back without any of
/// ATPClient's checks, so tests can choose request ids, break the protocol on purpose, stop reading
/// (`autoRead: false`), or hang up in the middle of a frame. Every wait is bounded by a timeout.
final class RawClient: Sendable {
    struct Timeout: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(what)" }
    }

    /// Bytes received so far and whether the server hung up; filled on the client's event loop.
    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer

        struct State {
            var buffer = ByteBuffer()
            var decoder = FrameDecoder(frameBytesMax: 1 << 30)
            var isClosed = false
            var bytesReceived = 0
        }

        let state = Mutex(State())

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            state.withLock {
                $0.bytesReceived += bytes.readableBytes
                $0.buffer.writeBuffer(&bytes)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.withLock { $0.isClosed = true }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            // A reset from the server ends the connection like a close.
            state.withLock { $0.isClosed = true }
            context.close(promise: nil)
        }
    }

    let channel: Channel
    private let collector: Collector

    private init(channel: Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    /// Connects to the server on loopback. With `autoRead: false` nothing is read until
    /// `startReading()`: replies pile up in the kernel and the server sees a slow reader.
    static func connect(port: Int, autoRead: Bool = true) async throws -> RawClient {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.autoRead, value: autoRead)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, collector: collector)
    }

    // MARK: - Sending

    /// Writes bytes and waits until they are handed to the kernel.
    /// Shuts down the sending side (TCP half-close): the server sees the end of input, the
    /// replies still come back.
    func closeOutput() async throws {
        try await channel.close(mode: .output)
    }

    /// Writes `bytes` and shuts down the sending side right behind them, in one turn of the
    /// client's event loop: the server usually finds the data and the end of input in one read.
    func sendThenCloseOutput(_ bytes: [UInt8]) async throws {
        let channel = self.channel
        try await channel.eventLoop.flatSubmit {
            channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil)
            return channel.close(mode: .output)
        }.get()
    }

    func send(_ bytes: [UInt8]) async throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try await channel.writeAndFlush(buffer).get()
    }

    /// Writes a buffer and waits until it is handed to the kernel.
    func send(_ buffer: ByteBuffer) async throws {
        try await channel.writeAndFlush(buffer).get()
    }

    /// Writes one well-formed request with the given id.
    func send(_ request: Request, id: UInt32) async throws {
        try await send(Wire.frame(request, id: id))
    }

    /// Queues bytes without waiting for them to leave (for floods against a server that stops reading).
    func sendWithoutWaiting(_ buffer: ByteBuffer) {
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Lets a connection made with `autoRead: false` read again.
    func startReading() async throws {
        try await channel.setOption(.autoRead, value: true).get()
    }

    // MARK: - Receiving

    /// The next frame from the server, or nil when the server closed the connection and no whole
    /// frame is left. Throws `Timeout` when neither happens in time.
    func nextFrame(timeoutSeconds: Double = 10) async throws -> Frame? {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutSeconds * 1000))
        while true {
            let (frame, closed) = try collector.state.withLock { state throws -> (Frame?, Bool) in
                var buffer = state.buffer
                let frame = try state.decoder.next(from: &buffer)
                state.buffer = buffer
                if state.buffer.readableBytes == 0 { state.buffer.clear() }
                return (frame, state.isClosed)
            }
            if let frame { return frame }
            if closed { return nil }
            if ContinuousClock.now > deadline { throw Timeout(what: "a frame") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// The next frame decoded as a reply. Throws `Timeout`, a decoding error, or `Timeout` when the
    /// connection closed instead.
    func nextReply(timeoutSeconds: Double = 10) async throws -> (frame: Frame, reply: Reply) {
        guard let frame = try await nextFrame(timeoutSeconds: timeoutSeconds) else {
            throw Timeout(what: "a reply (the connection closed)")
        }
        return (frame, try Reply(decoding: frame))
    }

    /// Waits until the server has closed the connection. Returns false on timeout.
    func waitUntilClosed(timeoutSeconds: Double = 10) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutSeconds * 1000))
        while ContinuousClock.now < deadline {
            if collector.state.withLock({ $0.isClosed }) { return true }
            try await Task.sleep(for: .milliseconds(2))
        }
        return collector.state.withLock { $0.isClosed }
    }

    /// Whether the server closed the connection (or it was reset).
    var isClosed: Bool { collector.state.withLock { $0.isClosed } }

    /// Bytes read from the server so far.
    var bytesReceived: Int { collector.state.withLock { $0.bytesReceived } }

    /// Sends `hello` (id `id`) and returns the server's answer.
    func hello(token: String, versionMin: UInt16 = 1, versionMax: UInt16 = 1, id: UInt32 = 1) async throws -> Reply {
        try await send(.hello(HelloRequest(versionMin: versionMin, versionMax: versionMax, token: Array(token.utf8),
                                           clientName: "raw-test")), id: id)
        let (frame, reply) = try await nextReply()
        precondition(frame.requestID == id || frame.opcode == .notice, "hello answered with id \(frame.requestID)")
        return reply
    }

    /// Closes our side.
    func close() async {
        try? await channel.close()
    }
}

/// Builders for frames, well-formed and not.
enum Wire {
    /// One request frame as the codec encodes it.
    static func frame(_ request: Request, id: UInt32) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        request.encode(requestID: id, into: &buffer)
        return buffer
    }

    /// The bytes of one request frame.
    static func bytes(_ request: Request, id: UInt32) -> [UInt8] {
        let buffer = frame(request, id: id)
        return Array(buffer.readableBytesView)
    }

    /// A hand-made frame: the length field says `length` (by default 6 + payload bytes).
    static func raw(opcode: UInt8, flags: UInt8 = 0, id: UInt32, payload: [UInt8] = [], length: UInt32? = nil)
        -> [UInt8]
    {
        var bytes: [UInt8] = []
        bytes.append(contentsOf: le(length ?? UInt32(6 + payload.count)))
        bytes.append(opcode)
        bytes.append(flags)
        bytes.append(contentsOf: le(id))
        bytes.append(contentsOf: payload)
        return bytes
    }

    /// Little-endian bytes of an integer.
    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    /// A `name` field: u8 length, then the bytes.
    static func name(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count)] + bytes }

    /// A `name` field from a string.
    static func name(_ string: String) -> [UInt8] { name(Array(string.utf8)) }
}

extension Reply {
    /// The error code when this is an error reply.
    var errorCode: ErrorCode? {
        if case .error(let error) = self { return error.code }
        return nil
    }
}

extension Wire {
    /// A query frame of exactly `totalBytes` bytes (at least 18): SKU-wide items with made-up SKU
    /// names whose lengths add up to the size. Returns the bytes and the number of items.
    static func queryFrame(totalBytes: Int, id: UInt32) -> (bytes: [UInt8], items: Int) {
        precondition(totalBytes >= 18, "a query frame with one item is at least 18 bytes")
        var items: [[UInt8]] = []
        var left = totalBytes - 15  // header 10, options 1, count 4
        while left > 0 {
            // An item is kind (1) + name length (1) + 1...64 name bytes: 3...66 bytes.
            var size = min(66, left)
            if left - size > 0 && left - size < 3 { size = left - 3 }
            let name = Array("Q\(items.count)-".utf8) + [UInt8](repeating: UInt8(ascii: "x"), count: 64)
            items.append([2] + Wire.name(Array(name.prefix(size - 2))))
            left -= size
        }
        let payload = [0] + le(UInt32(items.count)) + items.flatMap { $0 }
        let frame = raw(opcode: Opcode.query.rawValue, id: id, payload: payload)
        precondition(frame.count == totalBytes, "query frame is \(frame.count) bytes, not \(totalBytes)")
        return (frame, items.count)
    }

    /// The first `bytes` bytes of a frame whose length field says `frameBytes` (header first, the
    /// body never sent): enough for the server to judge the length.
    static func header(frameBytes: Int, opcode: UInt8, id: UInt32) -> [UInt8] {
        le(UInt32(frameBytes - 4)) + [opcode, 0] + le(id)
    }
}

extension RawClient {
    /// Stops reading from the socket (after a `hello`, say): replies pile up in the kernel and the
    /// server sees a client that does not read. `startReading()` resumes.
    func stopReading() async throws {
        try await channel.setOption(.autoRead, value: false).get()
    }
}
