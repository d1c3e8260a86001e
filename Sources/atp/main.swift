import ATPCommandLine
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// `atp`: the command-line client. Everything lives in ATPCommandLine; see docs/CLI.md.
let status = await ATPCommandLine.run(arguments: Array(CommandLine.arguments.dropFirst()), context: .standard)
exit(status.rawValue)
