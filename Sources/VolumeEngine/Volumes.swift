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
    ) throws -> String {
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
        CrashPoint.createVolumeLayoutSet.reach()
        return path
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

    /// Moves a volume to the trash and removes its metadata file (idempotent).
    /// Guests lose access; purge_volume reclaims the space.
    public func deleteVolume(_ volume: VolumePath, dataIsolated: Bool = false) throws {
        let path = layout.volumePath(volume)
        try mkdirs(layout.trashPath, mode: 0o755)
        let trashed = layout.trashedVolumePath(volume)
        if try !ifPresent(path, { p throws(CephError) in try fs.rename(p, to: trashed) }) {
            logger.info("delete_volume: \(path) is already gone")
        }
        CrashPoint.deleteVolumeTrashed.reach()
        try ifPresent(layout.volumeMetadataPath(volume)) { p throws(CephError) in try fs.unlink(p) }
        store.openFiles.drop(layout.volumeMetadataPath(volume))
    }

    /// Deletes a trashed volume's data, and its pool when data-isolated (idempotent).
    public func purgeVolume(_ volume: VolumePath, dataIsolated: Bool = false) throws {
        let trashed = layout.trashedVolumePath(volume)
        if try fs.statIfExists(trashed) != nil {
            try removeTree(trashed)
        } else {
            logger.info("purge_volume: \(trashed) is already purged")
        }
        if dataIsolated {
            try removeDataPool(layout.poolName(volume))
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

    /// Deletes a directory tree, without following symlinks.
    func removeTree(_ root: String) throws(CephError) {
        for e in try fs.listDirectory(root) {
            let child = root + "/" + e.name
            if e.kind == .directory {
                try removeTree(child)
            } else {
                try fs.unlink(child)
            }
        }
        try fs.rmdir(root)
    }

    /// Bytes used by a volume (its recursive size).
    public func getUsedBytes(_ volume: VolumePath) throws -> Int64 {
        let path = layout.volumePath(volume)
        guard let text = try fs.getxattrString(path, "ceph.dir.rbytes"), let n = Int64(text) else {
            throw VolumeError(.volumeClientError, "no ceph.dir.rbytes on \(path)")
        }
        return n
    }

    /// Sets the quota; nil removes it.
    public func setMaxBytes(_ volume: VolumePath, maxBytes: Int64?) throws {
        try fs.setxattr(layout.volumePath(volume), "ceph.quota.max_bytes", String(maxBytes ?? 0))
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
