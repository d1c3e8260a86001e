@testable import ATPFuzzing
import ATPJournal
import ATPLedger
@testable import ATPSnapshot
import Foundation
import Testing

/// The fuzz targets in every `swift test`: their seed corpus (tools/fuzz/corpus, checked in) and a
/// few thousand deterministic mutations of it. A property failure traps, which fails the run; the
/// coverage-guided runs are tools/fuzz.sh's. `ATP_FUZZ_WRITE_SEEDS=DIR swift test --filter
/// FuzzTargetTests` rewrites the seeds into DIR/<target>/ (from docs/PROTOCOL.md §10, a journal
/// written by `JournalStream`, and encoded snapshot entries).
@Suite struct FuzzTargetTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let corpus = repository.appendingPathComponent("tools/fuzz/corpus")

    static func seeds(_ target: FuzzTarget) throws -> [[UInt8]] {
        let directory = corpus.appendingPathComponent(target.rawValue)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        return try names.map { [UInt8](try Data(contentsOf: directory.appendingPathComponent($0))) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsAndTheirMutationsRunClean(_ target: FuzzTarget) throws {
        let seeds = try Self.seeds(target)
        #expect(seeds.count >= 3, "seed corpus of \(target) in tools/fuzz/corpus/\(target.rawValue)")
        for seed in seeds { seed.withUnsafeBytes { target.run($0) } }
        var random = SplitMix64(seed: 0xF022 &+ UInt64(target.rawValue.utf8.count))
        for _ in 0..<3_000 {
            let input = Self.mutate(seeds, &random)
            input.withUnsafeBytes { target.run($0) }
        }
    }

    /// A seed changed the ways libFuzzer's mutators do: bytes flipped or set, cut, repeated, spliced.
    static func mutate(_ seeds: [[UInt8]], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = seeds[Int(random.next() % UInt64(seeds.count))]
        for _ in 0..<(1 + random.next() % 4) {
            guard !bytes.isEmpty else { break }
            let at = Int(random.next() % UInt64(bytes.count))
            switch random.next() % 6 {
            case 0: bytes[at] ^= UInt8(1) << (random.next() % 8)
            case 1: bytes[at] = UInt8(truncatingIfNeeded: random.next())
            case 2: bytes.removeSubrange(at...)
            case 3: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 16)], at: at)
            case 4:
                let other = seeds[Int(random.next() % UInt64(seeds.count))]
                bytes = Array(bytes[..<at]) + other.suffix(Int(random.next() % UInt64(other.count + 1)))
            default: bytes[at] = [0x00, 0xFF, 0x7F, 0x80][Int(random.next() % 4)]
            }
        }
        return bytes
    }

    /// The journal target reads a segment `JournalStream` wrote as its records, and a damaged copy
    /// as fewer records, without trusting the damage.
    @Test func theJournalTargetReadsARealSegment() throws {
        let segment = try Self.journalSegment()
        let file = MemorySegmentFile(bytes: segment)
        let reader = try JournalReader.open(directory: MemorySegmentFile.directory, streamIndex: 0,
                                            fileOperations: file.operations)
        let cursor = try reader.records()
        var lsns: [UInt64] = []
        while let record = try cursor.next() { lsns.append(record.lsn) }
        #expect(lsns == Array(1...40))
        var damaged = segment
        damaged[damaged.count / 2] ^= 0x40
        let damagedCursor = try JournalReader.open(directory: MemorySegmentFile.directory, streamIndex: 0,
                                                   fileOperations: MemorySegmentFile(bytes: damaged).operations).records()
        var read = 0
        while let _ = try? damagedCursor.next() { read += 1 }
        #expect(read < 40)
    }

    /// Writes the seed corpus when `ATP_FUZZ_WRITE_SEEDS` names a directory (otherwise checks that
    /// the generators still run).
    @Test func seedCorpusGenerators() throws {
        var corpus: [FuzzTarget: [(String, [UInt8])]] = [:]
        for (name, bytes) in try Self.protocolVectors() {
            if name.hasSuffix(".request") {
                // The first byte picks the decoder: 1 = before hello (handshake), 0 = authenticated.
                corpus[.requests, default: []].append((name, [name.hasPrefix("hello") ? 1 : 0] + bytes))
            } else {
                corpus[.replies, default: []].append((name, bytes))
            }
        }
        let segment = try Self.journalSegment()
        corpus[.journal] = [("segment-40-records", segment), ("segment-1-record", Array(segment.prefix(Self.firstRecordEnd(segment)))),
                            ("segment-torn-tail", Array(segment.dropLast(5)))]
        corpus[.snapshotEntries] = Self.snapshotEntries()
        #expect(corpus[.requests, default: []].count >= 10 && corpus[.replies, default: []].count >= 10)
        guard let directory = ProcessInfo.processInfo.environment["ATP_FUZZ_WRITE_SEEDS"] else { return }
        for (target, seeds) in corpus {
            let path = directory + "/" + target.rawValue
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for (name, bytes) in seeds { try Data(bytes).write(to: URL(fileURLWithPath: path + "/" + name)) }
        }
    }

    /// The hex vectors of docs/PROTOCOL.md §10, by name.
    static func protocolVectors() throws -> [(String, [UInt8])] {
        let document = try String(contentsOf: repository.appendingPathComponent("docs/PROTOCOL.md"), encoding: .utf8)
        var vectors: [(String, [UInt8])] = []
        var name: String? = nil
        var bytes: [UInt8] = []
        for line in document.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```hex ") {
                name = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces)
                bytes = []
            } else if line.hasPrefix("```"), let current = name {
                vectors.append((current, bytes))
                name = nil
            } else if name != nil {
                let data = line.split(separator: "#", maxSplits: 1).first ?? ""
                for pair in data.split(separator: " ") where pair.count == 2 {
                    if let byte = UInt8(pair, radix: 16) { bytes.append(byte) }
                }
            }
        }
        return vectors
    }

    /// A segment of 40 records written by `JournalStream`, cut after its last record.
    static func journalSegment() throws -> [UInt8] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("atp-fuzz-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let stream = try JournalStream.open(directory: directory, streamIndex: 0)
        for lsn in 1...40 {
            _ = stream.append(kind: UInt8(lsn % 5), payload: (0..<(lsn * 7 % 90)).map { UInt8(truncatingIfNeeded: $0 &* lsn) })
        }
        try stream.close()
        let name = try #require(try FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasPrefix("segment-") })
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
        while bytes.last == 0 { bytes.removeLast() }  // preallocated zeros after the last record
        return bytes
    }

    /// Where the first record of `segment` ends (the scan of a one-record prefix).
    static func firstRecordEnd(_ segment: [UInt8]) -> Int {
        for end in 1...segment.count {
            let file = MemorySegmentFile(bytes: Array(segment.prefix(end)))
            guard let cursor = try? JournalReader.open(directory: MemorySegmentFile.directory, streamIndex: 0,
                                                       fileOperations: file.operations).records() else { continue }
            if (try? cursor.next()) != nil { return end }
        }
        return segment.count
    }

    /// Encoded snapshot entries, in the target's layout: kind, version, u16 key length, key, value.
    static func snapshotEntries() -> [(String, [UInt8])] {
        func entry(_ kind: UInt8, _ key: [UInt8], _ value: [UInt8]) -> [UInt8] {
            [kind, 4, UInt8(key.count & 0xFF), UInt8(key.count >> 8)] + key + value
        }
        var cell = StockCell(sku: SKUID(7), location: LocationID(3))
        cell.onHand = 12
        cell.reserved = 2
        var keyWriter = ByteWriter()
        SnapshotFormat.appendCellKey(cell, to: &keyWriter)
        var valueWriter = ByteWriter()
        SnapshotFormat.appendCellValue(cell, to: &valueWriter)
        let channel = ChannelDefinition(id: ChannelID(2), locations: [LocationID(3), LocationID(1)], bufferUnits: 5,
                                        capPercent: 80)
        let window = DedupWindowImage(shard: 1, source: SourceID(4), newest: 130, words: [0xFF, 0, 1 << 63])
        return [
            ("name-sku", entry(0, SnapshotFormat.nameKey(kind: .sku, id: 9), [])),
            ("cell", entry(1, keyWriter.bytes, valueWriter.bytes)),
            ("channel", entry(2, SnapshotFormat.channelKey(channel.id), SnapshotFormat.channelValue(channel))),
            ("dedup", entry(3, SnapshotFormat.dedupKey(shard: 1, source: SourceID(4)), SnapshotFormat.dedupValue(window))),
        ]
    }
}
