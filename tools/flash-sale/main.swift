import ATPFlashSale
import Foundation

// flash-sale: what happens when many buyers hit "buy" on the same few SKUs at once. The harness
// lives in Sources/ATPFlashSale; this is its command line. See docs/FLASH-SALE.md.
//
//   flash-sale --port 7411 --connections 1000 --skus 10 --stock-per-sku 5000 --until-sold-out --json run.json
//
// Exit status: 0 the check passed; 1 the check failed (oversold, unaccounted or left-over units);
// 2 bad options; 3 the run could not be made (server unreachable, set-up or read-back failed).

func printError(_ message: String) {
    FileHandle.standardError.write(Data(("flash-sale: " + message + "\n").utf8))
}

func write(_ data: Data, to path: String) -> Bool {
    if path == "-" {
        FileHandle.standardOutput.write(data)
        return true
    }
    do {
        try data.write(to: URL(fileURLWithPath: path))
        return true
    } catch {
        printError("could not write \(path): \(error.localizedDescription)")
        return false
    }
}

let commandLine: FlashSaleCommandLine
do {
    commandLine = try FlashSaleCommandLine(arguments: Array(CommandLine.arguments.dropFirst()))
} catch {
    printError("\(error)")
    exit(2)
}
if commandLine.wantsHelp {
    print(FlashSaleCommandLine.usage)
    exit(0)
}

let result: FlashSaleResult
do {
    result = try await FlashSale.run(commandLine.configuration) { printError($0) }
} catch {
    printError("\(error)")
    exit(3)
}
if commandLine.jsonPath != "-" { print(result.table(), terminator: "") }
var written = true
if let path = commandLine.hgrmPath { written = write(Data(result.hgrm.utf8), to: path) && written }
if let path = commandLine.jsonPath {
    do {
        written = write(try result.summaryJSON() + Data("\n".utf8), to: path) && written
    } catch {
        printError("could not encode the summary: \(error)")
        written = false
    }
}
exit(result.check.passed ? (written ? 0 : 3) : 1)
