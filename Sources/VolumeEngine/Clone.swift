import Ceph

#if canImport(Glibc)
import Glibc
#endif

extension VolumeEngine {
    /// Copies a snapshot of one volume into another, existing volume:
    /// directories, regular files (streamed in chunks) with their modes, and
    /// symlinks.
    ///
    /// The destination's tenant can change it while the copy runs, and may
    /// have planted links in it (the CVE-2022-0670 class), so the copy never
    /// resolves a path inside either volume: both roots are resolved once, by
    /// the service's own paths, and everything below is reached through inode
    /// handles, by single names, without following anything. What already sits
    /// at a name in the destination:
    /// - a directory, where the snapshot has a directory, is reused (its mode set, other entries kept);
    /// - anything else that is not a directory (file, symlink, special file) is
    ///   unlinked and the entry created anew, exclusively, so nothing is
    ///   written through an existing inode or link;
    /// - a directory where the snapshot has a file or symlink is refused
    ///   (EISDIR), and left as it is.
    public func cloneVolumeToExisting(destination: VolumePath, source: VolumePath, snapshotName: String) throws(VolumeError) {
        try engineCall {
            let srcPath = try snapshotPath(layout.volumePath(source), snapshotName)
            let dstPath = layout.volumePath(destination)
            guard let src = try directory(srcPath) else {
                throw VolumeError(.objectNotFound, "snapshot \(snapshotName) of volume \(source) does not exist", errno: .ENOENT)
            }
            defer { src.close() }
            guard let dst = try directory(dstPath) else {
                throw VolumeError(.objectNotFound, "volume \(destination) does not exist", errno: .ENOENT)
            }
            defer { dst.close() }
            try copyTree(from: src, to: dst, snapdir: try cluster.confGet("client_snapdir"))
        }
    }

    /// A handle on one of the service's own directories, or nil when absent.
    /// Tenants cannot change these paths (they have no write access above
    /// their volume), and the last component is not followed.
    private func directory(_ path: String) throws(CephError) -> InodeHandle? {
        guard let h = try ignoring(.ENOENT, { () throws(CephError) in try fs.inode(at: path) }) else { return nil }
        guard h.stat.isDirectory else {
            h.close()
            throw CephError(errno: .ENOTDIR, operation: "clone", target: path)
        }
        return h
    }

    static let copyChunk = 4 << 20

    /// Copies the entries of `src` into `dst`; see `cloneVolumeToExisting`
    /// for what happens to entries already in `dst`. Reusable for any copy
    /// into a directory someone else can write to.
    ///
    /// An entry named `snapdir` is skipped: a client with another
    /// `client_snapdir` can create one, and that name leads into the
    /// destination's snapshot directory, where a mkdir makes a snapshot.
    func copyTree(from src: InodeHandle, to dst: InodeHandle, snapdir: String) throws {
        for entry in try src.list() {
            if entry.name == snapdir {
                logger.warning("clone: skipping \(src.path)/\(entry.name): it has the snapshot directory's name")
                continue
            }
            let from = try src.lookup(entry.name)
            defer { from.close() }
            let st = from.stat
            if st.isDirectory {
                let to = try dst.replacingDirectory(entry.name, mode: st.permissions)
                defer { to.close() }
                // On the handle: a reused directory keeps its inode, never a link's target.
                try to.setAttributes(mode: st.permissions)
                try copyTree(from: from, to: to, snapdir: snapdir)
            } else if st.isSymlink {
                try dst.replacingSymlink(entry.name, target: try from.readlink()).close()
            } else if st.isRegularFile {
                try copyFile(from, into: dst, name: entry.name, mode: st.permissions)
            } else {
                logger.warning("clone: skipping \(from.path): neither file, directory nor symlink")
            }
        }
    }

    private func copyFile(_ from: InodeHandle, into dst: InodeHandle, name: String, mode: UInt32) throws {
        let input = try from.open(flags: O_RDONLY)
        defer { input.close() }
        let (to, output) = try dst.replacingFile(name, mode: mode)
        defer {
            output.close()
            to.close()
        }
        var offset: Int64 = 0
        while true {
            let chunk = try input.read(count: Self.copyChunk, offset: offset)
            if chunk.isEmpty { break }
            try output.write(chunk, offset: offset)
            offset += Int64(chunk.count)
            if chunk.count < Self.copyChunk { break }
        }
        try output.fsync()
        try to.setAttributes(mode: mode)
    }
}
