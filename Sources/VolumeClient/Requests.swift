import JSONValue
import VolumeProtocol
// The result types live with the contract; users of this library keep them.
@_exported import struct VolumeProtocol.ServerInfo
@_exported import struct VolumeProtocol.AuthorizedID

/// A method name with its params, as the typed client and `rpc-cli` send them.
///
/// Every param is sent explicitly (optional ones that are nil as `null`,
/// which the daemon reads as the default), so what is sent never depends on
/// the daemon's defaults matching this client's.
package struct RPCCall: Sendable {
    package let method: String
    package let params: JSONValue?
    /// The least time to wait for the reply, for a call whose params give
    /// the daemon a time of its own (evict's `timeout`).
    package var minimumTimeout: Double?

    init(_ method: String, _ params: [String: JSONValue]? = nil, minimumTimeout: Double? = nil) {
        self.method = method
        self.params = params.map { .object($0) }
        self.minimumTimeout = minimumTimeout
    }

    static func opt(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
    static func opt<I: BinaryInteger>(_ i: I?) -> JSONValue { i.map { .int($0) } ?? .null }

    package static func ping() -> RPCCall { RPCCall(Method.ping) }
    package static func serverInfo() -> RPCCall { RPCCall(Method.serverInfo) }
    package static func getMonAddrs() -> RPCCall { RPCCall(Method.getMonAddrs) }
    package static func recover() -> RPCCall { RPCCall(Method.recover) }

    package static func createGroup(_ groupID: String, mode: UInt32) -> RPCCall {
        RPCCall(Method.createGroup, ["group_id": .string(groupID), "mode": .int(mode)])
    }

    package static func destroyGroup(_ groupID: String) -> RPCCall {
        RPCCall(Method.destroyGroup, ["group_id": .string(groupID)])
    }

    package static func createVolume(
        _ v: VolumePath, size: Int64?, dataIsolated: Bool, namespaceIsolated: Bool, mode: UInt32
    ) -> RPCCall {
        RPCCall(Method.createVolume, [
            "volume_path": v.json, "size": opt(size), "data_isolated": .bool(dataIsolated),
            "namespace_isolated": .bool(namespaceIsolated), "mode": .int(mode),
        ])
    }

    package static func deleteVolume(_ v: VolumePath, dataIsolated: Bool) -> RPCCall {
        RPCCall(Method.deleteVolume, ["volume_path": v.json, "data_isolated": .bool(dataIsolated)])
    }

    package static func purgeVolume(_ v: VolumePath, dataIsolated: Bool) -> RPCCall {
        RPCCall(Method.purgeVolume, ["volume_path": v.json, "data_isolated": .bool(dataIsolated)])
    }

    package static func authorize(
        _ v: VolumePath, authID: String, readonly: Bool, tenantID: String?, allowExistingID: Bool
    ) -> RPCCall {
        RPCCall(Method.authorize, [
            "volume_path": v.json, "auth_id": .string(authID), "readonly": .bool(readonly),
            "tenant_id": opt(tenantID), "allow_existing_id": .bool(allowExistingID),
        ])
    }

    package static func deauthorize(_ v: VolumePath, authID: String) -> RPCCall {
        RPCCall(Method.deauthorize, ["volume_path": v.json, "auth_id": .string(authID)])
    }

    package static func getAuthorizedIDs(_ v: VolumePath) -> RPCCall {
        RPCCall(Method.getAuthorizedIDs, ["volume_path": v.json])
    }

    package static func evict(authID: String, volume: VolumePath?, timeout: Double) -> RPCCall {
        // The daemon may take the whole eviction timeout; wait at least that long, with a margin.
        RPCCall(Method.evict, [
            "auth_id": .string(authID), "volume_path": volume?.json ?? .null, "timeout": .number(JSONNumber(timeout)),
        ], minimumTimeout: timeout + 30)
    }

    package static func getUsedBytes(_ v: VolumePath) -> RPCCall {
        RPCCall(Method.getUsedBytes, ["volume_path": v.json])
    }

    package static func setMaxBytes(_ v: VolumePath, maxBytes: Int64?) -> RPCCall {
        // `max_bytes` is required: null (no quota) is sent explicitly.
        RPCCall(Method.setMaxBytes, ["volume_path": v.json, "max_bytes": opt(maxBytes)])
    }

    package static func createSnapshotVolume(_ v: VolumePath, snapshotName: String, mode: UInt32) -> RPCCall {
        RPCCall(Method.createSnapshotVolume, ["volume_path": v.json, "snapshot_name": .string(snapshotName), "mode": .int(mode)])
    }

    package static func destroySnapshotVolume(_ v: VolumePath, snapshotName: String) -> RPCCall {
        RPCCall(Method.destroySnapshotVolume, ["volume_path": v.json, "snapshot_name": .string(snapshotName)])
    }

    package static func createSnapshotGroup(_ groupID: String, snapshotName: String, mode: UInt32) -> RPCCall {
        RPCCall(Method.createSnapshotGroup, ["group_id": .string(groupID), "snapshot_name": .string(snapshotName), "mode": .int(mode)])
    }

    package static func destroySnapshotGroup(_ groupID: String, snapshotName: String) -> RPCCall {
        RPCCall(Method.destroySnapshotGroup, ["group_id": .string(groupID), "snapshot_name": .string(snapshotName)])
    }

    package static func cloneVolumeToExisting(destination: VolumePath, source: VolumePath, snapshotName: String) -> RPCCall {
        RPCCall(Method.cloneVolumeToExisting, [
            "dest_volume_path": destination.json, "src_volume_path": source.json, "src_snapshot_name": .string(snapshotName),
        ])
    }

    package static func putObject(pool: String, object: String, data: [UInt8]) -> RPCCall {
        RPCCall(Method.putObject, ["pool_name": .string(pool), "object_name": .string(object), "data": .string(Base64.encode(data))])
    }

    package static func getObject(pool: String, object: String) -> RPCCall {
        RPCCall(Method.getObject, ["pool_name": .string(pool), "object_name": .string(object)])
    }

    package static func deleteObject(pool: String, object: String) -> RPCCall {
        RPCCall(Method.deleteObject, ["pool_name": .string(pool), "object_name": .string(object)])
    }

    package static func putObjectVersioned(pool: String, object: String, data: [UInt8], version: UInt64?) -> RPCCall {
        RPCCall(Method.putObjectVersioned, [
            "pool_name": .string(pool), "object_name": .string(object), "data": .string(Base64.encode(data)),
            "version": opt(version),
        ])
    }

    package static func getObjectAndVersion(pool: String, object: String) -> RPCCall {
        RPCCall(Method.getObjectAndVersion, ["pool_name": .string(pool), "object_name": .string(object)])
    }
}

/// Reads results into Swift values; a result of the wrong shape is
/// ``ConnectionError/invalidReply(_:)``.
package enum Reply {
    static func bad(_ what: String, _ value: JSONValue) -> ConnectionError {
        .invalidReply("expected \(what), got \(value.typeName)")
    }

    package static func string(_ v: JSONValue) throws -> String {
        guard let s = v.stringValue else { throw bad("a string", v) }
        return s
    }

    package static func strings(_ v: JSONValue) throws -> [String] {
        guard let a = v.arrayValue else { throw bad("an array of strings", v) }
        return try a.map { e in
            guard let s = e.stringValue else { throw bad("an array of strings", e) }
            return s
        }
    }

    package static func serverInfo(_ v: JSONValue) throws -> ServerInfo {
        guard v.objectValue != nil else { throw bad("an object", v) }
        func str(_ k: String) throws -> String {
            guard let s = v[k]?.stringValue else { throw ConnectionError.invalidReply("server_info: '\(k)' is not a string") }
            return s
        }
        func int(_ k: String) throws -> Int {
            guard let i = v[k]?.int64Value, let n = Int(exactly: i) else {
                throw ConnectionError.invalidReply("server_info: '\(k)' is not an integer")
            }
            return n
        }
        guard case .number(let up)? = v["uptime_seconds"], let uptime = up.doubleValue else {
            throw ConnectionError.invalidReply("server_info: 'uptime_seconds' is not a number")
        }
        return ServerInfo(
            version: try str("version"), protocolVersion: try str("protocol_version"), fsid: try str("fsid"),
            instance: try str("instance"), uptimeSeconds: uptime, connections: try int("connections"),
            inFlight: try int("in_flight"))
    }

    package static func mountPath(_ v: JSONValue) throws -> String {
        guard let p = v["mount_path"]?.stringValue else { throw ConnectionError.invalidReply("create_volume: no 'mount_path' string") }
        return p
    }

    package static func authKey(_ v: JSONValue) throws -> String? {
        guard let k = v["auth_key"] else { throw ConnectionError.invalidReply("authorize: no 'auth_key' member") }
        if k.isNull { return nil }
        guard let s = k.stringValue else { throw ConnectionError.invalidReply("authorize: 'auth_key' is \(k.typeName)") }
        return s
    }

    package static func authorizedIDs(_ v: JSONValue) throws -> [AuthorizedID]? {
        if v.isNull { return nil }
        guard let a = v.arrayValue else { throw bad("an array of [auth_id, access_level] pairs or null", v) }
        return try a.map { pair in
            guard let p = pair.arrayValue, p.count == 2, let id = p[0].stringValue, let level = p[1].stringValue else {
                throw ConnectionError.invalidReply("get_authorized_ids: an entry is not an [auth_id, access_level] pair")
            }
            return AuthorizedID(authID: id, accessLevel: level)
        }
    }

    package static func bytes(_ v: JSONValue) throws -> Int64 {
        guard let n = v.int64Value, n >= 0 else { throw bad("a non-negative integer", v) }
        return n
    }

    package static func base64(_ v: JSONValue) throws -> [UInt8] {
        guard let s = v.stringValue else { throw bad("a base64 string", v) }
        guard let data = Base64.decode(s) else { throw ConnectionError.invalidReply("the data is not valid base64") }
        return data
    }

    package static func objectAndVersion(_ v: JSONValue) throws -> (data: [UInt8], version: UInt64) {
        guard v.objectValue != nil, let d = v["data"] else { throw bad("an object with data and version", v) }
        guard case .number(let n)? = v["version"], let version = UInt64(n.text) else {
            throw ConnectionError.invalidReply("get_object_and_version: 'version' is not a non-negative integer")
        }
        return (try base64(d), version)
    }
}
