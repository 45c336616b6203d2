import JSONValue
import VolumeProtocol

/// A typed client of `cephfs-volumed`: one Swift method per RPC.
///
/// ```swift
/// let client = VolumeClient(socketPath: "/run/cephfs-volumed/volumed.sock")
/// let mons = try await client.getMonAddrs()
/// ```
///
/// Safe to share between tasks; calls are pipelined on one connection.
/// Failures the server reports are thrown as ``RPCError`` (with the engine
/// error type and errno); transport failures as ``ConnectionError``.
public final class VolumeClient: Sendable {
    public static let defaultSocketPath = "/run/cephfs-volumed/volumed.sock"

    public let connection: RPCConnection
    /// Seconds to wait for each reply; nil waits for ever.
    public let callTimeout: Double?

    public init(socketPath: String = VolumeClient.defaultSocketPath, callTimeout: Double? = nil) {
        connection = RPCConnection(socketPath: socketPath)
        self.callTimeout = callTimeout
    }

    /// Calls any method by name with raw params: the escape hatch.
    public func call(_ method: String, params: JSONValue? = nil) async throws -> JSONValue {
        try await connection.call(method, params: params, timeout: callTimeout)
    }

    public func close() { connection.close() }

    /// Answers "pong" when the daemon is up.
    public func ping() async throws -> String {
        try decode(await call(Method.ping), as: "string") { $0.stringValue }
    }

    /// The monitors' `ip:port` addresses.
    public func getMonAddrs() async throws -> [String] {
        let v = try await call(Method.getMonAddrs)
        return try decode(v, as: "array of strings") { v in
            v.arrayValue.flatMap { a in
                let s = a.compactMap(\.stringValue)
                return s.count == a.count ? s : nil
            }
        }
    }

    func decode<T>(_ value: JSONValue, as what: String, _ read: (JSONValue) -> T?) throws -> T {
        guard let t = read(value) else { throw ConnectionError.invalidReply("expected \(what), got \(value.typeName)") }
        return t
    }
}
