import ATPLedger
import ATPProtocol
import ArgumentParser
import Foundation

/// `atp query`: availability questions.
public struct QueryCommand: AsyncParsableCommand, ATPCommandGroup {
    /// The query subcommands.
    public static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Ask what is available to promise: one cell, one SKU, one SKU in a channel, or many SKUs.",
        subcommands: [QueryCellCommand.self, QuerySKUCommand.self, QueryChannelCommand.self, QuerySKUsCommand.self])

    /// Parsed by ArgumentParser.
    public init() {}

    /// Given alone, prints its help.
    public mutating func run() async throws { throw CleanExit.helpRequest(self) }
}

/// `atp query cell SKU LOCATION`: one cell, with its buckets.
public struct QueryCellCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "cell", abstract: "Sellable and projected units of one SKU at one location, with its buckets.")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The SKU.") var sku: String
    @Argument(help: "The location.") var location: String

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the names.
    public func validate() throws {
        try NameRules.validate(sku, kind: .sku, option: "SKU")
        try NameRules.validate(location, kind: .location, option: "LOCATION")
    }

    /// Asks with `includeCells` (one cell is small) and prints the answer.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        try await SingleQuery.run(.cell(sku: sku, location: location), includeCells: true, context, settings)
    }
}

/// `atp query sku SKU [--cells]`: a SKU across its locations.
public struct QuerySKUCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "sku", abstract: "Sellable and projected units of one SKU summed over all its locations.")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The SKU.") var sku: String
    @Flag(name: .long, help: "Also show every location's cell and buckets.") var cells = false

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the name.
    public func validate() throws { try NameRules.validate(sku, kind: .sku, option: "SKU") }

    /// Asks and prints the answer.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        try await SingleQuery.run(.sku(sku), includeCells: cells, context, settings)
    }
}

/// `atp query channel SKU CHANNEL [--cells]`: a SKU as a channel sees it.
public struct QueryChannelCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "channel", abstract: "The channel ATP of one SKU (buffer and cap applied).")

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Argument(help: "The SKU.") var sku: String
    @Argument(help: "The channel.") var channel: String
    @Flag(name: .long, help: "Also show the channel's cells in priority order.") var cells = false

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the names.
    public func validate() throws {
        try NameRules.validate(sku, kind: .sku, option: "SKU")
        try NameRules.validate(channel, kind: .channel, option: "CHANNEL")
    }

    /// Asks and prints the answer.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        try await SingleQuery.run(.channel(sku: sku, channel: channel), includeCells: cells, context, settings)
    }
}

/// One question, one answer: the shared body of `query cell`, `query sku` and `query channel`.
enum SingleQuery {
    static func run(_ query: WireQuery, includeCells: Bool, _ context: CommandContext,
                    _ settings: ConnectionSettings) async throws -> ATPExitStatus {
        try await Session.with(settings) { session in
            let reply = try await session.call("query") { try await $0.query([query], includeCells: includeCells) }
            guard reply.answers.count == 1 else {
                throw CommandLineError(status: .serverError,
                                       message: "the server answered \(reply.answers.count) questions, 1 was asked")
            }
            let asked = AskedQuery(query: query)
            let answer = reply.answers[0]
            Printer(context, settings).emit(QueryFormatting.json(asked, answer, withCells: includeCells)) {
                QueryFormatting.lines(asked, answer, withCells: includeCells)
            }
            return .ok
        }
    }
}

/// `atp query skus --file F [--channel C]`: many SKUs, batched and pipelined.
public struct QuerySKUsCommand: ATPSubcommand {
    /// Name and help.
    public static let configuration = CommandConfiguration(
        commandName: "skus",
        abstract: "Sellable and projected units of every SKU listed in a file (one per line).",
        discussion: """
            Blank lines and lines starting with '#' are skipped; spaces around a SKU are trimmed. The SKUs \
            are sent in frames of up to the server's batchItemsMax questions, a few frames in flight.
            """)

    /// Host, port, token, --json and --timeout-ms.
    @OptionGroup public var global: GlobalOptions
    @Option(name: .long, help: "File with one SKU per line.") var file: String
    @Option(name: .long, help: "Ask through this channel instead of summing all locations.") var channel: String?

    /// Parsed by ArgumentParser.
    public init() {}

    /// Checks the channel name.
    public func validate() throws {
        if let channel { try NameRules.validate(channel, kind: .channel, option: "--channel") }
    }

    /// Reads the whole list first (a bad line sends nothing), then asks in pipelined batches.
    public func execute(in context: CommandContext, settings: ConnectionSettings) async throws -> ATPExitStatus {
        let skus = try SKUList.read(try InputFile.read(file))
        let channel = self.channel
        let queries: [WireQuery] = skus.map { sku in channel.map { .channel(sku: sku, channel: $0) } ?? .sku(sku) }
        let answers = try await Session.with(settings) { session in
            try await BatchedQuery.run(queries, session: session)
        }
        let asked = queries.map(AskedQuery.init)
        Printer(context, settings).emit(.array(zip(asked, answers).map { QueryFormatting.json($0, $1, withCells: false) })) {
            var table = TextTable([("SKU", .left)] + (channel == nil ? [] : [("CHANNEL", .left)])
                + [("EXISTS", .left), ("SELLABLE", .right), ("PROJECTED", .right), ("SHORT", .left)])
            for (query, answer) in zip(asked, answers) {
                table.add([query.sku] + (channel.map { [$0] } ?? [])
                    + [answer.exists ? "yes" : "no", String(answer.sellable), String(answer.projected),
                       answer.isShort ? "yes" : "no"])
            }
            return table.renderedLines() + ["\(answers.count) SKUs"]
        }
        return .ok
    }
}

/// A file of SKU names, one per line.
enum SKUList {
    /// The SKUs in file order. Throws a usage error naming the first bad line.
    static func read(_ file: InputFile) throws(CommandLineError) -> [String] {
        var lines = file.lines()
        var skus: [String] = []
        while let (number, text) = lines.next() {
            let line: String
            switch text {
            case .success(let value): line = value
            case .failure(let error): throw file.error(line: number, error.message)
            }
            let sku = line.trimmingCharacters(in: .whitespaces)
            if sku.isEmpty || sku.hasPrefix("#") { continue }
            if let problem = NameRules.problem(sku, kind: .sku) { throw file.error(line: number, problem) }
            skus.append(sku)
        }
        return skus
    }
}

/// Many questions in as few frames as the server's limits allow, a few frames in flight.
enum BatchedQuery {
    /// Bytes of a query frame before its items: header 10, options 1, count 4.
    static let frameHeadBytes = 15
    /// Bytes of one summary answer in the reply: status 1, sellable 8, projected 8.
    static let answerBytes = 17

    /// The answers, in question order. Throws `CommandLineError`.
    static func run(_ queries: [WireQuery], session: Session) async throws -> [WireQueryAnswer] {
        let frameBytesMax = Int(session.hello.frameBytesMax)
        let itemsMax = max(1, min(Int(session.hello.batchItemsMax), (frameBytesMax - frameHeadBytes) / answerBytes))
        var answers = [WireQueryAnswer?](repeating: nil, count: queries.count)
        var start = 0
        try await ReplyPipeline.run(session: session, what: "query", next: { () -> (Range<Int>, Request)? in
            guard start < queries.count else { return nil }
            var end = start
            var bytes = frameHeadBytes
            while end < queries.count && end - start < itemsMax {
                let itemBytes = requestBytes(queries[end])
                if end > start && bytes + itemBytes > frameBytesMax { break }
                bytes += itemBytes
                end += 1
            }
            defer { start = end }
            return (start..<end, .query(QueryRequest(queries: Array(queries[start..<end]))))
        }, receive: { range, reply in
            guard case .query(let answer) = reply, answer.answers.count == range.count else {
                throw CommandLineError(status: .serverError,
                                       message: "the server's answer to a query of \(range.count) SKUs does not match it")
            }
            for (index, item) in zip(range, answer.answers) { answers[index] = item }
        })
        // Every range was received (the pipeline returns only after the last reply): all are set.
        let received = answers.compactMap { $0 }
        assert(received.count == queries.count, "a query batch was not received")
        return received
    }

    /// Bytes of one item in a query request: kind, then its names with their length bytes.
    static func requestBytes(_ query: WireQuery) -> Int {
        switch query {
        case .cell(let sku, let location): 3 + sku.utf8.count + location.utf8.count
        case .sku(let sku): 2 + sku.utf8.count
        case .channel(let sku, let channel): 3 + sku.utf8.count + channel.utf8.count
        }
    }
}
