import ATPLedger
import ATPProtocol
import NIOCore
import Testing

/// The shard map of a version-2 `hello` reply (docs/PROTOCOL.md §7.1): round trips, what a client
/// computes from it, and maps that cannot be read.
@Suite struct ShardMapTests {
    static let map = ShardMap(placement: .nameHash, shardCount: 64,
                              owners: [ShardMap.Owner(port: 7412), ShardMap.Owner(host: "10.0.0.2", port: 7413)],
                              shardOwners: (0..<64).map { UInt16($0 % 2) }, connectionOwner: 1)

    static func reply(_ map: ShardMap?, version: UInt16 = 2) -> HelloReply {
        HelloReply(version: version, roles: .all, serverTimeMilliseconds: 5, frameBytesMax: 1 << 20,
                   batchItemsMax: 10, inFlightRequestsMax: 8, shardMap: map)
    }

    @Test func versionTwoCarriesTheMapAndVersionOneDoesNot() throws {
        let two = try MessageTests.roundTrip(.hello(Self.reply(Self.map)), opcode: .hello)
        #expect(two == .hello(Self.reply(Self.map)))
        guard case .hello(let decoded) = two else { Issue.record("not a hello reply"); return }
        #expect(decoded.shardMap?.owners[1].host == "10.0.0.2" && decoded.shardMap?.connectionOwner == 1)
        // Version 1: the same fields without a map, 23 payload bytes as before.
        var buffer = ByteBuffer()
        Reply.hello(Self.reply(Self.map, version: 1)).encode(opcode: .hello, requestID: 1, into: &buffer)
        #expect(buffer.readableBytes == 10 + 23)
        #expect(try MessageTests.roundTrip(.hello(Self.reply(nil, version: 1)), opcode: .hello) == .hello(Self.reply(nil, version: 1)))
        // Version 2 without a map given sends "send anywhere".
        guard case .hello(let anywhere) = try MessageTests.roundTrip(.hello(Self.reply(nil)), opcode: .hello) else { return }
        #expect(anywhere.shardMap == .anywhere && anywhere.shardMap?.owner(ofSKUNamed: "SKU-1") == nil)
        #expect(ProtocolVersion.negotiate(clientMin: 1, clientMax: 1) == 1)
        #expect(ProtocolVersion.negotiate(clientMin: 1, clientMax: 9) == 2)
    }

    /// A client finds a SKU's owner from its name alone: the shard is the engine's.
    @Test func theOwnerOfASKUIsItsShardsOwner() {
        let placement = SKUPlacement(scheme: .nameHash, shardCount: 64)
        for n in 0..<500 {
            let name = "SKU-\(n)"
            #expect(Self.map.owner(ofSKUNamed: name) == placement.shardIndex(ofSKUNamed: name)! % 2)
        }
        #expect(Self.map.owner(ofSKUNamed: "SKU-00001") == 0)  // shard 12 (docs/PROTOCOL.md §7.1 vectors)
        #expect(Self.map.owner(ofSKUNamed: "SKU-00002") == 1)  // shard 7
    }

    /// Maps that do not fit together are refused: the reply is unreadable, not misread.
    @Test func inconsistentMapsAreRefused() throws {
        func decode(_ patch: (inout [UInt8]) -> Void) -> MessageDecodingError? {
            var buffer = ByteBuffer()
            Reply.hello(Self.reply(ShardMap(placement: .nameHash, shardCount: 2, owners: [ShardMap.Owner(port: 1)],
                                            shardOwners: [0, 0], connectionOwner: nil)))
                .encode(opcode: .hello, requestID: 1, into: &buffer)
            var bytes = Array(buffer.readableBytesView)
            patch(&bytes)
            do {
                _ = try Reply(decoding: try singleFrame(bytes))
                return nil
            } catch let error as MessageDecodingError {
                return error
            } catch {
                return nil
            }
        }
        let mapAt = 10 + 23  // placement, shardCount u16, ownerCount u16, owner (host "", port), 2 owners, connection
        #expect(decode { _ in } == nil)
        #expect(decode { $0[mapAt] = 7 } == .unknownLayoutCode(field: "placement", value: 7))
        #expect(decode { $0[mapAt + 1] = 3 } == .invalidValue(field: "shardCount", value: 3))
        #expect(decode { $0[mapAt + 3] = 0 } == .invalidValue(field: "ownerCount", value: 0))
        #expect(decode { $0[mapAt + 8] = 1 } == .invalidValue(field: "shard owner", value: 1))
        #expect(decode { $0[mapAt + 12] = 1 } == .invalidValue(field: "connectionOwner", value: 0xFF01))
    }
}
