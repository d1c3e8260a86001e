import ATPLedger
import ArgumentParser

/// The protocol's name rules checked before anything is sent, so a bad name is a usage error with
/// a clear message instead of a server error (and a name longer than 255 bytes, which the wire
/// cannot carry, never reaches the encoder).
enum NameRules {
    /// What is wrong with `name` as a name of `kind` (1...64 bytes, 32 for channels), or nil.
    static func problem(_ name: String, kind: NameKind) -> String? {
        var copy = name
        return copy.withUTF8 { bytes -> String? in
            do throws(InvalidNameError) {
                try validateName(UnsafeRawBufferPointer(bytes), kind: kind)
                return nil
            } catch {
                return "\(error) (\(name.debugDescription))"
            }
        }
    }

    /// Throws a `ValidationError` (exit status `usage`) when `name` is not a valid name of `kind`.
    static func validate(_ name: String, kind: NameKind, option: String) throws {
        if let problem = problem(name, kind: kind) { throw ValidationError("\(option): \(problem)") }
    }
}
