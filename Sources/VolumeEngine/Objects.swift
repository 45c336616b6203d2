import Ceph

extension VolumeEngine {
    /// The largest object the seed reads or writes: `osd_max_write_size` MiB.
    func maxObjectSize() throws -> Int {
        guard let mib = Int(try cluster.confGet("osd_max_write_size")) else {
            throw VolumeError(.internal, "osd_max_write_size is not a number")
        }
        return mib * 1024 * 1024
    }

    public func putObject(pool: String, object: String, data: [UInt8]) throws(VolumeError) {
        try engineCall {
            try putObjectVersioned(pool: pool, object: object, data: data, version: nil)
        }
    }

    /// Writes the whole object, only if its version is still `version` when given.
    public func putObjectVersioned(pool: String, object: String, data: [UInt8], version: UInt64?) throws(VolumeError) {
        try engineCall {
            let max = try maxObjectSize()
            if data.count > max {
                throw VolumeError(.volumeClientError, "Data to be written to object '\(object)' exceeds \(max) bytes", errno: .EFBIG)
            }
            let io = try cluster.ioContext(pool: pool)
            defer { io.close() }
            try io.writeFull(object, data, assertVersion: version)
        }
    }

    public func getObject(pool: String, object: String) throws(VolumeError) -> [UInt8] {
        try engineCall {
            try getObjectAndVersion(pool: pool, object: object).data
        }
    }

    public func getObjectAndVersion(pool: String, object: String) throws(VolumeError) -> (data: [UInt8], version: UInt64) {
        try engineCall {
            let max = try maxObjectSize()
            let io = try cluster.ioContext(pool: pool)
            defer { io.close() }
            let result = try io.readWithVersion(object, maxLength: max)
            if result.data.count == max {
                logger.warning("object \(object) is larger than the \(max) bytes read")
            }
            return result
        }
    }

    /// Removes the object; succeeds when it is already gone.
    public func deleteObject(pool: String, object: String) throws(VolumeError) {
        try engineCall {
            let io = try cluster.ioContext(pool: pool)
            defer { io.close() }
            if try ignoring(.ENOENT, { () throws(CephError) in try io.remove(object) }) == nil {
                logger.info("object \(object) was already removed")
            }
        }
    }
}
