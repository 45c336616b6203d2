import Foundation
import JSONValue
import Logging
import RPCServer
import TestSupport
import Testing
import VolumeEngine
import VolumeService

/// protocol/ is the source of truth: the served methods must match it, and
/// its example exchanges must replay against the real daemon.
@Suite("Protocol conformance", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct ProtocolConformanceTests {
    static let protocolDir = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("protocol")

    static func document() throws -> JSONValue {
        try JSONValue.parse([UInt8](Data(contentsOf: protocolDir.appendingPathComponent("openrpc.json"))))
    }

    @Test func servedMethodsAreExactlyTheDocumentedOnes() throws {
        let doc = try Self.document()
        let documented = Set(try #require(doc["methods"]?.arrayValue).compactMap { $0["name"]?.stringValue })
        let env = try #require(TestCluster.environment)
        let engine = try VolumeEngine.connect(
            EngineConfiguration(cluster: TestCluster.options(), fsName: env.fsName, instanceName: "conformance"),
            logger: Logger(label: "test"))
        defer { engine.shutdown() }
        let served = Set(EngineMethods.handlers(engine: engine, stats: ServerStats()).map(\.name))
        #expect(served.subtracting(documented).isEmpty, "served but not documented: \(served.subtracting(documented))")
        #expect(documented.subtracting(served).isEmpty, "documented but not served: \(documented.subtracting(served))")
    }

    @Test func documentedParamsAreAcceptedAndUnknownOnesRefused() throws {
        let daemon = try DaemonProcess()
        let client = try LineClient(path: daemon.socketPath)
        for method in try #require(try Self.document()["methods"]?.arrayValue) {
            let name = try #require(method["name"]?.stringValue)
            let reply = try JSONValue.parse(
                try client.request(#"{"jsonrpc":"2.0","id":1,"method":"\#(name)","params":{"no_such_param":1}}"#))
            #expect(reply["error"]?["code"] == -32602, "\(name) refuses an unknown param")
            #expect(reply["error"]?["message"]?.stringValue?.contains("no_such_param") == true)
        }
    }

    /// Compares a reply with an expectation whose "<string>", "<integer>",
    /// "<number>", "<base64>" and "<any>" leaves match any value of that kind.
    static func matches(_ actual: JSONValue?, _ expected: JSONValue) -> Bool {
        switch expected {
        case .string("<any>"): return actual != nil
        case .string("<string>"): return actual?.stringValue != nil
        case .string("<base64>"): return actual?.stringValue.flatMap { Data(base64Encoded: $0) } != nil
        case .string("<integer>"): return actual?.int64Value != nil
        case .string("<number>"): if case .number? = actual { return true } else { return false }
        case .object(let o):
            guard let a = actual?.objectValue, Set(a.keys) == Set(o.keys) else { return false }
            return o.allSatisfy { matches(a[$0.key], $0.value) }
        case .array(let items):
            guard let a = actual?.arrayValue, a.count == items.count else { return false }
            return zip(a, items).allSatisfy { matches($0, $1) }
        default: return actual == expected
        }
    }

    @Test func examplesReplay() throws {
        let daemon = try DaemonProcess()
        let dir = Self.protocolDir.appendingPathComponent("examples")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".jsonl") }.sorted()
        #expect(files.count >= 4)
        for file in files {
            let client = try LineClient(path: daemon.socketPath)
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for (n, line) in text.split(separator: "\n").enumerated() {
                let example = try JSONValue.parse(String(line))
                let send = try #require(example["send"]?.stringValue)
                let expect = try #require(example["expect"])
                try client.send(send + "\n")
                if expect.isNull {
                    // No reply is due: a ping afterwards must be answered first.
                    let probe = try JSONValue.parse(try client.request(#"{"jsonrpc":"2.0","id":"probe","method":"ping"}"#))
                    #expect(probe["id"] == "probe", "\(file):\(n + 1) expected no reply")
                } else {
                    let reply = try JSONValue.parse(try #require(try client.readLine()))
                    #expect(Self.matches(reply, expect), "\(file):\(n + 1): \(reply) does not match \(expect)")
                }
            }
        }
    }
}
