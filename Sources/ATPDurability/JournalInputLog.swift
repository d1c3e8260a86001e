import ATPJournal
import ATPLedger

/// A ledger worker's `WorkerInputLog` backed by its journal stream (`<data>/journal/stream-<k>`).
final class JournalInputLog: WorkerInputLog {
    let stream: JournalStream

    init(stream: JournalStream) {
        self.stream = stream
    }

    func append(kind: UInt8, payload: UnsafeRawBufferPointer) -> WorkerInputAppendResult {
        switch stream.append(kind: kind, payload: payload) {
        case .appended(let lsn): .appended(lsn: lsn)
        case .full: .full
        case .refused(let error): .refused(DurabilityFailure(reason: error.description))
        }
    }

    func whenDurable(_ lsn: UInt64, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void) {
        stream.whenDurable(lsn) { result in
            switch result {
            case .success: completion(nil)
            case .failure(let error): completion(DurabilityFailure(reason: error.description))
            }
        }
    }

    func whenStable(_ lsn: UInt64, _ completion: @escaping @Sendable (DurabilityFailure?) -> Void) {
        stream.whenStable(lsn) { result in
            switch result {
            case .success: completion(nil)
            case .failure(let error): completion(DurabilityFailure(reason: error.description))
            }
        }
    }

    var lastAppendedLSN: UInt64 { stream.lastAppendedLSN }
}
