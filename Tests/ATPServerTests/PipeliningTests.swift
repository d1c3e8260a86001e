import ATPClient
import ATPLedger
import ATPProtocol
import NIOCore
import Synchronization
import Testing
import ATPTestSupport

/// Many requests in flight on one connection: every request gets exactly one reply, matched by its
/// request id, and replies may overtake each other (docs/PROTOCOL.md §2, "Pipelining").
@Suite struct PipeliningTests {
    /// What a pipelined request was and how to check its answer.
    enum Sent {
        case ping(nonce: UInt64)
        case query(sku: String, sellable: Int64)
        case reserve(id: String)
        case ingest(sku: String)
        case channelShow
        case stats
        case unknownOpcode
    }


    static func seed(_ client: ATPConnection) async throws {
        var events = (0..<50).map { WireEvent(kind: .receive, sku: "P-\($0)", location: "L", quantity: Int64($0 + 1), sequence: UInt64($0 + 1)) }
        events += (0..<10).map { WireEvent(kind: .receive, sku: "Q-\($0)", location: "L", quantity: 1_000, sequence: UInt64($0 + 100)) }
        let reply = try await client.ingest(source: "seed", events: events)
        #expect(reply.appliedCount == 60)
        try await client.setChannel(WireChannelDefinition(name: "web", locations: ["L"]))
    }

    /// The request for the `index`-th item of a mixed pipeline, and what its answer must be.
    static func mixed(_ index: Int, nonce: UInt64) -> (Request?, Sent) {
        switch index % 7 {
        case 0: return (.ping(PingRequest(nonce: nonce)), .ping(nonce: nonce))
        case 1: return (.query(QueryRequest(queries: [.sku("P-\(index % 50)")])), .query(sku: "P-\(index % 50)", sellable: Int64(index % 50 + 1)))
        case 2:
            let id = "PR-\(index)"
            let request = WireReserveRequest(id: try! ReservationID(id), ttlMilliseconds: 60_000, mode: .allOrNothing,
                                             lines: [WireReservationLine(sku: "Q-\(index % 10)", target: .location("L"), quantity: 1)])
            return (.reserve(request), .reserve(id: id))
        case 3:
            let event = WireEvent(kind: .receive, sku: "Z-\(index)", location: "L", quantity: 1, sequence: UInt64(index))
            return (.ingest(IngestRequest(source: "pipe", events: [event])), .ingest(sku: "Z-\(index)"))
        case 4: return (.channelShow(channel: "web"), .channelShow)
        case 5: return (.stats(prefix: "events."), .stats)
        default: return (nil, .unknownOpcode)
        }
    }

    /// Checks one reply against what was sent; returns a complaint or nil.
    static func check(_ reply: Reply, against sent: Sent) -> String? {
        switch (sent, reply) {
        case (.ping(let nonce), .ping(let pong)):
            return pong.nonce == nonce ? nil : "ping nonce \(pong.nonce) != \(nonce)"
        case (.query(let sku, let sellable), .query(let answer)):
            return answer.answers.count == 1 && answer.answers[0].sellable == sellable ? nil : "query \(sku): \(answer)"
        case (.reserve(let id), .reservation(let answer)):
            return answer.id.description == id && answer.state == .held ? nil : "reserve \(id): \(answer)"
        case (.ingest(let sku), .ingest(let answer)):
            return answer.appliedCount == 1 ? nil : "ingest \(sku): \(answer)"
        case (.channelShow, .channelShow(let definitions)):
            return definitions.map(\.name) == ["web"] ? nil : "channelShow: \(definitions)"
        case (.stats, .stats(let stats)):
            return stats.entries.allSatisfy({ $0.name.hasPrefix("events.") }) ? nil : "stats: \(stats)"
        case (.unknownOpcode, .error(let error)):
            return error.code == .unknownOpcode ? nil : "unknown opcode answered \(error)"
        default:
            return "\(sent) answered with \(reply)"
        }
    }

    @Test func hundredsOfMixedRequestsOnOneRawConnectionAreEachAnsweredOnceByID() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        try await Self.seed(admin)
        let seed = UInt64.random(in: 0..<UInt64.max)
        var random = SplitMix64(seed: seed)
        let count = 700
        // Unique ids in random order, 0 and UInt32.max among them.
        var ids: Set<UInt32> = [0, .max]
        while ids.count < count { ids.insert(UInt32.random(in: 0...UInt32.max, using: &random)) }
        let order = Array(ids).shuffled(using: &random)

        let raw = try await fixture.rawAuthenticated()
        var expected: [UInt32: (opcode: UInt8, sent: Sent)] = [:]
        var bytes = ByteBufferAllocator().buffer(capacity: count * 64)
        for (index, id) in order.enumerated() {
            let (request, sent) = Self.mixed(index, nonce: UInt64(id) ^ seed)
            if let request {
                request.encode(requestID: id, into: &bytes)
                expected[id] = (request.opcode.rawValue, sent)
            } else {
                bytes.writeBytes(Wire.raw(opcode: 0x77, id: id, payload: [1, 2, 3]))
                expected[id] = (0x77, sent)
            }
        }
        // Three writes that cut frames in the middle, so the server reassembles them.
        let total = bytes.readableBytes
        for cut in [total / 3 + 5, total / 3 + 7, total - 2 * (total / 3) - 12] {
            try await raw.send(bytes.readSlice(length: cut)!)
        }
        #expect(bytes.readableBytes == 0)

        var answered: Set<UInt32> = []
        var complaints: [String] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while answered.count < count && ContinuousClock.now < deadline {
            let (frame, reply) = try await raw.nextReply()
            guard let entry = expected[frame.requestID] else {
                complaints.append("reply to an id never sent: \(frame.requestID)")
                continue
            }
            if !answered.insert(frame.requestID).inserted { complaints.append("id \(frame.requestID) answered twice") }
            if frame.opcode.rawValue != entry.opcode { complaints.append("id \(frame.requestID) came back on \(frame.opcode)") }
            if let complaint = Self.check(reply, against: entry.sent) { complaints.append("id \(frame.requestID): \(complaint)") }
        }
        #expect(answered.count == count, "seed \(seed): \(count - answered.count) requests unanswered")
        #expect(complaints.isEmpty, "seed \(seed): \(complaints.prefix(10))")
        // Nothing more arrives: exactly one reply per request.
        try await raw.send(.ping(PingRequest(nonce: 1)), id: 0xFFFF_FFFE)
        let (last, _) = try await raw.nextReply()
        #expect(last.requestID == 0xFFFF_FFFE)
        await raw.close()
        await admin.close()
    }

    @Test func callbacksSentWithOneFlushAllCompleteWithTheirOwnReplies() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        try await Self.seed(admin)
        let count = 500
        let results = Locked<[Int: Result<Reply, ATPClientError>]>([:])
        var batch: [(Request, @Sendable (Result<Reply, ATPClientError>) -> Void)] = []
        var sent: [Int: Sent] = [:]
        for index in 0..<count {
            let (request, what) = Self.mixed(index, nonce: UInt64(index) &* 7919)
            guard let request else { continue }
            sent[index] = what
            batch.append((request, { result in results.withLock { $0[index] = result } }))
        }
        admin.send(batch)
        #expect(try await eventually(seconds: 30) { results.withLock { $0.count } == sent.count },
                "every completion runs")
        let collected = results.withLock { $0 }
        var complaints: [String] = []
        for (index, what) in sent {
            switch collected[index] {
            case .success(let reply)?:
                if let complaint = Self.check(reply, against: what) { complaints.append("#\(index): \(complaint)") }
            case .failure(let error)?: complaints.append("#\(index): \(error)")
            case nil: complaints.append("#\(index): no completion")
            }
        }
        #expect(complaints.isEmpty, "\(complaints.prefix(10))")
        await admin.close()
    }

    @Test func manyConcurrentAsyncRequestsShareOneConnection() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        try await Self.seed(admin)
        let complaints = try await withThrowingTaskGroup(of: String?.self) { group in
            for index in 0..<400 {
                group.addTask {
                    let (request, what) = Self.mixed(index, nonce: UInt64(index) &+ 1)
                    guard let request else { return nil }
                    do {
                        return Self.check(try await admin.request(request), against: what).map { "#\(index): \($0)" }
                    } catch {
                        return "#\(index): \(error)"
                    }
                }
            }
            var complaints: [String] = []
            for try await complaint in group { if let complaint { complaints.append(complaint) } }
            return complaints
        }
        #expect(complaints.isEmpty, "\(complaints.prefix(10))")
        // 400 / 7 reservations of one unit each came out of Q-0...Q-9.
        let reserved = try await admin.query((0..<10).map { .sku("Q-\($0)") }).answers.map { 1_000 - $0.sellable }.reduce(0, +)
        #expect(reserved == Int64((0..<400).filter { $0 % 7 == 2 }.count))
        await admin.close()
    }

    /// A slow request (channelSet and stats run on the thread pool and wait for every worker) sent
    /// before fast pings is answered after at least one of them.
    @Test func slowRequestsCompleteAfterFastOnesSentLater() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        try await admin.nameLocations((0..<200).map { "LOC-\($0)" })
        await admin.close()
        let raw = try await fixture.rawAuthenticated()
        var bytes = ByteBufferAllocator().buffer(capacity: 4096)
        Request.channelSet(WireChannelDefinition(name: "slow", locations: (0..<200).map { "LOC-\($0)" }))
            .encode(requestID: 1, into: &bytes)
        Request.stats(prefix: "").encode(requestID: 2, into: &bytes)
        for id in 3...62 { Request.ping(PingRequest(nonce: UInt64(id))).encode(requestID: UInt32(id), into: &bytes) }
        try await raw.send(bytes)

        var order: [UInt32] = []
        while order.count < 62 {
            let (frame, reply) = try await raw.nextReply()
            #expect(reply.errorCode == nil, "id \(frame.requestID): \(reply)")
            order.append(frame.requestID)
        }
        #expect(Set(order) == Set(1...62))
        let firstPing = try #require(order.firstIndex { $0 >= 3 })
        let channelSet = try #require(order.firstIndex(of: 1))
        let stats = try #require(order.firstIndex(of: 2))
        #expect(firstPing < channelSet, "replies in order \(order.prefix(10))...: the ping should overtake channelSet")
        #expect(firstPing < stats, "replies in order \(order.prefix(10))...: the ping should overtake stats")
        #expect(order != Array(1...62), "replies came back out of request order")
        await raw.close()
    }

    /// The same through the client's callbacks: completion order differs from send order.
    @Test func clientCompletionsRunInArrivalOrder() async throws {
        let fixture = try ServerFixture()
        let admin = try await fixture.connect()
        try await admin.nameLocations((0..<100).map { "X-\($0)" })
        let order = Locked<[Int]>([])
        var batch: [(Request, @Sendable (Result<Reply, ATPClientError>) -> Void)] = []
        batch.append((.channelSet(WireChannelDefinition(name: "slow", locations: (0..<100).map { "X-\($0)" })),
                      { _ in order.withLock { $0.append(0) } }))
        for index in 1...40 {
            batch.append((.ping(PingRequest(nonce: UInt64(index))), { _ in order.withLock { $0.append(index) } }))
        }
        admin.send(batch)
        #expect(try await eventually { order.withLock { $0.count } == 41 })
        let completed = order.withLock { $0 }
        #expect(completed.first != 0, "channelSet completed first: \(completed.prefix(5))")
        #expect(try await admin.channels("slow").first?.locations.count == 100)
        await admin.close()
    }
}
