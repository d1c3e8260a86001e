/// The `flash-sale` command line: options, their parsing and the usage text.
public struct FlashSaleCommandLine: Sendable, Equatable {
    /// The run's configuration.
    public var configuration = FlashSaleConfiguration()
    /// Where to write the latency histogram (.hgrm), if anywhere.
    public var hgrmPath: String?
    /// Where to write the JSON summary, if anywhere.
    public var jsonPath: String?
    /// Print the usage and exit.
    public var wantsHelp = false

    /// The usage text.
    public static let usage = """
        usage: flash-sale [options]
          Flash-sale burst against atpd: sets up fresh stock of a few hot SKUs, lets many connections of
          buyers reserve 1..k units each (all or nothing), then reads the stock back and checks that units
          granted == stock − remaining (never more than the stock). Exits 1 if the check fails.

          --host HOST                          server address (127.0.0.1)
          --port PORT                          server port (7411)
          --token TOKEN                        token with reserve, query and ingest roles (demo-admin)
          --connections N                      buyer connections (256)
          --depth N                            reservations in flight per connection (1)
          --skus N                             hot SKUs (10)
          --stock-per-sku UNITS                units of each SKU on sale (5000)
          --max-units K                        each buyer asks 1..K units (4)
          --rate PER_SECOND                    open loop: buyers arriving per second, latency from the
                                               intended arrival; 0 = closed loop (0)
          --seconds S                          time limit (10)
          --until-sold-out                     stop once every SKU is seen sold out
          --background-queries-per-second N    availability queries beside the sale (0)
          --background-ingest-per-second N     receipts at another location beside the sale (0)
          --client-threads N                   client event-loop threads (1)
          --run-tag TAG                        names of this run's SKUs, source and ids (fresh)
          --location NAME                      location of the stock on sale (FLASH-DC)
          --hold-ttl-ms MS                     hold time of granted reservations (3600000)
          --seed N                             seed of the buyers' choices (1)
          --hgrm FILE                          write the latency histogram (HdrHistogram .hgrm, ms)
          --json FILE                          write the JSON summary ("-" for standard output)
          --help                               this text
        """

    /// Parses `arguments` (without the program name). Throws `FlashSaleError.usage` for an unknown
    /// option or a missing value and `.invalidConfiguration` for a value that does not parse or is
    /// out of range.
    public init(arguments: [String]) throws(FlashSaleError) {
        var remaining = arguments[...]
        while let option = remaining.popFirst() {
            if option == "--help" || option == "-h" {
                wantsHelp = true
                continue
            }
            if option == "--until-sold-out" {
                configuration.untilSoldOut = true
                continue
            }
            guard let value = remaining.popFirst() else { throw .usage("\(option) needs a value (see --help)") }
            try apply(option, value)
        }
        try configuration.validate()
    }

    private mutating func apply(_ option: String, _ value: String) throws(FlashSaleError) {
        switch option {
        case "--host": configuration.host = value
        case "--port": configuration.port = try Self.integer(option, value)
        case "--token": configuration.token = value
        case "--connections": configuration.connections = try Self.integer(option, value)
        case "--depth": configuration.depth = try Self.integer(option, value)
        case "--skus": configuration.skuCount = try Self.integer(option, value)
        case "--stock-per-sku": configuration.stockPerSKU = Int64(try Self.integer(option, value))
        case "--max-units": configuration.maxUnitsPerBuyer = Int64(try Self.integer(option, value))
        case "--rate": configuration.arrivalsPerSecond = try Self.number(option, value)
        case "--seconds": configuration.seconds = try Self.number(option, value)
        case "--background-queries-per-second": configuration.backgroundQueriesPerSecond = try Self.number(option, value)
        case "--background-ingest-per-second": configuration.backgroundEventsPerSecond = try Self.number(option, value)
        case "--client-threads": configuration.clientThreads = try Self.integer(option, value)
        case "--run-tag": configuration.runTag = value
        case "--location": configuration.location = value
        case "--background-location": configuration.backgroundLocation = value
        case "--hold-ttl-ms": configuration.holdTTLMilliseconds = Int64(try Self.integer(option, value))
        case "--seed":
            guard let seed = UInt64(value) else { throw .invalidConfiguration(option: option, value: value, reason: "is not a whole number") }
            configuration.seed = seed
        case "--hgrm": hgrmPath = value
        case "--json": jsonPath = value
        default: throw .usage("unknown option \(option) (see --help)")
        }
    }

    private static func integer(_ option: String, _ value: String) throws(FlashSaleError) -> Int {
        guard let number = Int(value.replacingOccurrences(of: "_", with: "")) else {
            throw .invalidConfiguration(option: option, value: value, reason: "is not a whole number")
        }
        return number
    }

    private static func number(_ option: String, _ value: String) throws(FlashSaleError) -> Double {
        guard let number = Double(value), number.isFinite else {
            throw .invalidConfiguration(option: option, value: value, reason: "is not a number")
        }
        return number
    }
}
