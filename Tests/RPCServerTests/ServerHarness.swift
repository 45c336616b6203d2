import Foundation
import JSONValue
import Logging
import RPCServer
import TestSupport
import VolumeProtocol

/// A real SocketServer on a temporary socket, serving test methods instead
/// of the engine, so JSON-RPC handling and limits are tested without Ceph.
final class ServerHarness: @unchecked Sendable {
    let server: SocketServer
    let dispatcher: RPCDispatcher
    let pools = BackendPools.standard()
    let socketPath: String
    private let dir: String

    /// Test methods:
    /// - `echo`: returns its params;
    /// - `quick`: answered on the event loop itself, like `ping` (arms the busy-poll);
    /// - `sleep` {ms, key?}: sleeps, with an optional serialisation key;
    /// - `fail`: an engine error (VolumeClientError, EEXIST);
    /// - `record` {key, tag, ms}: appends "start tag"/"end tag" to `events` around a sleep, under `key`;
    /// - `monsleep` {ms}: a sleep on the mon back-end's pool;
    /// - `patient` {ms, extra}: a sleep whose deadline is `extra` seconds later, as evict's.
    init(limits: ServerLimits = ServerLimits(), requestTimeout: Double = 0, configure: (inout ServerConfiguration) -> Void = { _ in })
        throws
    {
        dir = NSTemporaryDirectory() + "volumed-srv-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        socketPath = dir + "/s.sock"
        var config = ServerConfiguration(socketPath: socketPath)
        config.limits = limits
        config.drainTimeout = 10
        configure(&config)
        let events = self.events
        let methods: [MethodHandler] = [
            MethodHandler("echo") { p in
                let v = JSONValue.object(p.members)
                return PreparedCall { v }
            },
            MethodHandler("quick", inline: true) { _ in PreparedCall { "quick" } },
            MethodHandler("sleep") { p in
                let ms = try p.optionalInt("ms") ?? 100
                let key = try p.optionalString("key")
                return PreparedCall(keys: key.map { [$0] } ?? []) {
                    usleep(UInt32(ms) * 1000)
                    return .int(ms)
                }
            },
            MethodHandler("fail") { _ in
                PreparedCall { throw RPCError.engine(.volumeClientError, "it failed", errno: 17, errnoName: "EEXIST") }
            },
            MethodHandler("record", mutating: true) { p in
                let keys = (p.members["keys"]?.arrayValue ?? []).compactMap(\.stringValue)
                let tag = try p.string("tag")
                let ms = try p.optionalInt("ms") ?? 50
                return PreparedCall(keys: keys) {
                    events.append("start \(tag)")
                    usleep(UInt32(ms) * 1000)
                    events.append("end \(tag)")
                    return .string(tag)
                }
            },
            MethodHandler("patient") { p in
                let ms = try p.optionalInt("ms") ?? 10
                let extra = try p.optionalSeconds("extra") ?? 0
                return PreparedCall(extraTime: extra) {
                    usleep(UInt32(ms) * 1000)
                    return .int(ms)
                }
            },
            MethodHandler("monsleep", backend: .mon) { p in
                let ms = try p.optionalInt("ms") ?? 10
                return PreparedCall {
                    usleep(UInt32(ms) * 1000)
                    return .int(ms)
                }
            },
        ]
        pools.start()
        dispatcher = RPCDispatcher(methods: methods, pools: pools, logger: Logger(label: "test"), requestTimeout: requestTimeout)
        server = try SocketServer(config: config, dispatcher: dispatcher, logger: Logger(label: "test"))
    }

    let events = EventLog()

    func client() throws -> LineClient { try LineClient(path: socketPath, receiveTimeout: 30) }

    /// One request line, one parsed reply.
    func call(_ line: String) throws -> JSONValue {
        try JSONValue.parse(try client().request(line))
    }

    deinit {
        server.shutdown()
        pools.shutdown()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// A thread-safe list of strings.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []

    func append(_ s: String) {
        lock.lock()
        items.append(s)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }
}
