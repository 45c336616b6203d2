import JSONValue
import RPCServer
import VolumeEngine
import VolumeProtocol

extension MethodHandler {
    /// Serves method type `M`: its name, mutating flag, back-end and keys come
    /// from the type; `run` maps the decoded, validated call onto the engine.
    package init<M: RPCMethod>(_: M.Type, run: @escaping @Sendable (M) throws -> M.Result) {
        self.init(M.name, mutating: M.mutating, inline: M.inline, backend: M.backend) { p in
            let call = try M(params: p)
            return PreparedCall(keys: call.keys.map(\.description), extraTime: call.extraTime) {
                M.encodeResult(try run(call))
            }
        }
    }
}

/// The method table: each method type of the contract mapped onto the engine.
package enum EngineMethods {
    package static func handlers(engine e: VolumeEngine, stats: ServerStats) -> [MethodHandler] {
        [
            MethodHandler(PingRequest.self) { _ in "pong" },
            MethodHandler(ServerInfoRequest.self) { _ in
                ServerInfo(
                    version: VolumedVersion.string, protocolVersion: ProtocolVersion.current, fsid: try e.cluster.fsid(),
                    instance: e.config.instanceName, uptimeSeconds: stats.uptimeSeconds,
                    connections: stats.connectionCount, inFlight: stats.inFlightCount)
            },
            MethodHandler(GetMonAddrsRequest.self) { _ in try e.getMonAddrs() },
            MethodHandler(RecoverRequest.self) { _ in try e.recover() },

            // Groups
            MethodHandler(CreateGroupRequest.self) { c in try e.createGroup(c.groupID.rawValue, mode: c.mode) },
            MethodHandler(DestroyGroupRequest.self) { c in try e.destroyGroup(c.groupID.rawValue) },

            // Volumes
            MethodHandler(CreateVolumeRequest.self) { c in
                try e.createVolume(
                    VolumePath(c.volume), size: c.size, dataIsolated: c.dataIsolated,
                    namespaceIsolated: c.namespaceIsolated, mode: c.mode)
            },
            MethodHandler(DeleteVolumeRequest.self) { c in try e.deleteVolume(VolumePath(c.volume), dataIsolated: c.dataIsolated) },
            MethodHandler(PurgeVolumeRequest.self) { c in try e.purgeVolume(VolumePath(c.volume), dataIsolated: c.dataIsolated) },
            MethodHandler(GetUsedBytesRequest.self) { c in try e.getUsedBytes(VolumePath(c.volume)) },
            MethodHandler(SetMaxBytesRequest.self) { c in try e.setMaxBytes(VolumePath(c.volume), maxBytes: c.maxBytes) },

            // Authorization
            MethodHandler(AuthorizeRequest.self) { c in
                try e.authorize(
                    VolumePath(c.volume), authID: c.authID.rawValue, readonly: c.readonly,
                    tenantID: c.tenantID?.rawValue, allowExistingID: c.allowExistingID)
            },
            MethodHandler(DeauthorizeRequest.self) { c in try e.deauthorize(VolumePath(c.volume), authID: c.authID.rawValue) },
            MethodHandler(GetAuthorizedIDsRequest.self) { c in
                try e.getAuthorizedIDs(VolumePath(c.volume)).map { $0.map { AuthorizedID(authID: $0.authID, accessLevel: $0.accessLevel) } }
            },
            MethodHandler(EvictRequest.self) { c in
                try e.evict(authID: c.authID.rawValue, volume: c.volume.map(VolumePath.init), timeout: c.timeout)
            },

            // Snapshots and clones
            MethodHandler(CreateSnapshotVolumeRequest.self) { c in
                try e.createSnapshotVolume(VolumePath(c.volume), snapshotName: c.snapshotName.rawValue, mode: c.mode)
            },
            MethodHandler(DestroySnapshotVolumeRequest.self) { c in
                try e.destroySnapshotVolume(VolumePath(c.volume), snapshotName: c.snapshotName.rawValue)
            },
            MethodHandler(CreateSnapshotGroupRequest.self) { c in
                try e.createSnapshotGroup(c.groupID.rawValue, snapshotName: c.snapshotName.rawValue, mode: c.mode)
            },
            MethodHandler(DestroySnapshotGroupRequest.self) { c in
                try e.destroySnapshotGroup(c.groupID.rawValue, snapshotName: c.snapshotName.rawValue)
            },
            MethodHandler(CloneVolumeToExistingRequest.self) { c in
                try e.cloneVolumeToExisting(
                    destination: VolumePath(c.destination), source: VolumePath(c.source), snapshotName: c.snapshotName.rawValue)
            },

            // RADOS objects
            MethodHandler(PutObjectRequest.self) { c in try e.putObject(pool: c.pool, object: c.object, data: c.data) },
            MethodHandler(PutObjectVersionedRequest.self) { c in
                try e.putObjectVersioned(pool: c.pool, object: c.object, data: c.data, version: c.version)
            },
            MethodHandler(GetObjectRequest.self) { c in try e.getObject(pool: c.pool, object: c.object) },
            MethodHandler(GetObjectAndVersionRequest.self) { c in
                let (data, version) = try e.getObjectAndVersion(pool: c.pool, object: c.object)
                return ObjectAndVersion(data: data, version: version)
            },
            MethodHandler(DeleteObjectRequest.self) { c in try e.deleteObject(pool: c.pool, object: c.object) },
        ]
    }
}
