import Ceph
import JSONValue

#if canImport(Glibc)
import Glibc
#endif

extension VolumeEngine {
    /// Creates a volume: its directory, quota, layout and (empty) metadata
    /// file, as the Python client does. Idempotent: safe to call again for
    /// an existing volume, even in use.
    public func createVolume(
        _ volume: VolumePath, size: Int64? = nil, dataIsolated: Bool = false, namespaceIsolated: Bool = true,
        mode: UInt32 = 0o755
    ) throws(VolumeError) -> String {
        try engineCall {
            let path = layout.volumePath(volume)
            // No lookup first: mkdir answers whether the volume exists (EEXIST, a
            // repeat call) as fast as a lookup of the missing name would. The
            // volume_id names the RADOS namespace, the pool and the trash entry,
            // so it must be free in every other group: those names are looked up
            // (at once, when helper threads are idle) once the volume is new, and
            // a directory just made is taken back if one is found.
            // `made`: this call made the directory, so its layout is exactly what is set below.
            var made = false
            let groups = try groupDirectories()
            func refuseIfTaken() throws {
                let lookups = otherGroupPaths(volume, groups: groups).map { other in
                    (other.name, overlapped { [fs] in try fs.statIfExists(other.path) != nil })
                }
                for (name, taken) in lookups where try taken.wait() {
                    throw VolumeError(.volumeClientError, "volume_id \(volume.volumeID) is already used in \(name)", errno: .EEXIST)
                }
            }
            // The cached listing tells whether the group exists. A new group is
            // made only once the name is known to be free, so a refused call
            // leaves nothing behind; if the group went away since the listing,
            // the mkdir fails with ENOENT and mkdirs makes it.
            var checked = false
            if !groups.contains(volume.groupID ?? Layout.noGroup) {
                try refuseIfTaken()
                checked = true
                try mkdirs(parentPath(path), mode: mode)
            }
            let outcome: Void?? = try ignoring(.ENOENT) { () throws(CephError) in
                try ignoring(.EEXIST) { () throws(CephError) in try fs.mkdir(path, mode: mode) }
            }
            switch outcome {
            case .some(.some): made = true
            case .some(.none): break  // an existing volume: nothing to check
            case .none:
                // The group went away meanwhile: check, then make it again.
                try refuseIfTaken()
                try mkdirs(path, mode: mode)
                made = true
                checked = true
            }
            if made && !checked {
                do {
                    try refuseIfTaken()
                } catch {
                    try fs.rmdir(path)
                    throw error
                }
            }
            // A new directory at a path that had a volume: grants a v6
            // delete_volume left behind (it does not revoke) would open it to the
            // old tenants. One `auth ls` finds them, overlapped with the rest.
            let leftovers = made ? overlapped { [self] in try entitiesGranting(volume) } : nil
            CrashPoint.createVolumeDirectoryMade.reach()
            // The quota, the layout and the metadata file are independent: make them at once.
            let quota = size.map { size in
                overlapped { [fs] in try fs.setxattr(path, "ceph.quota.max_bytes", String(size)) }
            }
            let metadataPath = layout.volumeMetadataPath(volume)
            let metadata = overlapped { [fs, store] in
                // Kept open: authorize's lock then needs no open.
                store.openFiles.keep(metadataPath, try fs.open(metadataPath, flags: O_CREAT | O_RDWR, mode: MetadataStore.fileMode))
            }
            var pool: String?
            if dataIsolated {
                let own = layout.poolName(volume)
                try ensureDataPool(own)
                try setLayoutPool(path, own)
                pool = own
            } else if made {
                pool = try inheritedPool(path)
            }
            if namespaceIsolated {
                try fs.setxattr(path, "ceph.dir.layout.pool_namespace", layout.namespace(volume))
            } else if !dataIsolated {
                // Pin the pool, or the volume would follow later changes of its ancestors' layout.
                let current = try pool ?? ancestorXattr(path, "ceph.dir.layout.pool")
                try setLayoutPool(path, current)
                pool = current
            }
            // What authorize will grant, without asking the MDS again; a volume
            // that existed may have had other settings, so it is read afresh.
            let inode = try fs.stat(path).inode
            if made, let pool {
                remember(VolumeLayout(pool: pool, namespace: namespaceIsolated ? layout.namespace(volume) : nil), inode: inode)
            } else {
                layouts.withLock { _ = $0.removeValue(forKey: inode) }
            }
            try quota?.wait()
            try metadata.wait()
            if let leftovers { try revokeLeftoverGrants(volume, try leftovers.wait()) }
            CrashPoint.createVolumeLayoutSet.reach()
            return path
        }
    }

    /// The data pool a new directory at `path` inherits: its parent's, kept
    /// per parent inode in the same cache as volumes (a group's layout is not
    /// changed under its volumes).
    func inheritedPool(_ path: String) throws -> String {
        let parent = parentPath(path)
        let inode = try fs.stat(parent).inode
        if let known = layouts.withLock({ $0[inode] }) { return known.pool }
        let pool = try ancestorXattr(parent, "ceph.dir.layout.pool")
        remember(VolumeLayout(pool: pool, namespace: nil), inode: inode)
        return pool
    }

    /// Where `volume`'s name would be in each other group (and in no group),
    /// for the uniqueness check of volume_ids.
    func otherGroupPaths(_ volume: VolumePath, groups: [String]) -> [(name: String, path: String)] {
        let ownGroup = volume.groupID ?? Layout.noGroup
        return groups.compactMap { group in
            guard group != ownGroup else { return nil }
            let name = group == Layout.noGroup ? "no group" : "group \(group)"
            return (name, "\(layout.prefix)/\(group)/\(volume.volumeID)")
        }
    }

    /// The group directories under the prefix (`_nogroup` included).
    ///
    /// The prefix also holds every metadata file, so listing it costs an MDS
    /// readdir that grows with the number of volumes and IDs. The list is
    /// kept and listed again only when the prefix's inode or its number of
    /// subdirectories (CephFS reports it as the directory's link count, and
    /// the MDS keeps it coherent across clients) has changed.
    func groupDirectories() throws -> [String] {
        guard let stat = try fs.statIfExists(layout.prefix) else { return [] }
        let stamp = GroupListing.Stamp(inode: stat.inode, linkCount: stat.linkCount)
        if let cached = groupListing.withLock({ $0?.stamp == stamp ? $0?.groups : nil }) { return cached }
        guard let entries = try ignoring(.ENOENT, { () throws(CephError) in try fs.listDirectory(layout.prefix) }) else {
            return []
        }
        let groups = entries.compactMap { e -> String? in
            guard e.kind == .directory, e.name != Layout.trashName, e.name == Layout.noGroup || !e.name.hasPrefix("_") else {
                return nil
            }
            return e.name
        }
        groupListing.withLock { $0 = GroupListing(stamp: stamp, groups: groups) }
        return groups
    }

    /// Revokes every grant on the volume, moves it to the trash and removes
    /// its metadata file (idempotent). Guests lose access; purge_volume
    /// reclaims the space.
    ///
    /// Unlike the v6 Python client, which leaves grants (caps and auth
    /// metadata) behind, so that a volume made later at the same path is
    /// open to the old tenants, each grant is taken away first, exactly as
    /// deauthorize would. Locking: the caller holds this volume's keys but
    /// not the auth IDs'; each revocation takes the auth ID's flock and then
    /// the volume's, the order every process uses, and holds no flock while
    /// waiting for another, so no cycle can form. A concurrent authorize of
    /// the same auth ID for another volume (here or in another process)
    /// waits on that flock. The rename happens under the volume's flock once
    /// its metadata records no grant, so no process can add one in between
    /// (authorize checks, under that flock, that the directory is the one it
    /// stat'ed, see `authorize`); grants added meanwhile send us round again.
    public func deleteVolume(_ volume: VolumePath, dataIsolated: Bool = false) throws(VolumeError) {
        try engineCall {
            let metadataPath = layout.volumeMetadataPath(volume)
            try mkdirs(layout.trashPath, mode: 0o755)
            // Most volumes have no grant left: look under the lock first.
            var pending: [String] = []
            for round in 1... {
                for authID in pending {
                    try withLock(layout.authMetadataPath(authID)) { authLock in
                        try deauthorizeLocked(volume, authID: authID, authLock, force: true)
                    }
                }
                pending = try withLock(metadataPath) { volumeLock -> [String] in
                    let recorded = try readVolumeMetadata(volumeLock)?.auths.keys.sorted() ?? []
                    for id in recorded where !Self.isRevocable(id) {
                        logger.warning("delete_volume: \(volume) records a grant for '\(id)', which is not a valid auth ID; left alone")
                    }
                    let left = recorded.filter(Self.isRevocable)
                    guard left.isEmpty else { return left }
                    try moveToTrash(volume)
                    CrashPoint.deleteVolumeTrashed.reach()
                    try store.unlink(volumeLock)
                    return []
                }
                if pending.isEmpty { break }
                if round >= 10 {
                    throw VolumeError(
                        .volumeClientError,
                        "delete_volume: \(volume) keeps being authorized (\(pending.joined(separator: ", "))); try again",
                        errno: .EBUSY)
                }
            }
            store.openFiles.drop(metadataPath)
        }
    }

    /// Auth IDs recorded in volume metadata that can name an auth metadata
    /// file; others (written by hand or by an old client) are left, logged.
    static func isRevocable(_ authID: String) -> Bool { (try? Identifier.validateAuthID(authID)) != nil }

    /// Renames the volume into the trash. The entry is named by volume_id,
    /// as v6 names it, unless an entry of that name is still there (a purge
    /// that failed, or was never run): then `<volume_id>@<16 hex digits>`,
    /// which no volume_id can be (no '@'), so a stale entry never blocks a
    /// delete. purge_volume removes both kinds.
    func moveToTrash(_ volume: VolumePath) throws {
        let path = layout.volumePath(volume)
        let trashed = layout.trashedVolumePath(volume)
        let moved = try ifPresent(path) { p throws(CephError) in
            do throws(CephError) {
                try fs.rename(p, to: trashed)
            } catch  where error.errno == .ENOTEMPTY || error.errno == .EEXIST {
                let hex = String(UInt64.random(in: 0...UInt64.max), radix: 16)
                let unique = trashed + "@" + String(repeating: "0", count: 16 - hex.count) + hex
                logger.info("delete_volume: \(trashed) is still in the trash; using \(unique)")
                try fs.rename(p, to: unique)
            }
        }
        if !moved { logger.info("delete_volume: \(path) is already gone") }
    }

    /// The trash entries of `volume`: its own name and the unique ones (see `moveToTrash`).
    func trashEntries(_ volume: VolumePath) throws -> [String] {
        guard try fs.statIfExists(layout.trashPath) != nil,
            let entries = try ignoring(.ENOENT, { () throws(CephError) in try fs.listDirectory(layout.trashPath) })
        else { return [] }
        let id = volume.volumeID
        return entries.map(\.name).filter { name in
            guard name != id else { return true }
            guard name.hasPrefix(id + "@") else { return false }
            let suffix = name.utf8.dropFirst(id.utf8.count + 1)
            return suffix.count == 16 && suffix.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
        }.sorted().map { "\(layout.trashPath)/\($0)" }
    }

    /// Deletes a trashed volume's data, with the snapshots in it, and its
    /// pool when data-isolated (idempotent). Every trash entry of the
    /// volume_id goes, including those earlier failed purges left.
    public func purgeVolume(_ volume: VolumePath, dataIsolated: Bool = false) throws(VolumeError) {
        try engineCall {
            let trashed = try trashEntries(volume)
            if trashed.isEmpty {
                logger.info("purge_volume: \(layout.trashedVolumePath(volume)) is already purged")
            }
            for entry in trashed {
                try removeTree(entry)
            }
            if dataIsolated {
                try removeDataPool(layout.poolName(volume))
            }
        }
    }

    /// Runs a destructive `operation` on `path` only if it exists, as the seed
    /// does. Not just for tidiness: in libcephfs 16.2 a rename of a missing
    /// path can leave later operations on its destination hanging, so calls
    /// that would fail with ENOENT are not made. Returns false when absent.
    @discardableResult
    func ifPresent(_ path: String, _ operation: (String) throws(CephError) -> Void) throws(CephError) -> Bool {
        guard try fs.statIfExists(path, followSymlinks: false) != nil else { return false }
        return try ignoring(.ENOENT) { () throws(CephError) in try operation(path) } != nil
    }

    /// Deletes a directory tree, without following symlinks. A directory
    /// with snapshots refuses rmdir (ENOTEMPTY): its snapshots are removed
    /// and the rmdir tried again. Only its own: the `_<name>_<inode>` entries
    /// are an ancestor's snapshots (a group's), which are not ours to remove
    /// and do not keep the directory.
    func removeTree(_ root: String) throws {
        for e in try fs.listDirectory(root) {
            let child = root + "/" + e.name
            if e.kind == .directory {
                try removeTree(child)
            } else {
                try fs.unlink(child)
            }
        }
        guard try ignoring(.ENOTEMPTY, { () throws(CephError) in try fs.rmdir(root) }) == nil else { return }
        let snapdir = root + "/" + (try cluster.confGet("client_snapdir"))
        for snapshot in try fs.listDirectory(snapdir) where !snapshot.name.hasPrefix("_") {
            try fs.rmdir(snapdir + "/" + snapshot.name)
        }
        try fs.rmdir(root)
    }

    /// Bytes used by a volume (its recursive size).
    public func getUsedBytes(_ volume: VolumePath) throws(VolumeError) -> Int64 {
        try engineCall {
            let path = layout.volumePath(volume)
            guard let text = try fs.getxattrString(path, "ceph.dir.rbytes"), let n = Int64(text) else {
                throw VolumeError(.volumeClientError, "no ceph.dir.rbytes on \(path)")
            }
            return n
        }
    }

    /// Sets the quota; nil removes it.
    public func setMaxBytes(_ volume: VolumePath, maxBytes: Int64?) throws(VolumeError) {
        try engineCall {
            try fs.setxattr(layout.volumePath(volume), "ceph.quota.max_bytes", String(maxBytes ?? 0))
        }
    }

    /// A layout xattr of `path` or of its nearest ancestor that has it. CephFS
    /// answers an unset layout with an empty value or ENODATA.
    func ancestorXattr(_ path: String, _ name: String) throws -> String {
        var p = path
        while true {
            if let v = try fs.getxattrString(p, name) { return v }
            if p == "/" || p.isEmpty {
                throw VolumeError(.volumeClientError, "no \(name) on \(path) or its ancestors", errno: .ENODATA)
            }
            p = parentPath(p)
        }
    }

    func parentPath(_ p: String) -> String {
        guard let slash = p.lastIndex(of: "/"), slash != p.startIndex else { return "/" }
        return String(p[..<slash])
    }
}
