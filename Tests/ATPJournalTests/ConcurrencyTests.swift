@testable import ATPJournal
import Dispatch
import Foundation
import Synchronization
import Testing

/// Many streams appended to at once from their own threads, with completions registered from the
/// appenders and from other threads: each runs exactly once, in LSN order per stream.
@Suite struct ConcurrencyTests {
    static let streamCount = 4
    static let recordsPerStream = 3000

    @Test func appendersOnDifferentStreamsGetEveryCompletionOnceInOrder() throws {
        let temporary = try TemporaryDirectory()
        defer { temporary.remove() }
        var configuration = JournalConfiguration()
        configuration.recordPayloadBytesMax = 1024
        configuration.bufferedBytesMax = 16 << 10  // small: appenders meet `.full` and retry
        configuration.segmentBytesMax = 64 << 10   // and segments rotate under load
        let streams = try (0 ..< Self.streamCount).map {
            try JournalStream.open(directory: temporary.stream($0), streamIndex: $0, configuration: configuration)
        }
        let delivered = (0 ..< Self.streamCount).map { _ in LSNLog() }
        let observed = (0 ..< Self.streamCount).map { _ in LSNLog() }
        let fullCount = LSNLog()

        // Appenders (one per stream) and observers (one per stream, registering from another
        // thread), each on its own OS thread.
        let group = DispatchGroup()
        for index in 0 ..< Self.streamCount * 2 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
            let streamIndex = index % Self.streamCount
            let stream = streams[streamIndex]
            if index < Self.streamCount {
                for lsn in UInt64(1) ... UInt64(Self.recordsPerStream) {
                    let payload = Journal.payload(lsn: lsn, bytes: Int(lsn % 200), salt: UInt8(streamIndex))
                    while true {
                        let result = stream.append(kind: UInt8(streamIndex), payload: payload)
                        if result == .appended(lsn: lsn) { break }
                        precondition(result == .full, "unexpected \(result)")
                        fullCount.append(0)
                        sched_yield()
                    }
                    stream.whenDurable(lsn) { result in
                        if case .success(let durable) = result { delivered[streamIndex].append(durable) }
                    }
                }
            } else {
                var next: UInt64 = 1
                while next <= UInt64(Self.recordsPerStream) {
                    let appended = stream.lastAppendedLSN
                    while next <= appended {
                        stream.whenDurable(next) { result in
                            if case .success(let durable) = result { observed[streamIndex].append(durable) }
                        }
                        next += 7
                    }
                    sched_yield()
                }
            }
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success, "appenders and observers finished")
        for stream in streams { try stream.close() }

        for streamIndex in 0 ..< Self.streamCount {
            #expect(delivered[streamIndex].values == Array(1 ... UInt64(Self.recordsPerStream)),
                    "stream \(streamIndex): every completion once, in LSN order")
            #expect(observed[streamIndex].values == Array(stride(from: 1, through: UInt64(Self.recordsPerStream), by: 7)),
                    "stream \(streamIndex): completions from another thread too")
            let records = try Journal.readAll(temporary.stream(streamIndex), streamIndex: streamIndex)
            #expect(records.count == Self.recordsPerStream)
            #expect(records.allSatisfy {
                $0.kind == UInt8(streamIndex)
                    && $0.payload == Journal.payload(lsn: $0.lsn, bytes: Int($0.lsn % 200), salt: UInt8(streamIndex))
            }, "stream \(streamIndex): every record intact")
            #expect(streams[streamIndex].segments.count > 1)
        }
        print("ConcurrencyTests: appends met a full buffer \(fullCount.values.count) times")
    }
}

/// LSNs appended from any thread.
final class LSNLog: Sendable {
    private let lsns = Mutex<[UInt64]>([])
    func append(_ lsn: UInt64) { lsns.withLock { $0.append(lsn) } }
    var values: [UInt64] { lsns.withLock { $0 } }
}
