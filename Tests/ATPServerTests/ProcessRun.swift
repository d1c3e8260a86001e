import Foundation

/// Runs `executable` with `arguments` to its end (terminated after `timeoutSeconds`), with the
/// test process's environment, changed by `environment` when given (else inherited as it is);
/// returns its exit status and its standard output, followed by its standard error when
/// `includingStandardError`.
func runToExit(_ executable: String, _ arguments: [String], includingStandardError: Bool = false,
               timeoutSeconds: Double = 60,
               environment: ((inout [String: String]) -> Void)? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment {
        var merged = ProcessInfo.processInfo.environment
        environment(&merged)
        process.environment = merged
    }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = includingStandardError ? output : FileHandle.nullDevice
    try process.run()
    DispatchQueue.global().asyncAfter(deadline: .now() + timeoutSeconds) { [process] in
        if process.isRunning { process.terminate() }
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
