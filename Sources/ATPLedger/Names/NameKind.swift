/// The kinds of names the engine interns, with their byte limits (DESIGN §2).
public enum NameKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case sku = 0
    case location = 1
    case channel = 2
    case source = 3
    /// Reservation ids (never interned; validated with the same rules).
    case reservation = 4

    /// Maximum UTF-8 bytes of a name of this kind: 64, or 32 for channels.
    public var bytesMax: Int { self == .channel ? 32 : 64 }

    public var description: String {
        switch self {
        case .sku: "SKU"
        case .location: "location"
        case .channel: "channel"
        case .source: "source"
        case .reservation: "reservation id"
        }
    }

    /// The rejection reason for an invalid name of this kind (channels reuse malformed).
    public var invalidNameReason: RejectionReason {
        switch self {
        case .sku: .invalidSKUName
        case .location: .invalidLocationName
        case .source: .invalidSourceName
        case .reservation: .invalidReservationID
        case .channel: .malformed
        }
    }
}

/// A name that was refused, with what is wrong with it.
public struct InvalidNameError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Problem: Sendable, Equatable {
        case empty
        case tooLong(bytes: Int, bytesMax: Int)
        case notUTF8
        case tableFull
    }
    public var kind: NameKind
    public var problem: Problem

    public var description: String {
        switch problem {
        case .empty: "\(kind) name is empty"
        case .tooLong(let bytes, let max): "\(kind) name is \(bytes) bytes long; the maximum is \(max)"
        case .notUTF8: "\(kind) name is not valid UTF-8"
        case .tableFull: "the \(kind) name table is full"
        }
    }

    /// The rejection reason to log for this error.
    public var reason: RejectionReason {
        problem == .tableFull ? .nameTableFull : kind.invalidNameReason
    }
}

/// Validates a candidate name: 1...kind.bytesMax bytes of well-formed UTF-8. Cost: one pass over the bytes.
public func validateName(_ bytes: UnsafeRawBufferPointer, kind: NameKind) throws(InvalidNameError) {
    if bytes.isEmpty { throw InvalidNameError(kind: kind, problem: .empty) }
    if bytes.count > kind.bytesMax {
        throw InvalidNameError(kind: kind, problem: .tooLong(bytes: bytes.count, bytesMax: kind.bytesMax))
    }
    if !isValidUTF8(bytes) { throw InvalidNameError(kind: kind, problem: .notUTF8) }
}

/// `validateName(_:kind:)` for a Swift string: the checks interning makes, without interning.
public func validateName(_ name: String, kind: NameKind) throws(InvalidNameError) {
    var copy = name
    let result: Result<Void, InvalidNameError> = copy.withUTF8 { utf8 in
        do throws(InvalidNameError) {
            return .success(try validateName(UnsafeRawBufferPointer(utf8), kind: kind))
        } catch {
            return .failure(error)
        }
    }
    try result.get()
}

/// Whether `bytes` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
public func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var index = 0
    let count = bytes.count
    while index < count {
        let lead = bytes[index]
        if lead < 0x80 { index += 1; continue }
        let length: Int
        var minimum: UInt32
        var scalar: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; minimum = 0x80; scalar = UInt32(lead & 0x1F)
        case 0xE0...0xEF: length = 3; minimum = 0x800; scalar = UInt32(lead & 0x0F)
        case 0xF0...0xF4: length = 4; minimum = 0x10000; scalar = UInt32(lead & 0x07)
        default: return false
        }
        guard index + length <= count else { return false }
        for offset in 1..<length {
            let continuation = bytes[index + offset]
            guard continuation & 0xC0 == 0x80 else { return false }
            scalar = scalar << 6 | UInt32(continuation & 0x3F)
        }
        if scalar < minimum || scalar > 0x10FFFF || (0xD800...0xDFFF).contains(scalar) { return false }
        minimum = 0
        index += length
    }
    return true
}

/// A name as printable text for logs: valid UTF-8 as it is; otherwise every byte that is not part
/// of a well-formed sequence is written `\xNN` (upper-case hex). The result is at most
/// `bytesMax` bytes of UTF-8: a longer one is cut at a character boundary and ends in "...".
/// Cost: one pass over the bytes.
public func escapedName(_ bytes: UnsafeRawBufferPointer, bytesMax: Int = 255) -> String {
    precondition(bytesMax >= 3, "room for the ellipsis")
    var text = ""
    if isValidUTF8(bytes) {
        text = String(decoding: bytes, as: UTF8.self)
    } else {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        parsing: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                text.unicodeScalars.append(Unicode.UTF8.decode(encoded))
                offset += encoded.count
            case .error(let length):
                for byte in bytes[offset..<offset + length] {
                    let hex = String(byte, radix: 16, uppercase: true)
                    text += byte < 0x10 ? "\\x0\(hex)" : "\\x\(hex)"
                }
                offset += length
            case .emptyInput:
                break parsing
            }
        }
    }
    guard text.utf8.count > bytesMax else { return text }
    var cut = ""
    for character in text.unicodeScalars {
        if cut.utf8.count + String(character).utf8.count > bytesMax - 3 { break }
        cut.unicodeScalars.append(character)
    }
    return cut + "..."
}
