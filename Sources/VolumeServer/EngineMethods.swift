import JSONValue
import VolumeEngine
import VolumeProtocol

/// The method table: wire names and params (the seed's, with its defaults)
/// mapped onto the engine, with the serialisation keys of each call.
public enum EngineMethods {
    static func volumeKeys(_ v: VolumePath) -> [String] { ["volume:\(v.groupID ?? "")/\(v.volumeID)"] }
    /// Create, delete and purge also own the volume_id, which names the trash
    /// entry, the pool and the namespace in every group.
    static func volumeIDKeys(_ v: VolumePath) -> [String] { volumeKeys(v) + ["volume_id:\(v.volumeID)"] }
    static func authKey(_ id: String) -> String { "auth:\(id)" }
    static func groupKey(_ g: String) -> String { "group:\(g)" }

    static func groupID(_ p: Params) throws -> String {
        try p.identifier("group_id") { id throws(InvalidIdentifier) in try Identifier.validateGroupID(id) }
    }

    static func authID(_ p: Params) throws -> String {
        try p.identifier("auth_id") { id throws(InvalidIdentifier) in try Identifier.validateAuthID(id) }
    }

    static func snapshotName(_ p: Params, _ name: String = "snapshot_name") throws -> String {
        try p.identifier(name) { id throws(InvalidIdentifier) in try Identifier.validate(id, field: name) }
    }

    static func objectNames(_ p: Params) throws -> (pool: String, object: String) {
        let pool = try p.string("pool_name")
        let object = try p.string("object_name")
        if pool.isEmpty { throw RPCError.invalidParams("parameter 'pool_name' must not be empty") }
        if object.isEmpty { throw RPCError.invalidParams("parameter 'object_name' must not be empty") }
        return (pool, object)
    }

    static func authorizedIDs(_ ids: [(authID: String, accessLevel: String)]?) -> JSONValue {
        guard let ids else { return .null }
        return .array(ids.map { [.string($0.authID), .string($0.accessLevel)] })
    }

    /// Each method's back-end picks its thread pool: `server_info` reads only
    /// local state, `get_mon_addrs` asks only the mons, the object methods only
    /// the OSDs, and the rest need the file system (`.fs`, the default).
    public static func handlers(engine e: VolumeEngine, stats: ServerStats) -> [MethodHandler] {
        [
            MethodHandler(Method.ping, inline: true) { p in
                try p.allowOnly([])
                return PreparedCall { "pong" }
            },
            MethodHandler(Method.serverInfo, backend: .local) { p in
                try p.allowOnly([])
                return PreparedCall {
                    [
                        "version": .string(VolumedVersion.string),
                        "protocol_version": .string(ProtocolVersion.current),
                        "fsid": .string(try e.cluster.fsid()),
                        "instance": .string(e.config.instanceName),
                        "uptime_seconds": .number(JSONNumber((stats.uptimeSeconds * 1000).rounded() / 1000)),
                        "connections": .int(stats.connectionCount),
                        "in_flight": .int(stats.inFlightCount),
                    ]
                }
            },
            MethodHandler(Method.getMonAddrs, backend: .mon) { p in
                try p.allowOnly([])
                return PreparedCall { .array(try e.getMonAddrs().map { .string($0) }) }
            },
            MethodHandler(Method.recover, mutating: true) { p in
                try p.allowOnly([])
                return PreparedCall {
                    try e.recover()
                    return .null
                }
            },

            // Groups
            MethodHandler(Method.createGroup, mutating: true) { p in
                try p.allowOnly(["group_id", "mode"])
                let g = try groupID(p)
                let mode = try p.mode()
                return PreparedCall(keys: [groupKey(g)]) {
                    try e.createGroup(g, mode: mode)
                    return .null
                }
            },
            MethodHandler(Method.destroyGroup, mutating: true) { p in
                try p.allowOnly(["group_id"])
                let g = try groupID(p)
                return PreparedCall(keys: [groupKey(g)]) {
                    try e.destroyGroup(g)
                    return .null
                }
            },

            // Volumes
            MethodHandler(Method.createVolume, mutating: true) { p in
                try p.allowOnly(["volume_path", "size", "data_isolated", "namespace_isolated", "mode"])
                let v = try p.volumePath("volume_path")
                let size = try p.optionalInt("size", in: 0...Int64.max)
                let dataIsolated = try p.bool("data_isolated", default: false)
                let namespaceIsolated = try p.bool("namespace_isolated", default: true)
                let mode = try p.mode()
                return PreparedCall(keys: volumeIDKeys(v)) {
                    let path = try e.createVolume(
                        v, size: size, dataIsolated: dataIsolated, namespaceIsolated: namespaceIsolated, mode: mode)
                    return ["mount_path": .string(path)]
                }
            },
            MethodHandler(Method.deleteVolume, mutating: true) { p in
                try p.allowOnly(["volume_path", "data_isolated"])
                let v = try p.volumePath("volume_path")
                let dataIsolated = try p.bool("data_isolated", default: false)
                return PreparedCall(keys: volumeIDKeys(v)) {
                    try e.deleteVolume(v, dataIsolated: dataIsolated)
                    return .null
                }
            },
            MethodHandler(Method.purgeVolume, mutating: true) { p in
                try p.allowOnly(["volume_path", "data_isolated"])
                let v = try p.volumePath("volume_path")
                let dataIsolated = try p.bool("data_isolated", default: false)
                return PreparedCall(keys: volumeIDKeys(v)) {
                    try e.purgeVolume(v, dataIsolated: dataIsolated)
                    return .null
                }
            },
            MethodHandler(Method.getUsedBytes) { p in
                try p.allowOnly(["volume_path"])
                let v = try p.volumePath("volume_path")
                return PreparedCall { .int(try e.getUsedBytes(v)) }
            },
            MethodHandler(Method.setMaxBytes, mutating: true) { p in
                try p.allowOnly(["volume_path", "max_bytes"])
                let v = try p.volumePath("volume_path")
                guard p.members["max_bytes"] != nil else { throw RPCError.invalidParams("missing parameter 'max_bytes'") }
                let max = try p.optionalInt("max_bytes", in: 0...Int64.max)
                return PreparedCall(keys: volumeKeys(v)) {
                    try e.setMaxBytes(v, maxBytes: max)
                    return .null
                }
            },

            // Authorization
            MethodHandler(Method.authorize, mutating: true) { p in
                try p.allowOnly(["volume_path", "auth_id", "readonly", "tenant_id", "allow_existing_id"])
                let v = try p.volumePath("volume_path")
                let id = try authID(p)
                let readonly = try p.bool("readonly", default: false)
                let tenant = try p.optionalString("tenant_id")
                // An invalid identifier maps to -32602 (see ErrorMapping).
                if let tenant { try Identifier.validate(tenant, field: "tenant_id") }
                let allowExisting = try p.bool("allow_existing_id", default: false)
                return PreparedCall(keys: [authKey(id)] + volumeKeys(v)) {
                    let key = try e.authorize(v, authID: id, readonly: readonly, tenantID: tenant, allowExistingID: allowExisting)
                    return ["auth_key": key.map { .string($0) } ?? .null]
                }
            },
            MethodHandler(Method.deauthorize, mutating: true) { p in
                try p.allowOnly(["volume_path", "auth_id"])
                let v = try p.volumePath("volume_path")
                let id = try authID(p)
                return PreparedCall(keys: [authKey(id)] + volumeKeys(v)) {
                    try e.deauthorize(v, authID: id)
                    return .null
                }
            },
            MethodHandler(Method.getAuthorizedIDs) { p in
                try p.allowOnly(["volume_path"])
                let v = try p.volumePath("volume_path")
                return PreparedCall { authorizedIDs(try e.getAuthorizedIDs(v)) }
            },
            MethodHandler(Method.evict, mutating: true) { p in
                try p.allowOnly(["auth_id", "volume_path", "timeout"])
                let id = try authID(p)
                let v = try p.optionalVolumePath("volume_path")
                let timeout = try p.optionalSeconds("timeout") ?? 30
                // It may wait `timeout` for the MDS on purpose: that is not the cluster hanging.
                return PreparedCall(keys: [authKey(id)], extraTime: timeout) {
                    try e.evict(authID: id, volume: v, timeout: timeout)
                    return .null
                }
            },

            // Snapshots and clones
            MethodHandler(Method.createSnapshotVolume, mutating: true) { p in
                try p.allowOnly(["volume_path", "snapshot_name", "mode"])
                let v = try p.volumePath("volume_path")
                let name = try snapshotName(p)
                let mode = try p.mode()
                return PreparedCall(keys: volumeKeys(v)) {
                    try e.createSnapshotVolume(v, snapshotName: name, mode: mode)
                    return .null
                }
            },
            MethodHandler(Method.destroySnapshotVolume, mutating: true) { p in
                try p.allowOnly(["volume_path", "snapshot_name"])
                let v = try p.volumePath("volume_path")
                let name = try snapshotName(p)
                return PreparedCall(keys: volumeKeys(v)) {
                    try e.destroySnapshotVolume(v, snapshotName: name)
                    return .null
                }
            },
            MethodHandler(Method.createSnapshotGroup, mutating: true) { p in
                try p.allowOnly(["group_id", "snapshot_name", "mode"])
                let g = try groupID(p)
                let name = try snapshotName(p)
                let mode = try p.mode()
                return PreparedCall(keys: [groupKey(g)]) {
                    try e.createSnapshotGroup(g, snapshotName: name, mode: mode)
                    return .null
                }
            },
            MethodHandler(Method.destroySnapshotGroup, mutating: true) { p in
                try p.allowOnly(["group_id", "snapshot_name"])
                let g = try groupID(p)
                let name = try snapshotName(p)
                return PreparedCall(keys: [groupKey(g)]) {
                    try e.destroySnapshotGroup(g, snapshotName: name)
                    return .null
                }
            },
            MethodHandler(Method.cloneVolumeToExisting, mutating: true) { p in
                try p.allowOnly(["dest_volume_path", "src_volume_path", "src_snapshot_name"])
                let dest = try p.volumePath("dest_volume_path")
                let src = try p.volumePath("src_volume_path")
                let name = try snapshotName(p, "src_snapshot_name")
                return PreparedCall(keys: volumeKeys(dest) + volumeKeys(src)) {
                    try e.cloneVolumeToExisting(destination: dest, source: src, snapshotName: name)
                    return .null
                }
            },

            // RADOS objects
            MethodHandler(Method.putObject, mutating: true, backend: .osd) { p in
                try p.allowOnly(["pool_name", "object_name", "data"])
                let (pool, object) = try objectNames(p)
                let data = try p.base64("data")
                return PreparedCall(keys: ["pool:\(pool)"]) {
                    try e.putObject(pool: pool, object: object, data: data)
                    return .null
                }
            },
            MethodHandler(Method.putObjectVersioned, mutating: true, backend: .osd) { p in
                try p.allowOnly(["pool_name", "object_name", "data", "version"])
                let (pool, object) = try objectNames(p)
                let data = try p.base64("data")
                let version = try p.optionalInt("version", in: 0...Int64.max).map { UInt64($0) }
                return PreparedCall(keys: ["pool:\(pool)"]) {
                    try e.putObjectVersioned(pool: pool, object: object, data: data, version: version)
                    return .null
                }
            },
            MethodHandler(Method.getObject, backend: .osd) { p in
                try p.allowOnly(["pool_name", "object_name"])
                let (pool, object) = try objectNames(p)
                return PreparedCall { .string(Base64.encode(try e.getObject(pool: pool, object: object))) }
            },
            MethodHandler(Method.getObjectAndVersion, backend: .osd) { p in
                try p.allowOnly(["pool_name", "object_name"])
                let (pool, object) = try objectNames(p)
                return PreparedCall {
                    let (data, version) = try e.getObjectAndVersion(pool: pool, object: object)
                    return ["data": .string(Base64.encode(data)), "version": .int(version)]
                }
            },
            MethodHandler(Method.deleteObject, mutating: true, backend: .osd) { p in
                try p.allowOnly(["pool_name", "object_name"])
                let (pool, object) = try objectNames(p)
                return PreparedCall(keys: ["pool:\(pool)"]) {
                    try e.deleteObject(pool: pool, object: object)
                    return .null
                }
            },
        ]
    }
}
