import ATPLedger
import NIOCore

/// One cell behind a query answer, as sent with `includeCells`: its location, whether it exists,
/// and its eight buckets in `Bucket` order.
public struct WireCell: Sendable, Equatable {
    /// The cell's location name.
    public var location: String
    /// False when the engine has never seen an event for this (SKU, location).
    public var exists: Bool
    /// Units physically at the location.
    public var onHand: Int32
    /// Part of onHand that is damaged.
    public var damaged: Int32
    /// Part of onHand on hold.
    public var quarantine: Int32
    /// Units promised to orders, not shipped.
    public var committed: Int32
    /// Units held by open reservations.
    public var reserved: Int32
    /// Units expected.
    public var inbound: Int32
    /// Units of authorised returns not yet received.
    public var returnPending: Int32
    /// Buffer never promised.
    public var safetyStock: Int32

    /// A cell from its fields; buckets not given are 0.
    public init(location: String, exists: Bool = true, onHand: Int32 = 0, damaged: Int32 = 0, quarantine: Int32 = 0,
                committed: Int32 = 0, reserved: Int32 = 0, inbound: Int32 = 0, returnPending: Int32 = 0,
                safetyStock: Int32 = 0) {
        self.location = location
        self.exists = exists
        self.onHand = onHand
        self.damaged = damaged
        self.quarantine = quarantine
        self.committed = committed
        self.reserved = reserved
        self.inbound = inbound
        self.returnPending = returnPending
        self.safetyStock = safetyStock
    }

    /// The wire form of a ledger cell.
    public init(location: String, availability: CellAvailability) {
        let cell = availability.cell
        self.init(location: location, exists: availability.exists, onHand: cell.onHand, damaged: cell.damaged,
                  quarantine: cell.quarantine, committed: cell.committed, reserved: cell.reserved, inbound: cell.inbound,
                  returnPending: cell.returnPending, safetyStock: cell.safetyStock)
    }

    /// Reads one bucket.
    public subscript(bucket: Bucket) -> Int32 {
        switch bucket {
        case .onHand: onHand
        case .damaged: damaged
        case .quarantine: quarantine
        case .committed: committed
        case .reserved: reserved
        case .inbound: inbound
        case .returnPending: returnPending
        case .safetyStock: safetyStock
        }
    }

    /// Units that can be promised now, derived from the buckets as the engine does.
    public var sellable: Int64 {
        let free = Int64(onHand) - Int64(damaged) - Int64(quarantine) - Int64(committed) - Int64(reserved)
            - Int64(safetyStock)
        return max(0, free)
    }
}

/// The answer to one query item.
public struct WireQueryAnswer: Sendable, Equatable {
    /// False when the SKU, cell or channel is unknown to the engine.
    public var exists: Bool
    /// True when a cell behind the answer is short.
    public var isShort: Bool
    /// Cell: its sellable units. SKU: the sum. Channel: the channel ATP.
    public var sellable: Int64
    /// The same over projected units.
    public var projected: Int64
    /// The cells behind the answer, present only with `includeCells`.
    public var cells: [WireCell]

    /// An answer from its fields.
    public init(exists: Bool, isShort: Bool = false, sellable: Int64, projected: Int64, cells: [WireCell] = []) {
        self.exists = exists
        self.isShort = isShort
        self.sellable = sellable
        self.projected = projected
        self.cells = cells
    }
}

/// The answer to a query batch, decoded: one answer per item, in order. Servers encode with
/// `QueryReplyEncoder`, which writes straight into the outgoing buffer.
public struct QueryReply: Sendable, Equatable {
    /// The request's options (`includeCells` says whether answers carry cells).
    public var options: QueryOptions
    /// One answer per query item.
    public var answers: [WireQueryAnswer]

    /// A reply from its fields. Precondition when encoding: without `includeCells`, no answer has cells.
    public init(options: QueryOptions = [], answers: [WireQueryAnswer]) {
        self.options = options
        self.answers = answers
    }

    static func decode(_ reader: inout PayloadReader) throws(MessageDecodingError) -> Self {
        let options = QueryOptions(rawValue: try reader.read(UInt8.self, "options"))
        if options.rawValue & QueryOptions.reservedMask != 0 {
            throw .reservedBitsSet(field: "query options", value: options.rawValue)
        }
        let count = try reader.readCount("answer count", minimumItemBytes: 17, limit: nil)
        var answers: [WireQueryAnswer] = []
        answers.reserveCapacity(count)
        for _ in 0..<count {
            try reader.require(17, "answer")
            let status = reader.readUnchecked(UInt8.self)
            if status & 0xFC != 0 { throw .reservedBitsSet(field: "answer status", value: status) }
            var answer = WireQueryAnswer(exists: status & 1 != 0, isShort: status & 2 != 0,
                                         sellable: reader.readUnchecked(Int64.self),
                                         projected: reader.readUnchecked(Int64.self))
            if options.contains(.includeCells) {
                let cellCount = try reader.readCount("cell count", minimumItemBytes: 34, limit: nil)
                answer.cells.reserveCapacity(cellCount)
                for _ in 0..<cellCount { answer.cells.append(try decodeCell(&reader)) }
            }
            answers.append(answer)
        }
        return QueryReply(options: options, answers: answers)
    }

    private static func decodeCell(_ reader: inout PayloadReader) throws(MessageDecodingError) -> WireCell {
        let location = try reader.readReplyName("cell location")
        try reader.require(33, "cell")
        let status = reader.readUnchecked(UInt8.self)
        if status & 0xFE != 0 { throw .reservedBitsSet(field: "cell status", value: status) }
        return WireCell(location: location, exists: status & 1 != 0, onHand: reader.readUnchecked(Int32.self),
                        damaged: reader.readUnchecked(Int32.self), quarantine: reader.readUnchecked(Int32.self),
                        committed: reader.readUnchecked(Int32.self), reserved: reader.readUnchecked(Int32.self),
                        inbound: reader.readUnchecked(Int32.self), returnPending: reader.readUnchecked(Int32.self),
                        safetyStock: reader.readUnchecked(Int32.self))
    }

    func encode(requestID: UInt32, into buffer: inout ByteBuffer) {
        var encoder = QueryReplyEncoder(requestID: requestID, options: options, answerCount: answers.count,
                                        buffer: consume buffer)
        for answer in answers {
            encoder.appendAnswer(exists: answer.exists, isShort: answer.isShort, sellable: answer.sellable,
                                 projected: answer.projected, cellCount: answer.cells.count)
            for cell in answer.cells { encoder.appendCell(cell) }
        }
        buffer = encoder.finish()
    }
}

/// Writes a query reply frame straight into a buffer, answer by answer, so a server answering
/// 100,000 queries builds no intermediate values.
///
/// Use: `init` (writes the header and batch head), then for each of `answerCount` answers one
/// `appendAnswer` followed by exactly `cellCount` `appendCell` calls, then `finish()`, which fills
/// in the frame length and hands the buffer back. Check `frameBytes` against `frameBytesMax` and
/// answer `replyTooLarge` instead when it is over.
public struct QueryReplyEncoder {
    private var buffer: ByteBuffer
    private let start: Int
    private let includeCells: Bool
    private var answersLeft: Int
    private var cellsLeft = 0

    /// Starts a reply frame at the end of `buffer` (which may already hold other frames). Hand the
    /// buffer over with `consume` so that writing does not copy it.
    public init(requestID: UInt32, options: QueryOptions, answerCount: Int, buffer: consuming ByteBuffer) {
        precondition(answerCount >= 0 && answerCount <= Int(UInt32.max), "answer count out of range")
        self.buffer = consume buffer
        start = self.buffer.beginFrame(opcode: .query, flags: .reply, requestID: requestID)
        self.buffer.writeLE(options.rawValue)
        self.buffer.writeLE(UInt32(answerCount))
        includeCells = options.contains(.includeCells)
        answersLeft = answerCount
    }

    /// Bytes of this frame written so far.
    public var frameBytes: Int { buffer.writerIndex - start }

    /// Appends the next answer; `cellCount` cells must follow when the options include cells.
    public mutating func appendAnswer(exists: Bool, isShort: Bool, sellable: Int64, projected: Int64,
                                      cellCount: Int = 0) {
        precondition(answersLeft > 0 && cellsLeft == 0, "answers and cells out of order")
        precondition(includeCells || cellCount == 0, "cells without includeCells")
        answersLeft -= 1
        let status = UInt8((exists ? 1 : 0) | (isShort ? 2 : 0))
        let count = UInt32(truncatingIfNeeded: cellCount)
        let withCells = includeCells
        // One capacity check and one store per field instead of one ByteBuffer write per field.
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 21) { out in
            out.storeBytes(of: status, toByteOffset: 0, as: UInt8.self)
            out.storeBytes(of: sellable.littleEndian, toByteOffset: 1, as: Int64.self)
            out.storeBytes(of: projected.littleEndian, toByteOffset: 9, as: Int64.self)
            guard withCells else { return 17 }
            out.storeBytes(of: count.littleEndian, toByteOffset: 17, as: UInt32.self)
            return 21
        }
        cellsLeft = includeCells ? cellCount : 0
    }

    /// Appends the next answer from the ledger's answer.
    public mutating func appendAnswer(_ answer: QueryAnswer, cellCount: Int = 0) {
        appendAnswer(exists: answer.exists, isShort: answer.isShort, sellable: answer.sellable,
                     projected: answer.projected, cellCount: cellCount)
    }

    /// Appends the next cell of the current answer, its location given as bytes (from the catalog).
    public mutating func appendCell(location: UnsafeRawBufferPointer, exists: Bool, cell: StockCell) {
        precondition(cellsLeft > 0, "more cells than announced")
        cellsLeft -= 1
        buffer.writeName(bytes: location)
        writeCellFixed(exists: exists, cell.onHand, cell.damaged, cell.quarantine, cell.committed, cell.reserved,
                       cell.inbound, cell.returnPending, cell.safetyStock)
    }

    /// Appends the next cell of the current answer.
    public mutating func appendCell(_ cell: WireCell) {
        precondition(cellsLeft > 0, "more cells than announced")
        cellsLeft -= 1
        buffer.writeName(cell.location)
        writeCellFixed(exists: cell.exists, cell.onHand, cell.damaged, cell.quarantine, cell.committed, cell.reserved,
                       cell.inbound, cell.returnPending, cell.safetyStock)
    }

    /// The 33 bytes after a cell's location: status, then the eight buckets in `Bucket` order.
    private mutating func writeCellFixed(exists: Bool, _ b0: Int32, _ b1: Int32, _ b2: Int32, _ b3: Int32, _ b4: Int32,
                                         _ b5: Int32, _ b6: Int32, _ b7: Int32) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 33) { out in
            out.storeBytes(of: UInt8(exists ? 1 : 0), toByteOffset: 0, as: UInt8.self)
            for (index, value) in [b0, b1, b2, b3, b4, b5, b6, b7].enumerated() {
                out.storeBytes(of: value.littleEndian, toByteOffset: 1 + 4 * index, as: Int32.self)
            }
            return 33
        }
    }

    /// Fills in the frame length and returns the buffer. Precondition: every announced answer and
    /// cell was appended. The encoder hands its buffer over (it is left empty), so that the length
    /// is written into a buffer nothing else references: no copy, even when the encoder was
    /// captured by a closure.
    public mutating func finish() -> ByteBuffer {
        precondition(answersLeft == 0 && cellsLeft == 0, "fewer answers or cells than announced")
        buffer.endFrame(startingAt: start)
        var handedOver = ByteBuffer()
        swap(&handedOver, &buffer)
        return handedOver
    }

    /// Gives up on the reply (it will not fit a frame): returns the buffer with the partial frame
    /// still in it, for the caller to cut back to where the frame started (`startIndex`).
    public mutating func abandon() -> ByteBuffer {
        var handedOver = ByteBuffer()
        swap(&handedOver, &buffer)
        return handedOver
    }
}
