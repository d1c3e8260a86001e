/// The held reservation records of one core's home shards, by deadline: what expires when. Kept by
/// the shards' record funnel (`Shard.insertRecord`, `setRecord`, `modifyRecord`): a record is in
/// the queue exactly while it is held, so a commit or release takes it out at once (no entry
/// lingers until the ttl it no longer has), and the queue's memory follows the held records.
///
/// A record is a node: its shard's position among the core's shards and its slot in that shard's
/// `ReservationTable` (slots do not move while a record is in the table). Records with the same
/// deadline millisecond share a bucket: a doubly linked list through `links`, in the order they
/// became held. The buckets sit in a binary min-heap by deadline that records each bucket's
/// position, so an emptied bucket leaves the heap at once. One queue per core, not per shard: a
/// flash sale's reservations of one millisecond share a bucket whatever their home shard, so adding
/// or removing one is a few array writes, and the heap holds one entry per distinct deadline (a
/// thousand for a 1-second ttl), small enough to stay in cache.
///
/// Order of expiry: by deadline, then in the order the records became held — a function of the
/// operations applied alone, as the simulator and replay need. The core's thread only.
final class ExpiryQueue {
    private struct Bucket {
        var deadline: Int64
        var first: Int
        var last: Int
        var heapPosition: Int32
    }

    private struct Link {
        var previous = -1
        var next = -1
        /// The bucket the node is in, or -1 when the node is not queued.
        var bucket: Int32 = -1
    }

    /// The node of the record in `slot` of the shard at `position` among the core's shards.
    @inline(__always) static func node(position: Int, slot: Int) -> Int { position << 32 | slot }
    /// The shard position of a node.
    @inline(__always) static func position(of node: Int) -> Int { node >> 32 }
    /// The record slot of a node.
    @inline(__always) static func slot(of node: Int) -> Int { node & 0xFFFF_FFFF }

    private var buckets: ContiguousArray<Bucket> = []
    private var freeBuckets: [Int32] = []
    private var bucketByDeadline: [Int64: Int32] = [:]
    /// Bucket indices, a min-heap by deadline.
    private var heap: ContiguousArray<Int32> = []
    /// Per shard position, per slot.
    private var links: [ContiguousArray<Link>] = []
    /// Records queued.
    private(set) var count = 0

    /// The earliest deadline of a queued record.
    var earliestDeadline: Int64? { heap.first.map { buckets[Int($0)].deadline } }

    @inline(__always) private func link(_ node: Int) -> Link {
        links[Self.position(of: node)][Self.slot(of: node)]
    }

    @inline(__always) private func setLink(_ node: Int, _ link: Link) {
        links[Self.position(of: node)][Self.slot(of: node)] = link
    }

    /// Whether `node` is queued.
    func contains(node: Int) -> Bool {
        let position = Self.position(of: node)
        let slot = Self.slot(of: node)
        return position < links.count && slot < links[position].count && links[position][slot].bucket >= 0
    }

    /// Queues the record `node` (not queued yet) to expire at `deadline`.
    func add(node: Int, deadline: Int64) {
        let position = Self.position(of: node)
        let slot = Self.slot(of: node)
        while position >= links.count { links.append([]) }
        if slot >= links[position].count {
            links[position].append(contentsOf: repeatElement(Link(), count: slot + 1 - links[position].count))
        }
        precondition(links[position][slot].bucket < 0, "node \(node) is queued twice")
        if let bucket = bucketByDeadline[deadline] {
            let last = buckets[Int(bucket)].last
            links[Self.position(of: last)][Self.slot(of: last)].next = node
            links[position][slot] = Link(previous: last, next: -1, bucket: bucket)
            buckets[Int(bucket)].last = node
        } else {
            let bucket = newBucket(deadline: deadline, node: node)
            links[position][slot] = Link(previous: -1, next: -1, bucket: bucket)
        }
        count += 1
    }

    /// Takes the record `node` out of the queue (a no-op when it is not queued).
    func remove(node: Int) {
        guard contains(node: node) else { return }
        let link = link(node)
        let bucket = Int(link.bucket)
        if link.previous >= 0 {
            links[Self.position(of: link.previous)][Self.slot(of: link.previous)].next = link.next
        } else {
            buckets[bucket].first = link.next
        }
        if link.next >= 0 {
            links[Self.position(of: link.next)][Self.slot(of: link.next)].previous = link.previous
        } else {
            buckets[bucket].last = link.previous
        }
        setLink(node, Link())
        count -= 1
        assert(count >= 0)
        if buckets[bucket].first < 0 { deleteBucket(Int32(bucket)) }
    }

    /// The nodes of the records due by `now` (deadline ≤ now), by deadline and then in the order
    /// they were queued. Nothing is taken out: a record leaves the queue when its state changes.
    func due(nowMilliseconds now: Int64) -> [Int] {
        var nodes: [Int] = []
        var scratch = DueScratch()
        due(nowMilliseconds: now, into: &nodes, scratch: &scratch)
        return nodes
    }

    /// Reusable storage for `due(nowMilliseconds:into:scratch:)`.
    struct DueScratch {
        fileprivate var buckets: [Int32] = []
        fileprivate var pending: [Int] = []
    }

    /// `due(nowMilliseconds:)` appended to `slots`, with `scratch` for the walk: no allocation once
    /// the arrays have grown to a pass's size.
    func due(nowMilliseconds now: Int64, into nodes: inout [Int], scratch: inout DueScratch) {
        guard let earliest = earliestDeadline, earliest <= now else { return }
        // The due buckets are a subtree at the heap's top: collect it, then order it by deadline.
        scratch.buckets.removeAll(keepingCapacity: true)
        scratch.pending.removeAll(keepingCapacity: true)
        scratch.pending.append(0)
        while let position = scratch.pending.popLast() {
            guard position < heap.count else { continue }
            let bucket = heap[position]
            guard buckets[Int(bucket)].deadline <= now else { continue }
            scratch.buckets.append(bucket)
            scratch.pending.append(2 * position + 1)
            scratch.pending.append(2 * position + 2)
        }
        if scratch.buckets.count > 1 { scratch.buckets.sort { buckets[Int($0)].deadline < buckets[Int($1)].deadline } }
        for bucket in scratch.buckets {
            var node = buckets[Int(bucket)].first
            while node >= 0 {
                nodes.append(node)
                node = link(node).next
            }
        }
    }

    // MARK: - Buckets and their heap

    private func newBucket(deadline: Int64, node: Int) -> Int32 {
        let bucket: Int32
        let fresh = Bucket(deadline: deadline, first: node, last: node, heapPosition: Int32(heap.count))
        if let free = freeBuckets.popLast() {
            bucket = free
            buckets[Int(bucket)] = fresh
        } else {
            bucket = Int32(buckets.count)
            buckets.append(fresh)
        }
        bucketByDeadline[deadline] = bucket
        heap.append(bucket)
        siftUp(heap.count - 1)
        return bucket
    }

    private func deleteBucket(_ bucket: Int32) {
        let position = Int(buckets[Int(bucket)].heapPosition)
        bucketByDeadline[buckets[Int(bucket)].deadline] = nil
        let last = heap.removeLast()
        if position < heap.count {
            heap[position] = last
            buckets[Int(last)].heapPosition = Int32(position)
            siftDown(siftUp(position))
        }
        buckets[Int(bucket)].heapPosition = -1
        freeBuckets.append(bucket)
    }

    private func deadline(at position: Int) -> Int64 { buckets[Int(heap[position])].deadline }

    private func swapAt(_ a: Int, _ b: Int) {
        heap.swapAt(a, b)
        buckets[Int(heap[a])].heapPosition = Int32(a)
        buckets[Int(heap[b])].heapPosition = Int32(b)
    }

    /// Moves the entry at `position` up while it is earlier than its parent; returns where it ended.
    @discardableResult
    private func siftUp(_ start: Int) -> Int {
        var position = start
        while position > 0 {
            let parent = (position - 1) / 2
            guard deadline(at: position) < deadline(at: parent) else { break }
            swapAt(position, parent)
            position = parent
        }
        return position
    }

    private func siftDown(_ start: Int) {
        var position = start
        while true {
            let left = 2 * position + 1
            guard left < heap.count else { return }
            let right = left + 1
            let child = right < heap.count && deadline(at: right) < deadline(at: left) ? right : left
            guard deadline(at: child) < deadline(at: position) else { return }
            swapAt(position, child)
            position = child
        }
    }

    /// Checks the heap order, the positions and the lists (tests, and debug builds after changes).
    func checkInvariants() {
        var queued = 0
        for (position, bucket) in heap.enumerated() {
            precondition(buckets[Int(bucket)].heapPosition == Int32(position), "bucket position out of date")
            if position > 0 { precondition(deadline(at: (position - 1) / 2) <= deadline(at: position), "heap order") }
            precondition(bucketByDeadline[buckets[Int(bucket)].deadline] == bucket, "deadline map out of date")
            var node = buckets[Int(bucket)].first
            var previous = -1
            precondition(node >= 0, "an empty bucket in the heap")
            while node >= 0 {
                precondition(link(node).bucket == bucket && link(node).previous == previous, "broken list")
                queued += 1
                previous = node
                node = link(node).next
            }
            precondition(buckets[Int(bucket)].last == previous, "bucket's last is not the list's")
        }
        precondition(queued == count && bucketByDeadline.count == heap.count, "queue count out of date")
    }
}
