import ATPLedger
import ATPProtocol

/// Typed operations over `request(_:)`; each throws `ATPClientError`.
extension ATPConnection {
    /// Answers a batch of availability queries (with the cells behind each answer when `includeCells`).
    public func query(_ queries: [WireQuery], includeCells: Bool = false) async throws -> QueryReply {
        let reply = try await request(.query(QueryRequest(options: includeCells ? .includeCells : [], queries: queries)))
        guard case .query(let answer) = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
        return answer
    }

    /// Reserves units; idempotent by id.
    public func reserve(_ reserve: WireReserveRequest) async throws -> WireReservationReply {
        try reservationReply(await request(.reserve(reserve)))
    }

    /// Commits a reservation.
    public func commit(_ id: ReservationID) async throws -> WireReservationReply {
        try reservationReply(await request(.commit(id)))
    }

    /// Releases a reservation.
    public func release(_ id: ReservationID) async throws -> WireReservationReply {
        try reservationReply(await request(.release(id)))
    }

    /// Sends a batch of events from one source.
    public func ingest(source: String, events: [WireEvent]) async throws -> IngestReply {
        let reply = try await request(.ingest(IngestRequest(source: source, events: events)))
        guard case .ingest(let answer) = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
        return answer
    }

    /// Reads the rejection log after `afterSequence`.
    public func rejections(afterSequence: UInt64 = 0, limit: UInt32 = 1000) async throws -> RejectionLogReply {
        let reply = try await request(.rejectionLogRead(RejectionLogReadRequest(afterSequence: afterSequence, limit: limit)))
        guard case .rejectionLog(let page) = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
        return page
    }

    /// Defines or replaces a channel.
    public func setChannel(_ definition: WireChannelDefinition) async throws {
        let reply = try await request(.channelSet(definition))
        guard case .channelSet = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
    }

    /// One channel's definition, or every channel when `name` is nil.
    public func channels(_ name: String? = nil) async throws -> [WireChannelDefinition] {
        let reply = try await request(.channelShow(channel: name))
        guard case .channelShow(let definitions) = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
        return definitions
    }

    /// Removes a channel.
    public func removeChannel(_ name: String) async throws {
        let reply = try await request(.channelRemove(channel: name))
        guard case .channelRemove = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
    }

    /// Statistics whose names start with `prefix`.
    public func stats(prefix: String = "") async throws -> [StatEntry] {
        let reply = try await request(.stats(prefix: prefix))
        guard case .stats(let stats) = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
        return stats.entries
    }

    /// Round trip; returns the server's clock in milliseconds.
    public func ping(nonce: UInt64 = 0) async throws -> Int64 {
        let reply = try await request(.ping(PingRequest(nonce: nonce)))
        guard case .ping(let pong) = reply, pong.nonce == nonce else { throw ATPClientError.unexpectedReply("\(reply)") }
        return pong.serverTimeMilliseconds
    }

    private func reservationReply(_ reply: Reply) throws -> WireReservationReply {
        guard case .reservation(let answer) = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
        return answer
    }
}

extension ATPConnection {
    /// Asks the server to take a snapshot now (admin role); returns what it wrote. Throws
    /// `ATPClientError.server` with `notImplemented` when the server runs without a data directory.
    public func snapshotNow() async throws -> SnapshotNowReply {
        let reply = try await request(.snapshotNow)
        guard case .snapshotNow(let snapshot) = reply else { throw ATPClientError.unexpectedReply("\(reply)") }
        return snapshot
    }
}
