import ATPLedger
import ATPProtocol

/// What each vector of docs/PROTOCOL.md §10 must decode to.
enum Expected {
    case request(Request)
    case reply(Reply)
    /// A request that must be refused with this error (reserved opcodes).
    case requestError(MessageDecodingError)
}

enum ExpectedVectors {
    static let t0: Int64 = 1_700_000_000_000

    static let lines = [
        WireLineGrant(requested: 2, granted: 2, allocations: [WireLineAllocation(location: "STORE-01", quantity: 2)]),
        WireLineGrant(requested: 3, granted: 3, allocations: [WireLineAllocation(location: "DC-1", quantity: 1),
                                                              WireLineAllocation(location: "STORE-01", quantity: 2)]),
    ]

    static let adjustEvent = WireEvent(kind: .adjust, sku: "SKU-1001", location: "STORE-01", quantity: -1, sequence: 1004,
                                       eventMilliseconds: t0 + 3000, code: Bucket.damaged.rawValue, reasonCode: 42)

    static let ingestEvents: [WireEvent] = [
        WireEvent(kind: .receive, sku: "SKU-1001", location: "DC-1", quantity: 24, sequence: 1001, eventMilliseconds: t0,
                  flags: .closesInbound),
        WireEvent(kind: .ship, sku: "SKU-1001", location: "STORE-01", quantity: 2, sequence: 1002,
                  eventMilliseconds: t0 + 1000, correlation: "order-77"),
        WireEvent(kind: .transferOut, sku: "SKU-1001", location: "DC-1", quantity: 5, sequence: 1003,
                  eventMilliseconds: t0 + 2000, toLocation: "STORE-01"),
        adjustEvent,
        WireEvent(kind: .count, sku: "SKU-2002", location: "DC-1", quantity: 12, sequence: 1005,
                  eventMilliseconds: t0 + 4000, countDamaged: 1),
        WireEvent(kind: .disposition, sku: "SKU-1001", location: "STORE-01", quantity: 1, sequence: 1006,
                  eventMilliseconds: t0 + 5000, code: DispositionOutcome.scrap.rawValue),
    ]

    static let web = WireChannelDefinition(name: "web", bufferUnits: 5, capPercent: 80, locations: ["DC-1", "STORE-01"])

    /// Vector name → (opcode, request id, expected value).
    static let all: [String: (opcode: Opcode, requestID: UInt32, value: Expected)] = [
        "hello.request": (.hello, 1, .request(.hello(HelloRequest(versionMin: 1, versionMax: 1, token: Array("s3cret".utf8),
                                                                  clientName: "shop-sync")))),
        "hello.reply": (.hello, 1, .reply(.hello(HelloReply(version: 1, roles: [.query, .reserve], serverTimeMilliseconds: t0,
                                                            frameBytesMax: 16_777_216, batchItemsMax: 100_000,
                                                            inFlightRequestsMax: 1024)))),
        "hello.reply.v2": (.hello, 1, .reply(.hello(HelloReply(
            version: 2, roles: [.query, .reserve], serverTimeMilliseconds: t0, frameBytesMax: 16_777_216,
            batchItemsMax: 100_000, inFlightRequestsMax: 1024,
            shardMap: ShardMap(placement: .nameHash, shardCount: 4,
                               owners: [ShardMap.Owner(port: 7412), ShardMap.Owner(port: 7413)],
                               shardOwners: [0, 1, 0, 1], connectionOwner: 0))))),
        "ping.request": (.ping, 2, .request(.ping(PingRequest(nonce: 0x0123_4567_89AB_CDEF)))),
        "ping.reply": (.ping, 2, .reply(.ping(PingReply(nonce: 0x0123_4567_89AB_CDEF, serverTimeMilliseconds: t0 + 123)))),
        "query.request": (.query, 3, .request(.query(QueryRequest(queries: [
            .cell(sku: "SKU-1001", location: "STORE-01"), .sku("SKU-1001"), .channel(sku: "SKU-1001", channel: "web"),
        ])))),
        "query.reply": (.query, 3, .reply(.query(QueryReply(answers: [
            WireQueryAnswer(exists: true, sellable: 6, projected: 10),
            WireQueryAnswer(exists: true, sellable: 16, projected: 20),
            WireQueryAnswer(exists: true, sellable: 8, projected: 8),
        ])))),
        "query-cell.request": (.query, 4, .request(.query(QueryRequest(queries: [
            .cell(sku: "SKU-000000001234", location: "STORE-BERLIN-001"),
        ])))),
        "query-cell.reply": (.query, 4, .reply(.query(QueryReply(answers: [
            WireQueryAnswer(exists: true, sellable: 6, projected: 10),
        ])))),
        "query-detail.request": (.query, 5, .request(.query(QueryRequest(options: .includeCells, queries: [.sku("SKU-1001")])))),
        "query-detail.reply": (.query, 5, .reply(.query(QueryReply(options: .includeCells, answers: [
            WireQueryAnswer(exists: true, sellable: 16, projected: 20, cells: [
                WireCell(location: "DC-1", onHand: 12, committed: 2),
                WireCell(location: "STORE-01", onHand: 10, quarantine: 1, reserved: 2, inbound: 4, safetyStock: 1),
            ]),
        ])))),
        "reserve.request": (.reserve, 6, .request(.reserve(WireReserveRequest(
            id: rid("order-77"), ttlMilliseconds: 900_000, mode: .allOrNothing,
            lines: [WireReservationLine(sku: "SKU-1001", target: .location("STORE-01"), quantity: 2),
                    WireReservationLine(sku: "SKU-2002", target: .channel("web", allowSplit: true), quantity: 3)])))),
        "reserve.reply": (.reserve, 6, .reply(.reservation(WireReservationReply(
            id: rid("order-77"), state: .held, expiresAtMilliseconds: t0 + 900_000, lines: lines)))),
        "commit.request": (.commit, 7, .request(.commit(rid("order-77")))),
        "commit.reply": (.commit, 7, .reply(.reservation(WireReservationReply(
            id: rid("order-77"), state: .committed, expiresAtMilliseconds: 0, lines: lines)))),
        "release.request": (.release, 8, .request(.release(rid("order-78")))),
        "release.reply": (.release, 8, .reply(.reservation(WireReservationReply(
            id: rid("order-78"), result: .unknownReservation, state: .refused, expiresAtMilliseconds: 0, lines: [])))),
        "ingest.request": (.ingest, 9, .request(.ingest(IngestRequest(source: "wms-eu", events: ingestEvents)))),
        "ingest.reply": (.ingest, 9, .reply(.ingest(IngestReply(appliedCount: 4, duplicateCount: 1, rejections: [
            IngestRejection(index: 3, reason: .sequenceTooOld),
        ])))),
        "rejection-log.request": (.rejectionLogRead, 10, .request(.rejectionLogRead(RejectionLogReadRequest(afterSequence: 0,
                                                                                                          limit: 100)))),
        "rejection-log.reply": (.rejectionLogRead, 10, .reply(.rejectionLog(RejectionLogReply(
            oldestKeptSequence: 1, newestSequence: 2, droppedCount: 0, entries: [
                WireRejectedEvent(logSequence: 1, atMilliseconds: t0 + 500, reason: .sequenceTooOld,
                                  event: LoggedEvent(source: "wms-eu", event: adjustEvent)),
                WireRejectedEvent(logSequence: 2, atMilliseconds: t0 + 600, reason: .invalidSKUName, event: nil,
                                  detail: "SKU name is 70 bytes long; the maximum is 64"),
            ])))),
        "channel-set.request": (.channelSet, 11, .request(.channelSet(web))),
        "channel-set.reply": (.channelSet, 11, .reply(.channelSet)),
        "channel-show.request": (.channelShow, 12, .request(.channelShow(channel: nil))),
        "channel-show.reply": (.channelShow, 12, .reply(.channelShow([web]))),
        "channel-remove.request": (.channelRemove, 13, .request(.channelRemove(channel: "web"))),
        "channel-remove.reply": (.channelRemove, 13, .reply(.channelRemove)),
        "stats.request": (.stats, 14, .request(.stats(prefix: ""))),
        "stats.reply": (.stats, 14, .reply(.stats(StatsReply(entries: [
            StatEntry("events.applied", .unsigned(1_234_567)), StatEntry("events.rejected", .unsigned(3)),
            StatEntry("server.startMilliseconds", .signed(t0 - 60_000)),
        ])))),
        "snapshot-now.request": (.snapshotNow, 15, .request(.snapshotNow)),
        "snapshot-now.reply": (.snapshotNow, 15, .reply(.snapshotNow(SnapshotNowReply(
            snapshotID: 7, durationMilliseconds: 1234, cellCount: 5_000_000, sizeBytes: 1_073_741_824)))),
        "error.reply": (.reserve, 16, .reply(.error(ErrorReply(code: .forbidden, message: "reserve needs the reserve role")))),
        "notice.reply": (.notice, 0, .reply(.error(ErrorReply(FrameDecodingError.frameTooLarge(
            frameBytes: 33_554_432, frameBytesMax: 16_777_216))))),
    ]
}
