/// Runs once when its LSN is durable (`.success(lsn)`) or can no longer become durable
/// (`.failure`). Called on the stream's flusher thread, in LSN order, exactly once; keep it short.
public typealias JournalCompletion = @Sendable (Result<UInt64, JournalError>) -> Void

/// The completions waiting for their LSN, sorted by LSN (stable for equal LSNs). Lives inside the
/// stream's mutex; the flusher takes the ready ones out and runs them outside it.
///
/// Storage is one array with a consumed prefix, compacted now and then, so in steady state
/// registering and taking allocate nothing.
struct CompletionQueue {
    struct Entry {
        var lsn: UInt64
        var completion: JournalCompletion
    }

    private var entries: [Entry] = []
    private var head = 0
    /// Set once the flusher has run its last delivery: later registrations are answered by the caller.
    var flusherStopped = false

    var isEmpty: Bool { head == entries.count }
    var count: Int { entries.count - head }

    /// Adds `completion` for `lsn`. O(1) when LSNs arrive in order (the usual case), else
    /// O(n) to insert in place.
    mutating func insert(lsn: UInt64, _ completion: @escaping JournalCompletion) {
        let entry = Entry(lsn: lsn, completion: completion)
        guard let last = entries.last, head < entries.count, lsn < last.lsn else {
            entries.append(entry)
            return
        }
        // Upper bound: after every entry with an LSN <= lsn, so equal LSNs keep registration order.
        var low = head
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].lsn <= lsn { low = middle + 1 } else { high = middle }
        }
        entries.insert(entry, at: low)
    }

    /// Moves every entry with an LSN <= `lsn` into `ready`, in order.
    mutating func takeReady(through lsn: UInt64, into ready: inout [Entry]) {
        while head < entries.count, entries[head].lsn <= lsn {
            ready.append(entries[head])
            head += 1
        }
        compactIfWorthIt()
    }

    /// Moves every entry into `ready`, in order.
    mutating func takeAll(into ready: inout [Entry]) {
        takeReady(through: .max, into: &ready)
    }

    private mutating func compactIfWorthIt() {
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= entries.count {
            entries.removeSubrange(0 ..< head)
            head = 0
        }
    }
}
