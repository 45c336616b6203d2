import Ceph

extension VolumeEngine {
    /// Creates a group directory (idempotent).
    public func createGroup(_ groupID: String, mode: UInt32 = 0o755) throws {
        try Identifier.validateGroupID(groupID)
        try mkdirs(layout.groupPath(groupID), mode: mode)
    }

    /// Removes an empty group; succeeds when it is already gone.
    public func destroyGroup(_ groupID: String) throws {
        try Identifier.validateGroupID(groupID)
        do {
            try fs.rmdir(layout.groupPath(groupID))
        } catch {
            switch error.errno {
            case .ENOENT: logger.debug("destroy_group: \(groupID) already gone")
            case .ENOTEMPTY: throw VolumeError(.volumeClientError, "group \(groupID) is not empty", errno: .ENOTEMPTY)
            default: throw error
            }
        }
    }

    /// `mkdir -p`; created directories get `mode`.
    func mkdirs(_ path: String, mode: UInt32) throws(CephError) {
        if try fs.statIfExists(path) != nil { return }
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            try ignoring(.EEXIST) { () throws(CephError) in try fs.mkdir(current, mode: mode) }
        }
    }
}
