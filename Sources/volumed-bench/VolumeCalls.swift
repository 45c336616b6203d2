import Foundation
import JSONValue
import Synchronization
import VolumeClient

/// Calls through the daemon with `VolumeClient.RPCConnection`, timed in ns.
enum VolumeCalls {
    static let callTimeout = 300.0

    static func volumePath(_ name: String) -> JSONValue {
        ["group_id": .null, "volume_id": .string(name)]
    }

    /// create_volume then authorize (the auth ID is the volume's name);
    /// returns the time of each call.
    static func createAndAuthorize(
        _ conn: RPCConnection, name: String, tenant: String, size: Int
    ) async throws -> (create: UInt64, authorize: UInt64) {
        var params: [String: JSONValue] = ["volume_path": volumePath(name)]
        if size > 0 { params["size"] = .int(size) }
        let t0 = nowNanos()
        _ = try await conn.call("create_volume", params: .object(params), timeout: callTimeout)
        let t1 = nowNanos()
        let r = try await conn.call(
            "authorize",
            params: ["volume_path": volumePath(name), "auth_id": .string(name), "tenant_id": .string(tenant)],
            timeout: callTimeout)
        let t2 = nowNanos()
        guard let key = r["auth_key"]?.stringValue, !key.isEmpty else {
            throw BenchError("authorize \(name) returned no auth_key: \(r)")
        }
        return (t1 - t0, t2 - t1)
    }

    /// deauthorize, delete_volume, purge_volume; returns the time of each call.
    static func teardown(_ conn: RPCConnection, name: String) async throws -> (UInt64, UInt64, UInt64) {
        let vp = volumePath(name)
        let t0 = nowNanos()
        _ = try await conn.call("deauthorize", params: ["volume_path": vp, "auth_id": .string(name)], timeout: callTimeout)
        let t1 = nowNanos()
        _ = try await conn.call("delete_volume", params: ["volume_path": vp], timeout: callTimeout)
        let t2 = nowNanos()
        _ = try await conn.call("purge_volume", params: ["volume_path": vp], timeout: callTimeout)
        let t3 = nowNanos()
        return (t1 - t0, t2 - t1, t3 - t2)
    }

    /// Connections, each connected (by a ping) before any timing starts.
    static func connections(_ socket: String, count: Int) async throws -> [RPCConnection] {
        var conns: [RPCConnection] = []
        for _ in 0..<count {
            let c = RPCConnection(socketPath: socket)
            _ = try await c.call("ping", timeout: 30)
            conns.append(c)
        }
        return conns
    }

    /// Runs `op` on every name, spread over `conns` (client k takes names
    /// k, k + clients, ...), all clients at once. Returns each name's
    /// timings and the wall time.
    static func concurrently<T: Sendable>(
        _ conns: [RPCConnection], names: [String],
        _ op: @escaping @Sendable (RPCConnection, String) async throws -> T
    ) async throws -> (results: [String: T], wall: UInt64) {
        let start = nowNanos()
        let results = try await withThrowingTaskGroup(of: [(String, T)].self) { group in
            for (k, conn) in conns.enumerated() {
                let mine = stride(from: k, to: names.count, by: conns.count).map { names[$0] }
                group.addTask {
                    var out: [(String, T)] = []
                    for name in mine { out.append((name, try await op(conn, name))) }
                    return out
                }
            }
            var all: [String: T] = [:]
            for try await part in group { for (n, t) in part { all[n] = t } }
            return all
        }
        return (results, nowNanos() - start)
    }
}
