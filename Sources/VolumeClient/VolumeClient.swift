import JSONValue
import VolumeProtocol

/// A typed client of `cephfs-volumed`: one `async` Swift method per RPC of
/// Ceph's `CephFSVolumeClient` API.
///
/// ```swift
/// import VolumeClient
///
/// let client = VolumeClient(socketPath: "/run/cephfs-volumed/volumed.sock", callTimeout: 60)
///
/// // A group, and a 10 GiB volume in it.
/// try await client.createGroup("tenants")
/// let volume = VolumePath(groupID: "tenants", volumeID: "vol1")
/// let mountPath = try await client.createVolume(volume, size: try ByteSize.parse("10GiB"))
///
/// // Let a tenant's guest mount it, and hand the guest its cephx key.
/// let key = try await client.authorize(volume, authID: "alice", tenantID: "tenant1")
/// print("mount \(mountPath) as client.alice with key \(key ?? "(existing)")")
///
/// for id in try await client.getAuthorizedIDs(volume) ?? [] {
///     print(id.authID, id.accessLevel)           // alice rw
/// }
///
/// // Failures the daemon reports are RPCErrors carrying the engine's error type.
/// do {
///     _ = try await client.getObject(pool: "cephfs_data", object: "missing")
/// } catch let e as RPCError where e.engineType == .objectNotFound {
///     print("no such object (\(e.errnoName ?? "?"))")
/// }
///
/// // Tear down.
/// try await client.deauthorize(volume, authID: "alice")
/// try await client.evict(authID: "alice", volume: volume)
/// try await client.deleteVolume(volume)
/// try await client.purgeVolume(volume)
/// try await client.destroyGroup("tenants")
/// ```
///
/// A client is safe to share between any number of tasks: calls are pipelined
/// on one connection (see ``RPCConnection``) and replies are matched by id.
/// The connection is made by the first call and made again by the next call
/// after it drops, so a client outlives daemon restarts.
///
/// Errors:
/// - a failure the daemon reports is thrown as `RPCError`: for the engine's
///   failures (code -32000) ``RPCError/engineType`` is the seed's exception
///   class (`VolumeClientError`, `ObjectNotFound`, `ClusterError`, ...), with
///   ``RPCError/errno`` and ``RPCError/errnoName`` when Ceph gave an errno;
///   bad params are -32602;
/// - no answer is ``ConnectionError``: `connectFailed`, `closed`, `timedOut`,
///   or `invalidReply` for a reply that does not have the expected shape.
///
/// Optional parameters have the defaults of the seed's Python API (mode
/// `0o755`, namespace isolation on, no tenant, ...).
public final class VolumeClient: Sendable {
    /// Where the packaged daemon listens.
    public static let defaultSocketPath = "/run/cephfs-volumed/volumed.sock"

    /// The default mode of groups, volumes and snapshots: `0o755`.
    public static let defaultMode: UInt32 = 0o755

    public let connection: RPCConnection
    /// Seconds to wait for each reply; nil waits for ever.
    public let callTimeout: Double?

    /// - Parameters:
    ///   - socketPath: the daemon's Unix socket.
    ///   - callTimeout: seconds to wait for each reply, nil for no limit.
    ///     `evict` waits at least its own `timeout` plus 30 s.
    ///   - connectTimeout: seconds to keep trying while the daemon's listen
    ///     backlog is full. A missing socket fails at once.
    public init(socketPath: String = VolumeClient.defaultSocketPath, callTimeout: Double? = nil, connectTimeout: Double = 10) {
        connection = RPCConnection(socketPath: socketPath, connectTimeout: connectTimeout)
        self.callTimeout = callTimeout
    }

    /// Calls any method by name with raw params: the escape hatch.
    ///
    /// - Returns: the JSON `result`.
    public func call(_ method: String, params: JSONValue? = nil) async throws -> JSONValue {
        try await connection.call(method, params: params, timeout: callTimeout)
    }

    /// Closes the connection; outstanding calls fail with ``ConnectionError/closed``.
    /// The next call connects again.
    public func close() { connection.close() }

    /// Sends a prepared call with this client's timeout (raised to the call's minimum).
    package func perform(_ c: RPCCall) async throws -> JSONValue {
        let timeout = callTimeout.map { max($0, c.minimumTimeout ?? 0) }
        return try await connection.call(c.method, params: c.params, timeout: timeout)
    }

    /// Sends one call of the contract's method type `M` and reads its result.
    ///
    /// - Throws: ``ConnectionError/invalidReply(_:)`` for a result of the wrong shape.
    public func send<M: RPCMethod>(_ call: M) async throws -> M.Result {
        try M.reply(await perform(RPCCall(call)))
    }

    // MARK: Service

    /// Checks that the daemon answers.
    ///
    /// - Returns: `"pong"`.
    @discardableResult
    public func ping() async throws -> String {
        try await send(PingRequest())
    }

    /// The daemon's version, the wire contract's version, the cluster's fsid,
    /// and current load.
    public func serverInfo() async throws -> ServerInfo {
        try await send(ServerInfoRequest())
    }

    /// The monitors' `ip:port` addresses, as a guest needs them to mount.
    public func getMonAddrs() async throws -> [String] {
        try await send(GetMonAddrsRequest())
    }

    /// Finishes authorisation changes that a crash left half done (the seed's
    /// `recover`). The daemon also runs it when it starts.
    public func recover() async throws {
        try await send(RecoverRequest())
    }

    // MARK: Groups

    /// Creates a volume group: a directory that volumes can be created in.
    ///
    /// - Parameters:
    ///   - groupID: the group's name.
    ///   - mode: the directory's permission bits.
    public func createGroup(_ groupID: String, mode: UInt32 = VolumeClient.defaultMode) async throws {
        try await send(CreateGroupRequest(groupID: GroupID(unchecked: groupID), mode: mode))
    }

    /// Removes an empty volume group. A group that still holds volumes is
    /// refused with a `VolumeClientError`; a missing group is not an error.
    public func destroyGroup(_ groupID: String) async throws {
        try await send(DestroyGroupRequest(groupID: GroupID(unchecked: groupID)))
    }

    // MARK: Volumes

    /// Creates a volume (a directory with a quota and a layout of its own) and
    /// returns its path inside the file system.
    ///
    /// Creating a volume that exists is not an error (the call is idempotent;
    /// a size given is set again).
    ///
    /// - Parameters:
    ///   - volume: the volume to create; its group must exist.
    ///   - size: the quota in bytes (`ceph.quota.max_bytes`); nil for none.
    ///   - dataIsolated: give the volume a RADOS pool of its own.
    ///   - namespaceIsolated: give the volume a RADOS namespace of its own in
    ///     the file system's data pool (ignored with `dataIsolated`).
    ///   - mode: the directory's permission bits.
    /// - Returns: the mount path, such as `/volumes/tenants/vol1`.
    @discardableResult
    public func createVolume(
        _ volume: VolumePath, size: Int64? = nil, dataIsolated: Bool = false, namespaceIsolated: Bool = true,
        mode: UInt32 = VolumeClient.defaultMode
    ) async throws -> String {
        try await send(
            CreateVolumeRequest(
                volume: volume.ref, size: size, dataIsolated: dataIsolated, namespaceIsolated: namespaceIsolated, mode: mode))
    }

    /// Moves a volume to the trash, where ``purgeVolume(_:dataIsolated:)``
    /// removes its data. Deleting a missing volume is not an error.
    ///
    /// - Parameter dataIsolated: as the volume was created.
    public func deleteVolume(_ volume: VolumePath, dataIsolated: Bool = false) async throws {
        try await send(DeleteVolumeRequest(volume: volume.ref, dataIsolated: dataIsolated))
    }

    /// Removes a deleted volume's data from the trash (and its pool, when it
    /// was data-isolated).
    ///
    /// - Parameter dataIsolated: as the volume was created.
    public func purgeVolume(_ volume: VolumePath, dataIsolated: Bool = false) async throws {
        try await send(PurgeVolumeRequest(volume: volume.ref, dataIsolated: dataIsolated))
    }

    /// The bytes stored in a volume (`ceph.dir.rbytes`).
    public func getUsedBytes(_ volume: VolumePath) async throws -> Int64 {
        try await send(GetUsedBytesRequest(volume: volume.ref))
    }

    /// Sets a volume's quota.
    ///
    /// - Parameter maxBytes: the quota in bytes; nil removes the quota.
    public func setMaxBytes(_ volume: VolumePath, maxBytes: Int64?) async throws {
        try await send(SetMaxBytesRequest(volume: volume.ref, maxBytes: maxBytes))
    }

    // MARK: Authorization

    /// Lets `client.<authID>` mount a volume, creating the cephx ID if needed.
    ///
    /// - Parameters:
    ///   - volume: the volume to grant.
    ///   - authID: the cephx ID, without `client.`.
    ///   - readonly: grant read-only (`r`) rather than read-write (`rw`) access.
    ///   - tenantID: the tenant that owns `authID`. With a tenant the key is
    ///     returned, and an ID owned by another tenant is refused.
    ///   - allowExistingID: allow an ID that exists but was not created by the
    ///     volume client.
    /// - Returns: the cephx secret of `client.<authID>` when `tenantID` was
    ///   given; nil otherwise.
    @discardableResult
    public func authorize(
        _ volume: VolumePath, authID: String, readonly: Bool = false, tenantID: String? = nil,
        allowExistingID: Bool = false
    ) async throws -> String? {
        try await send(
            AuthorizeRequest(
                volume: volume.ref, authID: AuthID(unchecked: authID), readonly: readonly,
                tenantID: tenantID.map { TenantID(unchecked: $0) }, allowExistingID: allowExistingID))
    }

    /// Takes a volume's access away from `client.<authID>`; the cephx ID is
    /// deleted when it has no volume left. Mounted clients keep their access
    /// until evicted (``evict(authID:volume:timeout:)``).
    public func deauthorize(_ volume: VolumePath, authID: String) async throws {
        try await send(DeauthorizeRequest(volume: volume.ref, authID: AuthID(unchecked: authID)))
    }

    /// The auth IDs authorised on a volume, with their access levels.
    ///
    /// - Returns: the IDs, sorted; nil when no ID is authorised on the volume
    ///   (or the volume does not exist), as the seed returns None.
    public func getAuthorizedIDs(_ volume: VolumePath) async throws -> [AuthorizedID]? {
        try await send(GetAuthorizedIDsRequest(volume: volume.ref))
    }

    /// Evicts the CephFS clients of `client.<authID>` from every MDS rank.
    ///
    /// - Parameters:
    ///   - authID: the cephx ID, without `client.`.
    ///   - volume: only the clients that mounted this volume; nil for all.
    ///   - timeout: seconds each MDS rank may take.
    /// - Throws: an `RPCError` of type `EvictionError` or `ClusterTimeout`
    ///   when a rank failed.
    public func evict(authID: String, volume: VolumePath? = nil, timeout: Double = 30) async throws {
        try await send(EvictRequest(authID: AuthID(unchecked: authID), volume: volume?.ref, timeout: timeout))
    }

    // MARK: Snapshots and clones

    /// Takes a snapshot of a volume.
    public func createSnapshotVolume(
        _ volume: VolumePath, snapshotName: String, mode: UInt32 = VolumeClient.defaultMode
    ) async throws {
        try await send(CreateSnapshotVolumeRequest(volume: volume.ref, snapshotName: SnapshotName(unchecked: snapshotName), mode: mode))
    }

    /// Removes a snapshot of a volume. A missing snapshot is not an error.
    public func destroySnapshotVolume(_ volume: VolumePath, snapshotName: String) async throws {
        try await send(DestroySnapshotVolumeRequest(volume: volume.ref, snapshotName: SnapshotName(unchecked: snapshotName)))
    }

    /// Takes a snapshot of a whole group.
    public func createSnapshotGroup(
        _ groupID: String, snapshotName: String, mode: UInt32 = VolumeClient.defaultMode
    ) async throws {
        try await send(
            CreateSnapshotGroupRequest(
                groupID: GroupID(unchecked: groupID), snapshotName: SnapshotName(unchecked: snapshotName), mode: mode))
    }

    /// Removes a snapshot of a group. A missing snapshot is not an error.
    public func destroySnapshotGroup(_ groupID: String, snapshotName: String) async throws {
        try await send(
            DestroySnapshotGroupRequest(groupID: GroupID(unchecked: groupID), snapshotName: SnapshotName(unchecked: snapshotName)))
    }

    /// Copies the contents of a snapshot of `source` into the existing volume
    /// `destination`.
    public func cloneVolumeToExisting(destination: VolumePath, source: VolumePath, snapshotName: String) async throws {
        try await send(
            CloneVolumeToExistingRequest(
                destination: destination.ref, source: source.ref, snapshotName: SnapshotName(unchecked: snapshotName)))
    }

    // MARK: RADOS objects

    /// Writes a whole RADOS object, replacing what it held.
    public func putObject(pool: String, object: String, data: [UInt8]) async throws {
        try await send(PutObjectRequest(pool: pool, object: object, data: data))
    }

    /// Reads a whole RADOS object.
    ///
    /// - Throws: an `RPCError` of type `ObjectNotFound` when there is no such object or pool.
    public func getObject(pool: String, object: String) async throws -> [UInt8] {
        try await send(GetObjectRequest(pool: pool, object: object))
    }

    /// Removes a RADOS object. A missing object is not an error.
    public func deleteObject(pool: String, object: String) async throws {
        try await send(DeleteObjectRequest(pool: pool, object: object))
    }

    /// Writes a whole RADOS object if its version is still `version`
    /// (compare-and-swap on ``getObjectAndVersion(pool:object:)``'s version).
    ///
    /// - Parameter version: the expected current version; nil writes unconditionally.
    /// - Throws: an `RPCError` of type `ClusterError` (`ERANGE`/`EOVERFLOW`) when the version moved on.
    public func putObjectVersioned(pool: String, object: String, data: [UInt8], version: UInt64? = nil) async throws {
        try await send(PutObjectVersionedRequest(pool: pool, object: object, data: data, version: version))
    }

    /// Reads a whole RADOS object with its version.
    public func getObjectAndVersion(pool: String, object: String) async throws -> (data: [UInt8], version: UInt64) {
        let r = try await send(GetObjectAndVersionRequest(pool: pool, object: object))
        return (r.data, r.version)
    }
}
