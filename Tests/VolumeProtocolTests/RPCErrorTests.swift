import JSONValue
import Testing
import VolumeProtocol

@Suite("RPCError")
struct RPCErrorTests {
    @Test(arguments: [
        (RPCErrorCode.parseError, -32700),
        (.invalidRequest, -32600),
        (.methodNotFound, -32601),
        (.invalidParams, -32602),
        (.internalError, -32603),
        (.engineError, -32000),
        (.accessDenied, -32001),
        (.limitExceeded, -32002),
        (.shuttingDown, -32003),
    ])
    func codesHaveTheExactNegativeNumbers(_ code: RPCErrorCode, _ expected: Int) throws {
        #expect(code.rawValue == expected)
        #expect(code.description == String(expected))
        #expect(code == RPCErrorCode(rawValue: expected))
        // On the wire, as a plain negative integer.
        let response = RPCResponse(id: 1, error: RPCError(code: code, message: "m"))
        let text = String(decoding: response.json.serialized(), as: UTF8.self)
        #expect(text == #"{"error":{"code":\#(expected),"message":"m"},"id":1,"jsonrpc":"2.0"}"#)
        let back = try #require(RPCResponse(json: try JSONValue.parse(text)))
        #expect(back.outcome == .failure(RPCError(code: code, message: "m")))
    }

    @Test func codesAreDistinct() {
        let all: [RPCErrorCode] = [
            .parseError, .invalidRequest, .methodNotFound, .invalidParams, .internalError, .engineError, .accessDenied,
            .limitExceeded, .shuttingDown,
        ]
        #expect(Set(all).count == all.count)
    }

    @Test func engineErrorDataWithErrno() throws {
        let e = RPCError.engine(.objectNotFound, "no such volume", errno: 2, errnoName: "ENOENT")
        #expect(e.code == .engineError)
        #expect(e.code.rawValue == -32000)
        #expect(e.message == "no such volume")
        let data = try #require(e.data?.objectValue)
        #expect(Set(data.keys) == ["type", "errno", "errno_name"])
        #expect(data["type"] == "ObjectNotFound")
        #expect(data["errno"] == .int(2))
        #expect(data["errno_name"] == "ENOENT")
        #expect(e.engineType == .objectNotFound)
        #expect(e.errno == 2)
        #expect(e.errnoName == "ENOENT")
    }

    @Test func engineErrorDataWithoutErrno() throws {
        let e = RPCError.engine(.volumeClientError, "bad volume name")
        let data = try #require(e.data?.objectValue)
        // The keys are always there; errno and errno_name are explicit nulls.
        #expect(Set(data.keys) == ["type", "errno", "errno_name"])
        #expect(data["errno"] == .some(.null))
        #expect(data["errno_name"] == .some(.null))
        #expect(e.errno == nil)
        #expect(e.errnoName == nil)
        #expect(e.engineType == .volumeClientError)
        #expect(
            String(decoding: e.json.serialized(), as: UTF8.self)
                == #"{"code":-32000,"data":{"errno":null,"errno_name":null,"type":"VolumeClientError"},"message":"bad volume name"}"#
        )
    }

    @Test(arguments: EngineErrorType.allCases)
    func engineAccessorsSurviveTheWire(_ type: EngineErrorType) throws {
        let e = RPCError.engine(type, "msg \(type.rawValue)", errno: 110, errnoName: "ETIMEDOUT")
        let back = try #require(RPCError(json: try JSONValue.parse(e.json.serialized())))
        #expect(back == e)
        #expect(back.engineType == type)
        #expect(back.errno == 110)
        #expect(back.errnoName == "ETIMEDOUT")
        #expect(back.description == "\(type.rawValue): msg \(type.rawValue)")
    }

    @Test func engineErrorTypeRawValues() {
        let expected: Set<String> = [
            "VolumeClientError", "ObjectNotFound", "ClusterError", "ClusterTimeout", "EvictionError", "Internal",
        ]
        #expect(Set(EngineErrorType.allCases.map(\.rawValue)) == expected)
        #expect(EngineErrorType.allCases.count == expected.count)
        for raw in expected {
            #expect(EngineErrorType(rawValue: raw)?.rawValue == raw)
        }
        #expect(EngineErrorType.internal.rawValue == "Internal")
        #expect(EngineErrorType.clusterTimeout.rawValue == "ClusterTimeout")
        // Case matters: these are Python class names.
        #expect(EngineErrorType(rawValue: "objectnotfound") == nil)
    }

    @Test func accessorsAreNilWithoutEngineData() {
        let plain = RPCError(code: .invalidParams, message: "size must be a number")
        #expect(plain.data == nil)
        #expect(plain.engineType == nil)
        #expect(plain.errno == nil)
        #expect(plain.errnoName == nil)
        let unknownType = RPCError(code: .engineError, message: "m", data: ["type": "SomethingElse", "errno": "2"])
        #expect(unknownType.engineType == nil)
        #expect(unknownType.errno == nil)
        let notAnObject = RPCError(code: .engineError, message: "m", data: ["ObjectNotFound", 2])
        #expect(notAnObject.engineType == nil)
        #expect(notAnObject.errno == nil)
    }

    @Test func invalidParamsHelper() {
        let e = RPCError.invalidParams("bad")
        #expect(e.code.rawValue == -32602)
        #expect(e.message == "bad")
        #expect(e.data == nil)
        #expect(e.json == ["code": -32602, "message": "bad"])
    }

    @Test func descriptions() {
        #expect(RPCError(code: .invalidParams, message: "bad size").description == "bad size (-32602)")
        #expect(RPCError.engine(.clusterError, "down", errno: 5).description == "ClusterError: down")
        #expect(RPCError(code: .parseError, message: "x").description == "x (-32700)")
    }

    @Test func decodingFromJSON() throws {
        let e = try #require(RPCError(json: try JSONValue.parse(#"{"code":-32601,"message":"nope"}"#)))
        #expect(e == RPCError(code: .methodNotFound, message: "nope"))
        #expect(e.data == nil)
        let withNullData = try #require(RPCError(json: try JSONValue.parse(#"{"code":1,"message":"","data":null}"#)))
        #expect(withNullData.data == .some(.null))
        #expect(RPCError(json: try JSONValue.parse(#"{"code":1.5,"message":"m"}"#)) == nil)
        #expect(RPCError(json: try JSONValue.parse(#"{"code":1}"#)) == nil)
        #expect(RPCError(json: try JSONValue.parse(#"["code",1]"#)) == nil)
    }

    @Test func errnoOutOfInt32RangeDoesNotTrap() async {
        // Bug: RPCError.errno converts data.errno with Int32(_:), which traps
        // when a peer sends an errno outside Int32 (e.g. 4294967296). A client
        // reading a server's error response would crash on `error.errno`.
        // Expected: nil (or at least no crash). Actual: the process traps.
        await #expect(processExitsWith: .success) {
            let text = #"{"code":-32000,"message":"m","data":{"type":"ClusterError","errno":4294967296}}"#
            guard let e = RPCError(json: try JSONValue.parse(text)) else { return }
            _ = e.errno
        }
    }
}

@Suite("EngineErrorType")
struct EngineErrorTypeTests {
    /// The one kind enum is the wire's `data.type`: every case survives the
    /// trip through an error object and back, under the seed's class name.
    @Test(arguments: EngineErrorType.allCases)
    func everyTypeRoundTrips(_ type: EngineErrorType) throws {
        let wire = RPCError.engine(type, "m").json
        let back = try #require(RPCError(json: wire))
        #expect(back.engineType == type)
        let expected: String =
            switch type {
            case .volumeClientError: "VolumeClientError"
            case .objectNotFound: "ObjectNotFound"
            case .clusterError: "ClusterError"
            case .clusterTimeout: "ClusterTimeout"
            case .evictionError: "EvictionError"
            case .internal: "Internal"
            }
        #expect(wire["data"]?["type"]?.stringValue == expected)
    }
}
