import Ceph

extension VolumeEngine {
    /// Creates a group directory (idempotent). Group IDs and snapshot names
    /// arrive validated (VolumeProtocol's GroupID and SnapshotName).
    public func createGroup(_ groupID: String, mode: UInt32 = 0o755) throws(VolumeError) {
        try engineCall {
            try mkdirs(layout.groupPath(groupID), mode: mode)
        }
    }

    /// Removes an empty group; succeeds when it is already gone.
    public func destroyGroup(_ groupID: String) throws(VolumeError) {
        try engineCall {
            do throws(CephError) {
                if try !ifPresent(layout.groupPath(groupID), { p throws(CephError) in try fs.rmdir(p) }) {
                    logger.debug("destroy_group: \(groupID) already gone")
                }
            } catch {
                if error.errno == .ENOTEMPTY {
                    throw VolumeError(.volumeClientError, "group \(groupID) is not empty", errno: .ENOTEMPTY)
                }
                throw error
            }
        }
    }

    /// `mkdir -p`; created directories get `mode`. Stats (answered from the
    /// client's cache for known paths) find the deepest existing ancestor,
    /// so only missing directories cost an MDS round trip.
    func mkdirs(_ path: String, mode: UInt32) throws(CephError) {
        var missing: [String] = []
        var current = path
        while !current.isEmpty, current != "/", try fs.statIfExists(current) == nil {
            missing.append(current)
            current = parentPath(current)
        }
        for dir in missing.reversed() {
            try ignoring(.EEXIST) { () throws(CephError) in try fs.mkdir(dir, mode: mode) }
        }
    }
}
