import ATPLedger
import NIOCore
import NIOPosix

/// The event loops of a thread-per-core server (`ServerConfiguration.threadPerCore`): one per core,
/// created before the engine so that the engine's core `i` runs on loop `i` (`coreHosts`). A
/// connection accepted on loop `i` executes requests for core `i`'s shards where it reads them.
public final class ServerEventLoops: Sendable {
    let group: MultiThreadedEventLoopGroup
    private let loops: [any EventLoop]

    /// Starts `count` event-loop threads.
    public init(count: Int) {
        precondition(count >= 1, "at least one loop")
        group = MultiThreadedEventLoopGroup(numberOfThreads: count)
        var iterator = group.makeIterator()
        var loops: [any EventLoop] = []
        while let loop = iterator.next() { loops.append(loop) }
        precondition(loops.count == count, "the group has \(loops.count) loops, not \(count)")
        self.loops = loops
    }

    /// One host per loop, in core order: pass them to `Engine(configuration:hosts:)` (or to
    /// `DurableLedger.open`).
    public var coreHosts: [any CoreHost] { loops.map { EventLoopCoreHost(loop: $0) } }

    /// Number of loops (= cores).
    public var count: Int { loops.count }

    /// The loop of core `index`.
    func loop(ofCore index: Int) -> any EventLoop { loops[index] }

    /// The core that `loop` hosts, or nil when it is not one of these loops.
    func coreIndex(of loop: any EventLoop) -> Int? { loops.firstIndex { $0 === loop } }

    /// Stops the loops; after the engine has shut down (its cores run on them).
    func shutdown() { try? group.syncShutdownGracefully() }
}

/// A SwiftNIO event loop as the host of one engine core.
struct EventLoopCoreHost: CoreHost {
    let loop: any EventLoop

    func execute(_ work: @escaping @Sendable () -> Void) { loop.execute(work) }

    func execute(afterNanoseconds nanoseconds: UInt64, _ work: @escaping @Sendable () -> Void) {
        loop.scheduleTask(in: .nanoseconds(Int64(clamping: nanoseconds))) { work() }
    }

    var isCurrentThread: Bool { loop.inEventLoop }
}
