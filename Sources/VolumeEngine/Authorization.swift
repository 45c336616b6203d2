import Ceph
import JSONValue

/// A cephx entity as `auth get` shows it. The key is kept out of descriptions.
struct CephEntity: Sendable {
    let key: String
    let caps: [String: String]

    init?(_ reply: JSONValue?) {
        guard let first = reply?.arrayValue?.first ?? reply, let key = first["key"]?.stringValue else { return nil }
        self.key = key
        var caps: [String: String] = [:]
        for (service, value) in first["caps"]?.objectValue ?? [:] {
            if let s = value.stringValue { caps[service] = s }
        }
        self.caps = caps
    }
}

extension Set {
    var onlyElement: Element? { count == 1 ? first : nil }
}

extension VolumeEngine {
    // MARK: Ceph auth

    func entityName(_ authID: String) -> String { "client.\(authID)" }

    /// The entity, or nil when it does not exist.
    func authGet(_ authID: String) throws -> CephEntity? {
        let reply = try ignoring(.ENOENT) { () throws(CephError) in
            try cluster.monJSON(["prefix": "auth get", "entity": .string(entityName(authID))])
        }
        guard let reply else { return nil }
        guard let entity = CephEntity(reply) else {
            throw VolumeError(.clusterError, "auth get \(entityName(authID)) returned no entity")
        }
        return entity
    }

    func authSetCaps(_ authID: String, _ caps: [String: String]) throws {
        _ = try cluster.monCommand([
            "prefix": "auth caps", "entity": .string(entityName(authID)),
            "caps": .array(Caps.commandList(caps).map { .string($0) }),
        ])
    }

    /// The caps of `volume` for one access level, from its layout. The pool
    /// is the directory's own or inherited; the namespace is absent for
    /// volumes made without namespace isolation.
    func volumeCaps(_ volume: VolumePath, readonly: Bool, inode: UInt64? = nil) throws -> (want: VolumeCaps, unwanted: VolumeCaps) {
        let path = layout.volumePath(volume)
        let l = try volumeLayout(path, inode: inode)
        return (
            VolumeCaps(path: path, pool: l.pool, namespace: l.namespace, readonly: readonly),
            VolumeCaps(path: path, pool: l.pool, namespace: l.namespace, readonly: !readonly)
        )
    }

    /// A volume directory's data pool and RADOS namespace.
    ///
    /// Kept per inode: a volume's layout is set when it is made and never
    /// changed, and a volume deleted and made again is a new inode. Volumes
    /// made here are known from create_volume; others cost two getxattrs once.
    func volumeLayout(_ path: String, inode known: UInt64? = nil) throws -> VolumeLayout {
        let inode = try known ?? fs.stat(path).inode
        if let known = layouts.withLock({ $0[inode] }) { return known }
        let l = VolumeLayout(
            pool: try ancestorXattr(path, "ceph.dir.layout.pool"),
            namespace: try fs.getxattrString(path, "ceph.dir.layout.pool_namespace"))
        remember(l, inode: inode)
        return l
    }

    func remember(_ l: VolumeLayout, inode: UInt64) {
        layouts.withLock { cache in
            if cache.count >= 100_000 { cache.removeAll(keepingCapacity: true) }
            cache[inode] = l
        }
    }

    /// Grants `volume` to the entity, creating it when it does not exist.
    /// `caps` are the volume's caps (from `volumeCaps`). Returns the entity's key.
    func authorizeCeph(
        authID: String, caps: (want: VolumeCaps, unwanted: VolumeCaps), existing: CephEntity?
    ) throws -> String {
        let (want, unwanted) = caps
        guard let existing else {
            let reply = try cluster.monJSON([
                "prefix": "auth get-or-create", "entity": .string(entityName(authID)),
                "caps": ["mds", .string(want.mds), "osd", .string(want.osd), "mon", "allow r"],
            ])
            guard let created = CephEntity(reply) else {
                throw VolumeError(.clusterError, "auth get-or-create \(entityName(authID)) returned no key")
            }
            return created.key
        }
        let caps = Caps.grant(existing: existing.caps, want: want, unwanted: unwanted)
        if caps != existing.caps { try authSetCaps(authID, caps) }
        // `auth caps` leaves the key alone, so the one we read is still right.
        return existing.key
    }

    /// Removes the grants `volume` made, and nothing else.
    ///
    /// An entity the service created is deleted when it would be left with
    /// no mds or osd caps and nothing but mon `allow r`. One it did not
    /// create (`preexisting`: its caps before our first grant) is never
    /// deleted: it keeps every grant it had, and once `last` (its last
    /// volume goes) it gets back exactly the caps it had.
    ///
    /// `recorded`: the volume's metadata records this grant, so the volume
    /// at the path is the one granted and its layout names the caps.
    /// Otherwise (the volume was deleted, or deleted by v6 and made again)
    /// the grant is found by its path, and its osd cap by what the volume
    /// could have had: its namespace, else its own pool, else the one
    /// pool-wide cap of that level.
    func deauthorizeCeph(
        _ volume: VolumePath, authID: String, entity: CephEntity?, recorded: Bool = true,
        preexisting: [String: String]? = nil, last: Bool = false
    ) throws {
        guard let entity else { return }
        let path = layout.volumePath(volume)
        var grants: [VolumeCaps] = []
        if recorded, try fs.statIfExists(path) != nil {
            let (r, rw) = try volumeCaps(volume, readonly: true)
            grants = [r, rw]
        } else {
            let osd = Caps.tokens(entity.caps["osd"])
            for level in ["r", "rw"] {
                let prefix = "allow \(level) pool="
                let candidates = osd.filter { $0.hasPrefix(prefix) }
                let token =
                    candidates.first { $0.hasSuffix(" namespace=\(layout.namespace(volume))") }
                    ?? candidates.first { $0 == prefix + layout.poolName(volume) }
                    ?? Set(candidates.filter { !$0.contains(" namespace=") }).onlyElement
                grants.append(VolumeCaps(mds: "allow \(level) path=\(path)", osd: token ?? ""))
            }
        }
        if let preexisting {
            let caps = last ? preexisting : Caps.keeping(preexisting, in: Caps.revoked(existing: entity.caps, grants: grants))
            if caps != entity.caps { try authSetCaps(authID, caps) }
            return
        }
        if let caps = Caps.revoke(existing: entity.caps, grants: grants) {
            if caps != entity.caps { try authSetCaps(authID, caps) }
        } else {
            _ = try ignoring(.ENOENT) { () throws(CephError) in
                try cluster.monCommand(["prefix": "auth del", "entity": .string(entityName(authID))])
            }
        }
    }

    // MARK: Metadata under lock

    func readAuthMetadata(_ lock: MetadataLock) throws -> AuthMetadata? {
        try store.read(lock).map { o throws(VolumeError) in try AuthMetadata(o, path: lock.path) }
    }

    func readVolumeMetadata(_ lock: MetadataLock) throws -> VolumeMetadata? {
        try store.read(lock).map { o throws(VolumeError) in try VolumeMetadata(o, path: lock.path) }
    }

    /// Runs `body` with `path` locked. The unlock happens in the background
    /// (see `MetadataLock.releaseInBackground`).
    func withLock<T>(_ path: String, _ body: (MetadataLock) throws -> T) throws -> T {
        let lock = try store.lock(path)!
        defer { lock.releaseInBackground(on: helpers) }
        return try body(lock)
    }

    /// Starts `body` on a helper thread; see `Overlapped`.
    func overlapped<T: Sendable>(_ body: @escaping @Sendable () throws -> T) -> Overlapped<T> {
        Overlapped(on: helpers, body)
    }

    // MARK: Operations
    //
    // Durability order. Each step below is synced to the OSDs before the next
    // one may be seen, because recovery (ours and the Python client's) reads
    // the state in this order: the auth entry is marked dirty, then the
    // volume entry, then Ceph's caps change, then the volume entry is made
    // final. The last auth write is left to writeback: if a crash loses it,
    // the entry stays dirty and recovery replays it, which changes nothing.
    // Round trips that depend on no lock held (the volume's layout) or only
    // on the auth lock (the entity) overlap with the metadata writes.

    /// Gives `authID` access to `volume`, creating the cephx entity if needed.
    /// Returns the key only when `tenantID` is given, as the Python client does.
    /// Identifiers arrive validated (VolumeProtocol's AuthID and TenantID).
    public func authorize(
        _ volume: VolumePath, authID: String, readonly: Bool = false, tenantID: String? = nil,
        allowExistingID: Bool = false
    ) throws(VolumeError) -> String? {
        try engineCall {
            if authID == config.cluster.id {
                throw VolumeError(
                    .volumeClientError, "auth ID: \(authID) is the service's own identity and cannot be authorized", errno: .EPERM)
            }
            guard let directory = try fs.statIfExists(layout.volumePath(volume)) else {
                throw VolumeError(.objectNotFound, "volume \(volume) does not exist", errno: .ENOENT)
            }
            // A volume's layout is set when it is made and never changes; known
            // layouts need no helper thread.
            let caps =
                layouts.withLock({ $0[directory.inode] }) != nil
                ? Overlapped(value: try volumeCaps(volume, readonly: readonly, inode: directory.inode))
                : overlapped { [self] in try volumeCaps(volume, readonly: readonly, inode: directory.inode) }
            let key = try withLock(layout.authMetadataPath(authID)) { authLock -> String in
                // Read under the auth lock: no other client edits the entity meanwhile.
                var entity = overlapped { [self] in try authGet(authID) }
                var meta: AuthMetadata
                if let current = try readAuthMetadata(authLock) {
                    meta = current
                    guard meta.sameTenant(tenantID) else {
                        throw VolumeError(.volumeClientError, "auth ID: \(authID) is already in use", errno: .EEXIST)
                    }
                    if meta.dirty {
                        _ = try? entity.wait()
                        try recoverAuthMetadata(authID, &meta, authLock)
                        entity = overlapped { [self] in try authGet(authID) }  // recovery may have changed the caps
                    }
                    // Deleted out of band: the entity made below is ours.
                    if meta.preexistingCaps != nil, try entity.wait() == nil { meta.preexistingCaps = nil }
                } else {
                    // CVE-2020-27781: an entity we did not create is not ours to edit.
                    let existing = try entity.wait()
                    if existing != nil && !allowExistingID {
                        // The lock created the file; a refusal leaves nothing behind.
                        try store.unlink(authLock)
                        throw VolumeError(
                            .volumeClientError,
                            "auth ID: \(authID) exists and not created by ceph_volume_client. Not allowed to modify",
                            errno: .EPERM)
                    }
                    meta = AuthMetadata(tenantID: tenantID)
                    // Written with the dirty entry, before any cap changes: deauthorize
                    // and delete_volume give these caps back and never delete the entity.
                    meta.preexistingCaps = existing?.caps
                }
                let entry = AccessEntry(accessLevel: readonly ? "r" : "rw", dirty: true)
                meta.dirty = true
                meta.subvolumes[volume.description] = entry
                // The volume lock is taken while the dirty auth entry is synced;
                // nothing is written to the volume before that sync is done.
                try store.write(authLock, meta.json, durable: false)
                let synced = overlapped { [store] in try store.sync(authLock) }
                defer { _ = try? synced.wait() }  // before the auth lock goes
                let key = try withLock(layout.volumeMetadataPath(volume)) { volumeLock -> String? in
                    let volumeMeta = try readVolumeMetadata(volumeLock)
                    // delete_volume (of any process) revokes under this lock and
                    // renames before it lets go: the volume must still be the one
                    // stat'ed above, or the grant would outlive it. The client
                    // holds caps on the directory, so this stat is usually local.
                    let same = try fs.statIfExists(layout.volumePath(volume))?.inode == directory.inode
                    try synced.wait()
                    guard same else { return nil }
                    CrashPoint.authorizeAuthMetaDirty.reach()
                    return try authorizeVolume(
                        volume, authID: authID, readonly: readonly, caps: { try caps.wait() }, existing: { try entity.wait() },
                        volumeLock, meta: volumeMeta)
                }
                guard let key else {
                    meta.subvolumes[volume.description] = nil
                    if meta.subvolumes.isEmpty {
                        try store.unlink(authLock)
                    } else {
                        meta.dirty = false
                        try store.write(authLock, meta.json, durable: false)
                    }
                    throw VolumeError(.objectNotFound, "volume \(volume) does not exist", errno: .ENOENT)
                }

                meta.dirty = false
                meta.subvolumes[volume.description]?.dirty = false
                try store.write(authLock, meta.json, durable: false)
                return key
            }
            return tenantID == nil ? nil : key
        }
    }

    /// The volume half of authorize, with the volume metadata locked. The
    /// caps and the entity are asked for only once the dirty entry is durable.
    func authorizeVolume(
        _ volume: VolumePath, authID: String, readonly: Bool,
        caps: () throws -> (want: VolumeCaps, unwanted: VolumeCaps), existing: () throws -> CephEntity?,
        _ lock: MetadataLock, meta current: VolumeMetadata?
    ) throws -> String {
        var meta = current ?? VolumeMetadata()
        meta.auths[authID] = AccessEntry(accessLevel: readonly ? "r" : "rw", dirty: true)
        try store.write(lock, meta.json)
        CrashPoint.authorizeVolumeMetaDirty.reach()
        let volumeCaps = try caps()
        if !volumeCaps.want.osd.contains(" namespace=") {
            // The seed's semantics, kept; see "Grants, tenants and volume lifetimes" in the protocol README.
            logger.warning(
                "authorize: \(volume) has no RADOS namespace: client.\(authID) gets '\(volumeCaps.want.osd)', which reaches every object in that pool, other volumes' files included"
            )
        }
        let key = try authorizeCeph(authID: authID, caps: volumeCaps, existing: try existing())
        CrashPoint.authorizeCapsUpdated.reach()
        meta.auths[authID]?.dirty = false
        try store.write(lock, meta.json)
        CrashPoint.authorizeVolumeMetaClean.reach()
        return key
    }

    /// Takes `authID`'s access to `volume` away (idempotent). Grants the
    /// service did not make, and the entity's other caps, stay.
    public func deauthorize(_ volume: VolumePath, authID: String) throws(VolumeError) {
        try engineCall {
            try withLock(layout.authMetadataPath(authID)) { authLock in
                try deauthorizeLocked(volume, authID: authID, authLock, force: false)
            }
        }
    }

    /// deauthorize with the auth lock held. `force` (delete_volume and
    /// create_volume clean-ups): the volume's grant is revoked even when the
    /// auth metadata does not list it, from the volume record or the caps.
    func deauthorizeLocked(_ volume: VolumePath, authID: String, _ authLock: MetadataLock, force: Bool) throws {
        let current = try readAuthMetadata(authLock)
        guard var meta = current, meta.subvolumes[volume.description] != nil else {
            if force {
                // Nothing in the auth metadata to mark dirty: the volume's own
                // record (if any) goes after the caps, so a retry redoes it.
                let entity = try authGet(authID)
                try withLock(layout.volumeMetadataPath(volume)) { volumeLock in
                    try deauthorizeVolume(
                        volume, authID: authID, entity: { entity }, volumeLock, meta: try readVolumeMetadata(volumeLock),
                        preexisting: current?.preexistingCaps, last: current?.subvolumes.isEmpty ?? true)
                }
            }
            if current?.subvolumes.isEmpty ?? true {
                logger.info("deauthorize: \(authID) has no volumes")
                try store.unlink(authLock)
            } else {
                logger.info("deauthorize: \(authID) is not authorized for \(volume)")
            }
            return
        }
        if meta.dirty {
            try recoverAuthMetadata(authID, &meta, authLock)
        }
        let entity = overlapped { [self] in try authGet(authID) }
        meta.dirty = true
        meta.subvolumes[volume.description]?.dirty = true
        try store.write(authLock, meta.json, durable: false)
        let synced = overlapped { [store] in try store.sync(authLock) }
        defer { _ = try? synced.wait() }  // before the auth lock goes
        let last = meta.subvolumes.keys.allSatisfy { $0 == volume.description }
        try withLock(layout.volumeMetadataPath(volume)) { volumeLock in
            let volumeMeta = try readVolumeMetadata(volumeLock)
            try synced.wait()
            CrashPoint.deauthorizeAuthMetaDirty.reach()
            try deauthorizeVolume(
                volume, authID: authID, entity: { try entity.wait() }, volumeLock, meta: volumeMeta,
                preexisting: meta.preexistingCaps, last: last)
        }

        meta.subvolumes[volume.description] = nil
        if meta.subvolumes.isEmpty {
            try store.unlink(authLock)
            return
        }
        meta.dirty = false
        try store.write(authLock, meta.json, durable: false)
    }

    /// The volume half of deauthorize, with the volume metadata locked. Caps
    /// go before the metadata entry, so a crash in between is redone by recovery.
    func deauthorizeVolume(
        _ volume: VolumePath, authID: String, entity: () throws -> CephEntity?, _ lock: MetadataLock,
        meta current: VolumeMetadata?, preexisting: [String: String]?, last: Bool
    ) throws {
        guard var meta = current, meta.auths[authID] != nil else {
            // No volume record (for instance the volume was deleted, maybe
            // made again since), but the caps may still grant the path:
            // take them away regardless.
            try deauthorizeCeph(volume, authID: authID, entity: try entity(), recorded: false, preexisting: preexisting, last: last)
            if try fs.statIfExists(layout.volumePath(volume)) == nil { try store.unlink(lock) }
            return
        }
        meta.auths[authID]?.dirty = true
        try store.write(lock, meta.json)
        CrashPoint.deauthorizeVolumeMetaDirty.reach()
        try deauthorizeCeph(volume, authID: authID, entity: try entity(), preexisting: preexisting, last: last)
        CrashPoint.deauthorizeCapsUpdated.reach()
        meta.auths[authID] = nil
        try store.write(lock, meta.json)
        CrashPoint.deauthorizeVolumeMetaRemoved.reach()
    }

    /// The entities (but the service's own) whose mds caps grant the
    /// volume's path itself, from one `auth ls`. The reply holds keys: it is
    /// never logged. Without the mon cap for `auth ls`, the auth metadata
    /// files are read instead: every one, so much slower with many IDs, and
    /// blind to grants whose metadata is gone.
    func entitiesGranting(_ volume: VolumePath) throws -> [String] {
        let path = layout.volumePath(volume)
        let reply = Result { () throws(CephError) in try cluster.monJSON(["prefix": "auth ls"]) }
        if case .failure(let error) = reply, error.errno == .EACCES || error.errno == .EPERM {
            logger.warning(
                "create_volume: no mon cap for 'auth ls' (\(error)); reading every auth metadata file instead. Add allow command \"auth ls\" to the service's mon caps."
            )
            return try authIDsRecording(volume)
        }
        let dump = try reply.get()
        let grants: Set<String> = ["allow r path=\(path)", "allow rw path=\(path)"]
        return (dump?["auth_dump"]?.arrayValue ?? []).compactMap { e -> String? in
            guard let name = e["entity"]?.stringValue, name.hasPrefix("client.") else { return nil }
            let id = String(name.dropFirst("client.".count))
            guard id != config.cluster.id, Caps.tokens(e["caps"]?["mds"]?.stringValue).contains(where: grants.contains) else {
                return nil
            }
            return id
        }
    }

    /// The auth IDs whose auth metadata lists `volume`.
    func authIDsRecording(_ volume: VolumePath) throws -> [String] {
        guard let names = try ignoring(.ENOENT, { () throws(CephError) in try fs.listDirectory(layout.prefix) }) else {
            return []
        }
        return try names.compactMap { name -> String? in
            guard let id = Layout.authID(fromFileName: name.name), (try? Identifier.validateAuthID(id)) != nil,
                let lock = try store.lock(layout.authMetadataPath(id), create: false)
            else { return nil }
            defer { lock.releaseInBackground(on: helpers) }
            return try readAuthMetadata(lock)?.subvolumes[volume.description] != nil ? id : nil
        }
    }

    /// Revokes the grants left on the path of a volume just made: a v6
    /// delete_volume leaves them (caps and auth metadata), and so may a
    /// crash. Only entities with auth metadata are ours to edit; grants an
    /// operator gave out of band are logged and left alone. Each goes as
    /// deauthorize would, so a pre-existing entity gets its own caps back.
    func revokeLeftoverGrants(_ volume: VolumePath, _ ids: [String]) throws {
        let path = layout.volumePath(volume)
        for id in ids {
            guard (try? Identifier.validateAuthID(id)) != nil,
                let lock = try store.lock(layout.authMetadataPath(id), create: false)
            else {
                logger.warning("create_volume: client.\(id) has caps on \(path) that the service did not grant; left alone")
                continue
            }
            defer { lock.releaseInBackground(on: helpers) }
            logger.warning("create_volume: revoking client.\(id)'s grant on \(path), left by an earlier volume at that path")
            try deauthorizeLocked(volume, authID: id, lock, force: true)
        }
    }

    /// The auth IDs with finished grants on `volume`, or nil when there are none.
    public func getAuthorizedIDs(_ volume: VolumePath) throws(VolumeError) -> [(authID: String, accessLevel: String)]? {
        try engineCall {
            guard let lock = try store.lock(layout.volumeMetadataPath(volume), create: false) else { return nil }
            defer { lock.release() }
            guard let meta = try readVolumeMetadata(lock), !meta.auths.isEmpty else { return nil }
            return meta.auths.filter { !$0.value.dirty }.sorted { $0.key < $1.key }.map { ($0.key, $0.value.accessLevel) }
        }
    }
}
