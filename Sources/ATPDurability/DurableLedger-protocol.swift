import ATPProtocol

extension DurableLedger {
    /// Takes a snapshot now (`snapshotNow`) and answers it in protocol terms: the snapshot's id,
    /// duration, cell count and size, or the error reply to send (docs/PROTOCOL.md §7.12): a cut
    /// that waited too long for reservations between shards is `serverBusy` (try again), a failed
    /// journal `notDurable`, any other failure (disk or LMDB map full) `internalError` with the
    /// reason. The engine keeps serving whatever happens. Blocks for the snapshot's duration.
    public func snapshotNowReply() -> Result<SnapshotNowReply, ErrorReply> {
        do {
            let info = try snapshotNow()
            let duration = snapshotStatistics.lastDurationMilliseconds
            return .success(SnapshotNowReply(snapshotID: info.id, durationMilliseconds: UInt64(max(0, duration)),
                                             cellCount: UInt64(info.cellCount), sizeBytes: UInt64(info.dataBytes)))
        } catch {
            switch error {
            case .notDurable: return .failure(ErrorReply(code: .notDurable, message: "\(error)"))
            default:
                return .failure(ErrorReply(code: .internalError, message: "the snapshot failed (the server keeps serving): \(error)"))
            }
        }
    }
}
