import Ceph

#if canImport(Glibc)
import Glibc
#endif

extension VolumeEngine {
    /// Copies a snapshot of one volume into another, existing volume:
    /// directories, regular files (streamed in chunks) with their modes, and
    /// symlinks. Existing files of the same name are overwritten.
    public func cloneVolumeToExisting(destination: VolumePath, source: VolumePath, snapshotName: String) throws {
        try Identifier.validate(snapshotName, field: "snapshot_name")
        let src = try snapshotPath(layout.volumePath(source), snapshotName)
        let dst = layout.volumePath(destination)
        guard try fs.statIfExists(src) != nil else {
            throw VolumeError(.objectNotFound, "snapshot \(snapshotName) of volume \(source) does not exist", errno: .ENOENT)
        }
        guard try fs.statIfExists(dst) != nil else {
            throw VolumeError(.objectNotFound, "volume \(destination) does not exist", errno: .ENOENT)
        }
        try copyTree(from: src, to: dst)
    }

    static let copyChunk = 4 << 20

    func copyTree(from src: String, to dst: String) throws {
        for entry in try fs.listDirectory(src) {
            let from = src + "/" + entry.name
            let to = dst + "/" + entry.name
            let st = try fs.stat(from, followSymlinks: false)
            if st.isDirectory {
                try ignoring(.EEXIST) { () throws(CephError) in try fs.mkdir(to, mode: st.permissions) }
                try fs.chmod(to, mode: st.permissions)
                try copyTree(from: from, to: to)
            } else if st.isSymlink {
                let target = try fs.readlink(from)
                try ifPresent(to) { p throws(CephError) in try fs.unlink(p) }
                try fs.symlink(target: target, at: to)
            } else if st.isRegularFile {
                try copyFile(from: from, to: to, mode: st.permissions)
            } else {
                logger.warning("clone: skipping \(from): neither file, directory nor symlink")
            }
        }
    }

    private func copyFile(from: String, to: String, mode: UInt32) throws {
        let input = try fs.open(from, flags: O_RDONLY)
        defer { input.close() }
        let output = try fs.open(to, flags: O_CREAT | O_WRONLY | O_TRUNC, mode: mode)
        defer { output.close() }
        var offset: Int64 = 0
        while true {
            let chunk = try input.read(count: Self.copyChunk, offset: offset)
            if chunk.isEmpty { break }
            try output.write(chunk, offset: offset)
            offset += Int64(chunk.count)
            if chunk.count < Self.copyChunk { break }
        }
        try output.fsync()
        try fs.chmod(to, mode: mode)
    }
}
