import Foundation

/// An input file read whole into memory, split into numbered lines on demand.
struct InputFile: Sendable {
    /// The path as given, for messages.
    let path: String
    /// The file's bytes, without a leading UTF-8 byte order mark.
    let bytes: [UInt8]

    /// Reads the file. Throws a usage error when it cannot be read (missing, a directory, no permission).
    static func read(_ path: String) throws(CommandLineError) -> InputFile {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .usage("cannot read \(path): no such file")
        }
        if isDirectory.boolValue { throw .usage("cannot read \(path): it is a directory") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .usage("cannot read \(path): permission denied or read error")
        }
        var bytes = [UInt8](data)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        return InputFile(path: path, bytes: bytes)
    }

    /// A fresh scanner over the lines.
    func lines() -> LineScanner { LineScanner(bytes: bytes) }

    /// The error for line `number` of this file.
    func error(line number: Int, _ message: String) -> CommandLineError {
        .input(file: path, line: number, message)
    }
}

/// Walks a byte array line by line: lines end at `\n`, a `\r` before it is dropped, the last line
/// may lack its newline. Numbers start at 1.
struct LineScanner {
    private let bytes: [UInt8]
    private var position = 0
    private(set) var lineNumber = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The next line's number and text, or nil at the end. Throws (as a message) when the line is
    /// not valid UTF-8.
    mutating func next() -> (number: Int, text: Result<String, LineError>)? {
        guard position < bytes.count else { return nil }
        var end = position
        while end < bytes.count && bytes[end] != 0x0A { end += 1 }
        let next = end + 1
        if end > position && bytes[end - 1] == 0x0D { end -= 1 }
        let slice = bytes[position..<end]
        position = next
        lineNumber += 1
        guard let text = String(validating: slice, as: UTF8.self) else {
            return (lineNumber, .failure(LineError(message: "the line is not valid UTF-8")))
        }
        return (lineNumber, .success(text))
    }
}

/// What is wrong with one input line.
struct LineError: Error, Sendable, Equatable {
    /// The message, without file and line.
    var message: String
}
