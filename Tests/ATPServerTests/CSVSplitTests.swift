@testable import ATPCommandLine
import ATPLedger
import Testing

/// `atp ingest`'s CSV field splitter works on UTF-8 bytes (issue 13: the former one, scalar by
/// scalar with a String per field, made `atp` the bottleneck of a 10M-line ingest). It must split
/// exactly as the former one did: checked against it, kept here as the reference, on random lines
/// built from the characters that matter (quotes, commas, blanks, a two-byte and a combining one).
@Suite struct CSVSplitTests {
    /// The former splitter, unchanged.
    static func referenceSplit(_ line: String) -> Result<[String], LineError> {
        var fields: [String] = []
        var current: [Unicode.Scalar] = []
        var quoted = false
        var wasQuoted = false
        var afterClosingQuote = false
        let scalars = Array(line.unicodeScalars)
        var index = 0
        func finishField() {
            let text = String(String.UnicodeScalarView(current))
            fields.append(wasQuoted ? text : text.trimmingWhitespace())
            current.removeAll(keepingCapacity: true)
            wasQuoted = false
            afterClosingQuote = false
        }
        while index < scalars.count {
            let scalar = scalars[index]
            index += 1
            if quoted {
                if scalar == "\"" {
                    if index < scalars.count && scalars[index] == "\"" {
                        current.append("\"")
                        index += 1
                    } else {
                        quoted = false
                        afterClosingQuote = true
                    }
                } else {
                    current.append(scalar)
                }
            } else if scalar == "," {
                finishField()
            } else if afterClosingQuote {
                if scalar != " " && scalar != "\t" {
                    return .failure(LineError(message: "unexpected \(Character(scalar)) after a closing quote in field \(fields.count + 1)"))
                }
            } else if scalar == "\"" && current.allSatisfy({ $0 == " " || $0 == "\t" }) {
                current.removeAll()
                quoted = true
                wasQuoted = true
            } else {
                current.append(scalar)
            }
        }
        if quoted { return .failure(LineError(message: "field \(fields.count + 1) opens a quote that is never closed")) }
        finishField()
        return .success(fields)
    }

    static func split(_ line: String) -> Result<[String], LineError> {
        do throws(LineError) { return .success(try CSVEventParser.split(line)) } catch { return .failure(error) }
    }

    @Test func splitsLikeTheFormerSplitterOnRandomLines() {
        let alphabet: [String] = ["a", "B", "7", ",", "\"", "\"\"", " ", "\t", "é", "e\u{301}", "#", "-"]
        var random = SplitMix64(seed: 13)
        var differences: [String] = []
        for _ in 0..<50_000 {
            let length = random.next(below: 14)
            let line = (0..<length).map { _ in alphabet[random.next(below: alphabet.count)] }.joined()
            let expected = Self.referenceSplit(line)
            let actual = Self.split(line)
            if actual != expected { differences.append("\(line.debugDescription): \(actual) vs \(expected)") }
        }
        #expect(differences.isEmpty, "\(differences.count) lines split differently: \(differences.prefix(5))")
    }

    @Test func knownLines() {
        #expect(Self.split("receive, SKU-1 ,DC1,10,1") == .success(["receive", "SKU-1", "DC1", "10", "1"]))
        #expect(Self.split(#"ship,"SKU ""A"", x", DC1 ,1,2,,"#) == .success(["ship", #"SKU "A", x"#, "DC1", "1", "2", "", ""]))
        #expect(Self.split(#"a,"b"c"#) == .failure(LineError(message: "unexpected c after a closing quote in field 2")))
        #expect(Self.split(#"a,"b"#) == .failure(LineError(message: "field 2 opens a quote that is never closed")))
        #expect(Self.split("") == .success([""]))
    }
}
