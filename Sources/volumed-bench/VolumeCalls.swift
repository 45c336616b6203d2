import Foundation
import JSONValue
import Synchronization
import VolumeClient
import VolumeProtocol

/// Calls through the daemon with `VolumeClient.RPCConnection`, timed in ns.
enum VolumeCalls {
    static let callTimeout = 300.0

    static func volumePath(_ name: String) -> VolumeRef { VolumeRef(unchecked: nil, volumeID: name) }

    /// Sends one call of a method type (the wire names are the contract's).
    static func send<M: RPCMethod>(_ conn: RPCConnection, _ m: M) async throws -> M.Result {
        let c = RPCCall(m)
        return try M.reply(await conn.call(c.method, params: c.params, timeout: callTimeout))
    }

    /// create_volume then authorize (the auth ID is the volume's name);
    /// returns the time of each call.
    static func createAndAuthorize(
        _ conn: RPCConnection, name: String, tenant: String, size: Int
    ) async throws -> (create: UInt64, authorize: UInt64) {
        let create = CreateVolumeRequest(
            volume: volumePath(name), size: size > 0 ? Int64(size) : nil, dataIsolated: false, namespaceIsolated: true,
            mode: VolumeClient.defaultMode)
        let t0 = nowNanos()
        _ = try await send(conn, create)
        let t1 = nowNanos()
        let key = try await send(
            conn,
            AuthorizeRequest(
                volume: volumePath(name), authID: AuthID(unchecked: name), readonly: false,
                tenantID: TenantID(unchecked: tenant), allowExistingID: false))
        let t2 = nowNanos()
        guard let key, !key.isEmpty else {
            throw BenchError("authorize \(name) returned no auth_key")
        }
        return (t1 - t0, t2 - t1)
    }

    /// deauthorize, delete_volume, purge_volume; returns the time of each call.
    static func teardown(_ conn: RPCConnection, name: String) async throws -> (UInt64, UInt64, UInt64) {
        let vp = volumePath(name)
        let t0 = nowNanos()
        try await send(conn, DeauthorizeRequest(volume: vp, authID: AuthID(unchecked: name)))
        let t1 = nowNanos()
        try await send(conn, DeleteVolumeRequest(volume: vp, dataIsolated: false))
        let t2 = nowNanos()
        try await send(conn, PurgeVolumeRequest(volume: vp, dataIsolated: false))
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
