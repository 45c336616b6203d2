import Ceph

extension VolumeEngine {
    func snapshotPath(_ dir: String, _ name: String) throws -> String {
        "\(dir)/\(try cluster.confGet("client_snapdir"))/\(name)"
    }

    public func createSnapshotVolume(_ volume: VolumePath, snapshotName: String, mode: UInt32 = 0o755) throws(VolumeError) {
        try engineCall {
            try fs.mkdir(try snapshotPath(layout.volumePath(volume), snapshotName), mode: mode)
        }
    }

    public func destroySnapshotVolume(_ volume: VolumePath, snapshotName: String) throws(VolumeError) {
        try engineCall {
            try removeSnapshot(try snapshotPath(layout.volumePath(volume), snapshotName))
        }
    }

    public func createSnapshotGroup(_ groupID: String, snapshotName: String, mode: UInt32 = 0o755) throws(VolumeError) {
        try engineCall {
            try fs.mkdir(try snapshotPath(layout.groupPath(groupID), snapshotName), mode: mode)
        }
    }

    public func destroySnapshotGroup(_ groupID: String, snapshotName: String) throws(VolumeError) {
        try engineCall {
            try removeSnapshot(try snapshotPath(layout.groupPath(groupID), snapshotName))
        }
    }

    private func removeSnapshot(_ path: String) throws {
        if try !ifPresent(path, { p throws(CephError) in try fs.rmdir(p) }) {
            logger.info("snapshot \(path) was already gone")
        }
    }
}
