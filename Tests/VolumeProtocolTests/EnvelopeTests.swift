import JSONValue
import Testing
import VolumeProtocol

private func json(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

private func decode(_ text: String) throws -> Result<RPCRequest, RequestDecodingError> {
    RPCRequest.decode(try json(text))
}

/// The decoded request, or a recorded issue.
private func request(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> RPCRequest {
    switch try decode(text) {
    case .success(let r): return r
    case .failure(let e):
        Issue.record("expected a valid request, got \(e.error)", sourceLocation: sourceLocation)
        throw e
    }
}

/// The decoding failure, or a recorded issue.
private func failure(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> RequestDecodingError? {
    switch try decode(text) {
    case .success(let r):
        Issue.record("expected invalidRequest, decoded \(r)", sourceLocation: sourceLocation)
        return nil
    case .failure(let e): return e
    }
}

@Suite("RPCRequest.decode")
struct RPCRequestDecodeTests {
    @Test func requestWithStringID() throws {
        let r = try request(#"{"jsonrpc":"2.0","id":"abc-1","method":"create_volume","params":{"size":1}}"#)
        #expect(r.id == .string("abc-1"))
        #expect(r.method == "create_volume")
        #expect(r.params == ["size": 1])
        #expect(!r.isNotification)
    }

    @Test(arguments: ["1", "0", "-5", "1.50", "12345678901234567890", "1e3"])
    func requestWithNumberIDKeepsItsText(_ literal: String) throws {
        let r = try request(#"{"jsonrpc":"2.0","id":\#(literal),"method":"ping"}"#)
        guard case .number(let n)? = r.id else {
            Issue.record("id is \(String(describing: r.id))")
            return
        }
        #expect(n.text == literal)
        #expect(!r.isNotification)
        #expect(r.params == nil)
    }

    @Test func requestWithNullIDIsNotANotification() throws {
        let r = try request(#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#)
        #expect(r.id == .some(.null))
        #expect(!r.isNotification)
        // It is echoed back as an explicit null.
        #expect(r.json["id"] == .some(.null))
    }

    @Test func notificationHasNoID() throws {
        let r = try request(#"{"jsonrpc":"2.0","method":"ping","params":[1,2]}"#)
        #expect(r.id == nil)
        #expect(r.isNotification)
        #expect(r.params == [1, 2])
        #expect(r.json["id"] == nil)
    }

    @Test func paramsMayBeAnyObjectOrArrayOrAbsent() throws {
        #expect(try request(#"{"jsonrpc":"2.0","id":1,"method":"m","params":{}}"#).params == [:])
        #expect(try request(#"{"jsonrpc":"2.0","id":1,"method":"m","params":[]}"#).params == [])
        #expect(try request(#"{"jsonrpc":"2.0","id":1,"method":"m","params":[{"a":[null]}]}"#).params == [["a": [nil]]])
        #expect(try request(#"{"jsonrpc":"2.0","id":1,"method":"m"}"#).params == nil)
        // Member order does not matter; the empty method name is still a string.
        let r = try request(#"{"params":{"x":true},"method":"","id":2,"jsonrpc":"2.0"}"#)
        #expect(r == RPCRequest(id: 2, method: "", params: ["x": true]))
    }

    @Test(arguments: ["1", #""a string""#, "[]", #"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, "null", "true"])
    func nonObjectIsInvalidRequestWithNullID(_ text: String) throws {
        let e = try #require(try failure(text))
        #expect(e.error.code == .invalidRequest)
        #expect(e.error.code.rawValue == -32600)
        #expect(e.id == .null)
    }

    @Test(arguments: [
        // jsonrpc missing, wrong string, wrong type
        (#"{"id":7,"method":"ping"}"#, JSONValue.int(7)),
        (#"{"jsonrpc":"1.0","id":7,"method":"ping"}"#, .int(7)),
        (#"{"jsonrpc":2.0,"id":"s","method":"ping"}"#, .string("s")),
        (#"{"jsonrpc":"2.00","id":"s","method":"ping"}"#, .string("s")),
        (#"{"jsonrpc":"2.0 ","id":"s","method":"ping"}"#, .string("s")),
        (#"{"jsonrpc":null,"id":null,"method":"ping"}"#, .null),
        (#"{"jsonrpc":"1.0","method":"ping"}"#, .null),
        // method missing or not a string
        (#"{"jsonrpc":"2.0","id":8}"#, .int(8)),
        (#"{"jsonrpc":"2.0","id":8,"method":1}"#, .int(8)),
        (#"{"jsonrpc":"2.0","id":"m","method":null}"#, .string("m")),
        (#"{"jsonrpc":"2.0","id":"m","method":["ping"]}"#, .string("m")),
        (#"{"jsonrpc":"2.0","id":"m","method":{"name":"ping"}}"#, .string("m")),
        // params neither object nor array
        (#"{"jsonrpc":"2.0","id":9,"method":"ping","params":"x"}"#, .int(9)),
        (#"{"jsonrpc":"2.0","id":9,"method":"ping","params":1}"#, .int(9)),
        (#"{"jsonrpc":"2.0","id":9,"method":"ping","params":true}"#, .int(9)),
        (#"{"jsonrpc":"2.0","id":9,"method":"ping","params":null}"#, .int(9)),
        (#"{"jsonrpc":"2.0","method":"ping","params":"x"}"#, .null),
    ])
    func invalidRequestEchoesAUsableID(_ text: String, _ expectedID: JSONValue) throws {
        let e = try #require(try failure(text))
        #expect(e.error.code == .invalidRequest)
        #expect(e.id == expectedID)
        #expect(!e.error.message.isEmpty)
    }

    @Test func echoedNumberIDKeepsItsText() throws {
        let e = try #require(try failure(#"{"jsonrpc":"1.0","id":1.50,"method":"ping"}"#))
        #expect(e.id == (try json("1.50")))
        #expect(String(decoding: e.id.serialized(), as: UTF8.self) == "1.50")
    }

    @Test(arguments: [
        #"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":{},"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":[],"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":true,"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":false,"method":"ping"}"#,
        // An unusable id wins over other faults.
        #"{"id":[1]}"#,
        #"{"jsonrpc":"1.0","id":{"x":1},"method":7,"params":"p"}"#,
    ])
    func unusableIDIsInvalidRequestWithNullID(_ text: String) throws {
        let e = try #require(try failure(text))
        #expect(e.error.code == .invalidRequest)
        #expect(e.id == .null)
    }

    @Test func requestJSONRoundTrips() throws {
        let requests = [
            RPCRequest(id: 1, method: "ping"),
            RPCRequest(id: "x", method: "create", params: ["a": [1, nil]]),
            RPCRequest(id: .null, method: "null-id"),
            RPCRequest(id: nil, method: "notify", params: [true]),
            RPCRequest(id: try json("1.50"), method: "decimal-id", params: [:]),
        ]
        for r in requests {
            let o = try #require(r.json.objectValue)
            var keys: Set<String> = ["jsonrpc", "method"]
            if r.id != nil { keys.insert("id") }
            if r.params != nil { keys.insert("params") }
            #expect(Set(o.keys) == keys)
            #expect(o["jsonrpc"] == "2.0")
            let back = RPCRequest.decode(try JSONValue.parse(r.json.serialized()))
            #expect((try? back.get()) == r)
        }
    }
}

@Suite("RPCResponse")
struct RPCResponseTests {
    @Test func successShape() throws {
        let r = RPCResponse(id: 1, result: ["ok": true])
        let o = try #require(r.json.objectValue)
        #expect(Set(o.keys) == ["jsonrpc", "id", "result"])
        #expect(o["jsonrpc"] == "2.0")
        #expect(o["id"] == 1)
        #expect(o["result"] == ["ok": true])
        #expect(String(decoding: r.json.serialized(), as: UTF8.self) == #"{"id":1,"jsonrpc":"2.0","result":{"ok":true}}"#)
    }

    @Test func nullResultIsStillPresent() throws {
        let r = RPCResponse(id: "a", result: nil)
        let o = try #require(r.json.objectValue)
        #expect(Set(o.keys) == ["jsonrpc", "id", "result"])
        #expect(o["result"] == .some(.null))
        let back = try #require(RPCResponse(json: r.json))
        #expect(back.outcome == .success(.null))
    }

    @Test func errorShape() throws {
        let r = RPCResponse(id: .null, error: RPCError(code: .methodNotFound, message: "no such method", data: ["m": "x"]))
        let o = try #require(r.json.objectValue)
        #expect(Set(o.keys) == ["jsonrpc", "id", "error"])
        #expect(o["id"] == .some(.null))
        let e = try #require(o["error"]?.objectValue)
        #expect(Set(e.keys) == ["code", "message", "data"])
        #expect(e["code"] == .int(-32601))
        #expect(e["message"] == "no such method")
        #expect(e["data"] == ["m": "x"])
        #expect(
            String(decoding: r.json.serialized(), as: UTF8.self)
                == #"{"error":{"code":-32601,"data":{"m":"x"},"message":"no such method"},"id":null,"jsonrpc":"2.0"}"#)
    }

    @Test func errorWithoutDataHasNoDataKey() throws {
        let r = RPCResponse(id: 3, error: .invalidParams("bad"))
        let e = try #require(r.json["error"]?.objectValue)
        #expect(Set(e.keys) == ["code", "message"])
        #expect(e["code"] == .int(-32602))
    }

    @Test func roundTripThroughBytes() throws {
        let responses = [
            RPCResponse(id: 1, result: "pong"),
            RPCResponse(id: "req-7", result: ["mons": ["10.0.0.1:6789", "10.0.0.2:6789"]]),
            RPCResponse(id: try JSONValue.parse("1.50"), result: []),
            RPCResponse(id: .null, result: nil),
            RPCResponse(id: .null, error: RPCError(code: .parseError, message: "parse error")),
            RPCResponse(id: 2, error: .engine(.objectNotFound, "gone", errno: 2, errnoName: "ENOENT")),
            RPCResponse(id: 3, error: .engine(.clusterTimeout, "slow")),
            RPCResponse(id: 4, error: RPCError(code: RPCErrorCode(rawValue: 12345), message: "custom", data: .null)),
            RPCResponse(id: 5, error: RPCError(code: .internalError, message: "line\nbreak", data: [1, "two"])),
        ]
        for r in responses {
            let bytes = r.json.serialized()
            #expect(!bytes.contains(0x0A))
            let back = try #require(RPCResponse(json: try JSONValue.parse(bytes)))
            #expect(back == r)
        }
    }

    @Test(arguments: [
        #"{"id":1,"result":1}"#,  // no jsonrpc
        #"{"jsonrpc":"1.0","id":1,"result":1}"#,
        #"{"jsonrpc":2.0,"id":1,"result":1}"#,
        #"{"jsonrpc":"2.0","result":1}"#,  // no id
        #"{"jsonrpc":"2.0","id":1}"#,  // neither result nor error
        #"{"jsonrpc":"2.0","id":1,"error":{"message":"m"}}"#,  // no code
        #"{"jsonrpc":"2.0","id":1,"error":{"code":"-32600","message":"m"}}"#,
        #"{"jsonrpc":"2.0","id":1,"error":{"code":-32600.5,"message":"m"}}"#,
        #"{"jsonrpc":"2.0","id":1,"error":{"code":-32600}}"#,  // no message
        #"{"jsonrpc":"2.0","id":1,"error":{"code":-32600,"message":7}}"#,
        #"{"jsonrpc":"2.0","id":1,"error":"oops"}"#,
        #"[{"jsonrpc":"2.0","id":1,"result":1}]"#,
        "null", "1",
    ])
    func notAResponse(_ text: String) throws {
        #expect(RPCResponse(json: try JSONValue.parse(text)) == nil)
    }

    @Test func errorResponseDecodesCodeMessageAndData() throws {
        let text =
            #"{"jsonrpc":"2.0","id":"q","error":{"code":-32000,"message":"boom","data":{"type":"ClusterError","errno":110,"errno_name":"ETIMEDOUT"}}}"#
        let r = try #require(RPCResponse(json: try JSONValue.parse(text)))
        #expect(r.id == "q")
        guard case .failure(let e) = r.outcome else {
            Issue.record("expected an error outcome")
            return
        }
        #expect(e.code == .engineError)
        #expect(e.message == "boom")
        #expect(e.engineType == .clusterError)
        #expect(e.errno == 110)
        #expect(e.errnoName == "ETIMEDOUT")
    }

    /// The server writes responses directly; the bytes must equal the
    /// serialized object (members sorted), for results and errors alike.
    @Test(arguments: [
        RPCResponse(id: 1, result: "pong"),
        RPCResponse(id: "a\"b", result: ["mount_path": "/volumes/g/v", "n": 3]),
        RPCResponse(id: .null, result: .null),
        RPCResponse(id: 7, result: [1, "x", ["k": true]]),
        RPCResponse(id: .null, error: RPCError(code: .parseError, message: "parse error")),
        RPCResponse(id: "z", error: RPCError.engine(.clusterTimeout, "slow", errno: 110, errnoName: "ETIMEDOUT")),
    ])
    func directWriteEqualsSerializedObject(_ response: RPCResponse) {
        var out: [UInt8] = []
        response.write(into: &out)
        #expect(String(decoding: out, as: UTF8.self) == String(decoding: response.json.serialized(), as: UTF8.self))
    }
}
