import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeProtocol

@Suite("JSON-RPC 2.0 conformance")
struct JSONRPCConformanceTests {
    let h: ServerHarness
    init() throws { h = try ServerHarness() }

    @Test func parseErrorHasNullID() throws {
        let r = try h.call("{oops")
        #expect(r["id"] == .null)
        #expect(r["error"]?["code"] == -32700)
        #expect(r["jsonrpc"] == "2.0")
        #expect(r["result"] == nil)
    }

    @Test(arguments: ["1", "\"x\"", "null", "true", "[1]"])
    func nonObjectRequestsAreInvalid(_ line: String) throws {
        let r = try h.call(line)
        let error = line == "[1]" ? r.arrayValue?.first?["error"] : r["error"]
        #expect(error?["code"] == -32600)
    }

    @Test func emptyBatchIsInvalidRequest() throws {
        let r = try h.call("[]")
        #expect(r == ["jsonrpc": "2.0", "id": .null, "error": ["code": -32600, "message": "empty batch"]])
    }

    @Test func idsAreEchoedExactly() throws {
        for id in ["7", "\"seven\"", "null", "1.50", "-0", "12345678901234567890", "1e3"] {
            let reply = try h.client().request(#"{"jsonrpc":"2.0","id":\#(id),"method":"echo"}"#)
            #expect(reply.contains(#""id":\#(id)"#), "id \(id) in \(reply)")
        }
    }

    @Test func invalidRequestsEchoUsableIDs() throws {
        #expect(try h.call(#"{"jsonrpc":"1.0","id":4,"method":"echo"}"#)["id"] == 4)
        #expect(try h.call(#"{"jsonrpc":"2.0","id":5,"method":7}"#)["error"]?["code"] == -32600)
        #expect(try h.call(#"{"jsonrpc":"2.0","id":{"a":1},"method":"echo"}"#)["id"] == .null)
        #expect(try h.call(#"{"jsonrpc":"2.0","id":6,"method":"echo","params":"x"}"#)["error"]?["code"] == -32600)
        #expect(try h.call(#"{"id":8,"method":"echo"}"#)["error"]?["code"] == -32600)
    }

    @Test func unknownMethodAndBadParams() throws {
        #expect(try h.call(#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#)["error"]?["code"] == -32601)
        let positional = try h.call(#"{"jsonrpc":"2.0","id":2,"method":"sleep","params":[1]}"#)
        #expect(positional["error"]?["code"] == -32602)
        let wrongType = try h.call(#"{"jsonrpc":"2.0","id":3,"method":"sleep","params":{"ms":"x"}}"#)
        #expect(wrongType["error"]?["code"] == -32602)
        #expect(wrongType["error"]?["message"]?.stringValue?.contains("ms") == true)
    }

    @Test func engineErrorsCarryTypeAndErrno() throws {
        let r = try h.call(#"{"jsonrpc":"2.0","id":1,"method":"fail"}"#)
        #expect(
            r["error"] == [
                "code": -32000, "message": "it failed", "data": ["type": "VolumeClientError", "errno": 17, "errno_name": "EEXIST"],
            ])
    }

    @Test func notificationsGetNoResponse() throws {
        let c = try h.client()
        try c.send(#"{"jsonrpc":"2.0","method":"echo"}"# + "\n")
        try c.send(#"{"jsonrpc":"2.0","method":"nope"}"# + "\n")
        let r = try JSONValue.parse(try c.request(#"{"jsonrpc":"2.0","id":"after","method":"echo"}"#))
        #expect(r["id"] == "after", "the first reply is the request's, so notifications got none")
    }

    @Test func batchesAnswerInOrderWithoutNotifications() throws {
        let r = try h.call(
            #"[{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"ms":200}},{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","id":2,"method":"echo","params":{"a":1}},5]"#
        )
        let items = try #require(r.arrayValue)
        #expect(items.count == 3)
        #expect(items[0]["id"] == 1 && items[0]["result"] == 200)
        #expect(items[1]["id"] == 2 && items[1]["result"] == ["a": 1])
        #expect(items[2]["id"] == .null && items[2]["error"]?["code"] == -32600)
        // A batch of notifications only gets no reply at all.
        let c = try h.client()
        try c.send(#"[{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"echo"}]"# + "\n")
        #expect(try JSONValue.parse(try c.request(#"{"jsonrpc":"2.0","id":9,"method":"echo"}"#))["id"] == 9)
    }

    @Test func pipelinedRepliesComeAsTheyComplete() throws {
        let c = try h.client()
        try c.send(#"{"jsonrpc":"2.0","id":"slow","method":"sleep","params":{"ms":500}}"# + "\n")
        try c.send(#"{"jsonrpc":"2.0","id":"fast","method":"echo"}"# + "\n")
        #expect(try JSONValue.parse(try #require(try c.readLine()))["id"] == "fast")
        #expect(try JSONValue.parse(try #require(try c.readLine()))["id"] == "slow")
    }

    @Test func garbageOnOneConnectionLeavesOthersAlone() throws {
        let bad = try h.client()
        try bad.send([0xFF, 0xFE, 0x00, 0x0A])
        #expect(try JSONValue.parse(try #require(try bad.readLine()))["error"]?["code"] == -32700)
        try bad.send(Array(#"{"jsonrpc":"2.0","id":"\#u{FFFF}","method":"echo"}"#.utf8) + [0xC0, 0x80, 0x0A])
        _ = try bad.readLine()
        #expect(try h.call(#"{"jsonrpc":"2.0","id":1,"method":"echo"}"#)["id"] == 1)
        // The bad connection itself still works too.
        #expect(try JSONValue.parse(try bad.request(#"{"jsonrpc":"2.0","id":2,"method":"echo"}"#))["id"] == 2)
    }

    @Test func invalidUTF8InAStringIsAParseError() throws {
        let c = try h.client()
        try c.send(Array(#"{"jsonrpc":"2.0","id":1,"method":"echo","params":{"s":""#.utf8) + [0xED, 0xA0, 0x80] + Array("\"}}\n".utf8))
        #expect(try JSONValue.parse(try #require(try c.readLine()))["error"]?["code"] == -32700)
    }

    @Test func halfClosedPeerStillGetsItsReplies() throws {
        let c = try h.client()
        try c.send(#"{"jsonrpc":"2.0","id":1,"method":"sleep","params":{"ms":200}}"# + "\n" + #"{"jsonrpc":"2.0","id":2,"method":"echo"}"#)
        c.shutdownWrite()
        var ids: Set<JSONValue> = []
        while let line = try c.readLine() { ids.insert(try JSONValue.parse(line)["id"]!) }
        #expect(ids == [1, 2], "an unterminated last line is still answered at end of stream")
    }
}
