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
    func volumeCaps(_ volume: VolumePath, readonly: Bool) throws -> (want: VolumeCaps, unwanted: VolumeCaps) {
        let path = layout.volumePath(volume)
        let pool = try ancestorXattr(path, "ceph.dir.layout.pool")
        let namespace = try fs.getxattrString(path, "ceph.dir.layout.pool_namespace")
        return (
            VolumeCaps(path: path, pool: pool, namespace: namespace, readonly: readonly),
            VolumeCaps(path: path, pool: pool, namespace: namespace, readonly: !readonly)
        )
    }

    /// Grants `volume` to the entity, creating it when it does not exist.
    /// Returns the entity's key.
    func authorizeCeph(_ volume: VolumePath, authID: String, readonly: Bool, existing: CephEntity?) throws -> String {
        let (want, unwanted) = try volumeCaps(volume, readonly: readonly)
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

    /// Removes the grants `volume` made, and nothing else. Deletes the entity
    /// only when it would be left with no mds or osd caps and nothing but
    /// mon `allow r`. After the volume was deleted its layout is gone: its mds
    /// caps are still known by path, and a namespace grant by its name.
    func deauthorizeCeph(_ volume: VolumePath, authID: String) throws {
        guard let entity = try authGet(authID) else { return }
        var grants: [VolumeCaps] = []
        if try fs.statIfExists(layout.volumePath(volume)) != nil {
            let (r, rw) = try volumeCaps(volume, readonly: true)
            grants = [r, rw]
        } else {
            let path = layout.volumePath(volume)
            let suffix = " namespace=\(layout.namespace(volume))"
            let osd = Caps.tokens(entity.caps["osd"])
            for level in ["r", "rw"] {
                let prefix = "allow \(level) pool="
                let token = osd.first { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) }
                grants.append(VolumeCaps(mds: "allow \(level) path=\(path)", osd: token ?? ""))
            }
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

    func withLock<T>(_ path: String, _ body: (MetadataLock) throws -> T) throws -> T {
        let lock = try store.lock(path)!
        defer { lock.release() }
        return try body(lock)
    }

    // MARK: Operations

    /// Gives `authID` access to `volume`, creating the cephx entity if needed.
    /// Returns the key only when `tenantID` is given, as the Python client does.
    public func authorize(
        _ volume: VolumePath, authID: String, readonly: Bool = false, tenantID: String? = nil,
        allowExistingID: Bool = false
    ) throws -> String? {
        try Identifier.validateAuthID(authID)
        if let tenantID { try Identifier.validate(tenantID, field: "tenant_id") }
        if authID == config.cluster.id {
            throw VolumeError(.volumeClientError, "auth ID: \(authID) is the service's own identity and cannot be authorized", errno: .EPERM)
        }
        guard try fs.statIfExists(layout.volumePath(volume)) != nil else {
            throw VolumeError(.objectNotFound, "volume \(volume) does not exist", errno: .ENOENT)
        }
        let key = try withLock(layout.authMetadataPath(authID)) { authLock -> String in
            let existing = try authGet(authID)
            var meta: AuthMetadata
            if let current = try readAuthMetadata(authLock) {
                meta = current
                guard meta.sameTenant(tenantID) else {
                    throw VolumeError(.volumeClientError, "auth ID: \(authID) is already in use", errno: .EEXIST)
                }
                if meta.dirty {
                    try recoverAuthMetadata(authID, &meta, authLock)
                }
            } else {
                // CVE-2020-27781: an entity we did not create is not ours to edit.
                if existing != nil && !allowExistingID {
                    // The lock created the file; a refusal leaves nothing behind.
                    try store.unlink(authLock)
                    throw VolumeError(
                        .volumeClientError,
                        "auth ID: \(authID) exists and not created by ceph_volume_client. Not allowed to modify",
                        errno: .EPERM)
                }
                meta = AuthMetadata(tenantID: tenantID)
            }
            let entry = AccessEntry(accessLevel: readonly ? "r" : "rw", dirty: true)
            meta.dirty = true
            meta.subvolumes[volume.description] = entry
            try store.write(authLock, meta.json)
            CrashPoint.authorizeAuthMetaDirty.reach()

            let key = try withLock(layout.volumeMetadataPath(volume)) { volumeLock in
                try authorizeVolume(volume, authID: authID, readonly: readonly, existing: existing, volumeLock)
            }

            meta.dirty = false
            meta.subvolumes[volume.description]?.dirty = false
            try store.write(authLock, meta.json)
            return key
        }
        return tenantID == nil ? nil : key
    }

    /// The volume half of authorize, with the volume metadata locked.
    func authorizeVolume(
        _ volume: VolumePath, authID: String, readonly: Bool, existing: CephEntity?, _ lock: MetadataLock
    ) throws -> String {
        var meta = try readVolumeMetadata(lock) ?? VolumeMetadata()
        meta.auths[authID] = AccessEntry(accessLevel: readonly ? "r" : "rw", dirty: true)
        try store.write(lock, meta.json)
        CrashPoint.authorizeVolumeMetaDirty.reach()
        let key = try authorizeCeph(volume, authID: authID, readonly: readonly, existing: existing)
        CrashPoint.authorizeCapsUpdated.reach()
        meta.auths[authID]?.dirty = false
        try store.write(lock, meta.json)
        CrashPoint.authorizeVolumeMetaClean.reach()
        return key
    }

    /// Takes `authID`'s access to `volume` away (idempotent). Grants the
    /// service did not make, and the entity's other caps, stay.
    public func deauthorize(_ volume: VolumePath, authID: String) throws {
        try Identifier.validateAuthID(authID)
        try withLock(layout.authMetadataPath(authID)) { authLock in
            guard var meta = try readAuthMetadata(authLock), !meta.subvolumes.isEmpty else {
                logger.info("deauthorize: \(authID) has no volumes")
                try store.unlink(authLock)
                return
            }
            guard meta.subvolumes[volume.description] != nil else {
                logger.info("deauthorize: \(authID) is not authorized for \(volume)")
                return
            }
            if meta.dirty {
                try recoverAuthMetadata(authID, &meta, authLock)
            }
            meta.dirty = true
            meta.subvolumes[volume.description]?.dirty = true
            try store.write(authLock, meta.json)
            CrashPoint.deauthorizeAuthMetaDirty.reach()

            try withLock(layout.volumeMetadataPath(volume)) { volumeLock in
                try deauthorizeVolume(volume, authID: authID, volumeLock)
            }

            meta.subvolumes[volume.description] = nil
            if meta.subvolumes.isEmpty {
                try store.unlink(authLock)
                return
            }
            meta.dirty = false
            try store.write(authLock, meta.json)
        }
    }

    /// The volume half of deauthorize, with the volume metadata locked. Caps
    /// go before the metadata entry, so a crash in between is redone by recovery.
    func deauthorizeVolume(_ volume: VolumePath, authID: String, _ lock: MetadataLock) throws {
        guard var meta = try readVolumeMetadata(lock), meta.auths[authID] != nil else {
            // No volume record (for instance the volume was deleted), but the
            // caps may still grant the path: take them away regardless.
            try deauthorizeCeph(volume, authID: authID)
            if try fs.statIfExists(layout.volumePath(volume)) == nil { try store.unlink(lock) }
            return
        }
        meta.auths[authID]?.dirty = true
        try store.write(lock, meta.json)
        CrashPoint.deauthorizeVolumeMetaDirty.reach()
        try deauthorizeCeph(volume, authID: authID)
        CrashPoint.deauthorizeCapsUpdated.reach()
        meta.auths[authID] = nil
        try store.write(lock, meta.json)
        CrashPoint.deauthorizeVolumeMetaRemoved.reach()
    }

    /// The auth IDs with finished grants on `volume`, or nil when there are none.
    public func getAuthorizedIDs(_ volume: VolumePath) throws -> [(authID: String, accessLevel: String)]? {
        guard let lock = try store.lock(layout.volumeMetadataPath(volume), create: false) else { return nil }
        defer { lock.release() }
        guard let meta = try readVolumeMetadata(lock), !meta.auths.isEmpty else { return nil }
        return meta.auths.filter { !$0.value.dirty }.sorted { $0.key < $1.key }.map { ($0.key, $0.value.accessLevel) }
    }
}
