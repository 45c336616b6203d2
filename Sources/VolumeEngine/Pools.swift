import Ceph
import JSONValue

#if canImport(Glibc)
import Glibc
#endif

extension VolumeEngine {
    /// The MDS map of our file system, from `fs dump`.
    func mdsMap() throws -> JSONValue {
        guard let dump = try cluster.monJSON(["prefix": "fs dump"]),
            let filesystems = dump["filesystems"]?.arrayValue
        else { throw VolumeError(.clusterError, "fs dump returned no file systems") }
        let wanted = config.fsName
        for fs in filesystems {
            guard let map = fs["mdsmap"] else { continue }
            if wanted == nil || map["fs_name"]?.stringValue == wanted { return map }
        }
        throw VolumeError(.clusterError, "file system \(wanted ?? "(default)") not found in fs dump", errno: .ENOENT)
    }

    func poolID(_ name: String) throws -> Int64? {
        let dump = try cluster.monJSON(["prefix": "osd dump"])
        for pool in dump?["pools"]?.arrayValue ?? [] where pool["pool_name"]?.stringValue == name {
            return pool["pool"]?.int64Value
        }
        return nil
    }

    /// Creates the pool if needed and makes it a data pool of the file system.
    /// pg_num is left to the cluster's defaults and autoscaler.
    func ensureDataPool(_ pool: String) throws {
        var id = try poolID(pool)
        if id == nil {
            _ = try ignoring(.EEXIST) { () throws(CephError) in
                try cluster.monCommand(["prefix": "osd pool create", "pool": .string(pool)])
            }
            id = try poolID(pool)
        }
        guard let id else { throw VolumeError(.clusterError, "pool \(pool) is missing right after creation") }
        let map = try mdsMap()
        let dataPools = map["data_pools"]?.arrayValue?.compactMap(\.int64Value) ?? []
        if !dataPools.contains(id) {
            let fsName = map["fs_name"]?.stringValue ?? config.fsName ?? ""
            _ = try cluster.monCommand(["prefix": "fs add_data_pool", "fs_name": .string(fsName), "pool": .string(pool)])
        }
        // Our client must see the new pool before it can name it in a layout.
        try cluster.waitForLatestOSDMap()
    }

    /// Sets a directory's data pool. The MDS learns of a new data pool through
    /// its map a moment after the mon commits it, and refuses the layout
    /// (EINVAL) until then, so retry briefly instead of sleeping blindly.
    func setLayoutPool(_ path: String, _ pool: String) throws {
        var delay: UInt32 = 50_000
        for _ in 0..<40 {
            let set = try ignoring(.EINVAL) { () throws(CephError) in try fs.setxattr(path, "ceph.dir.layout.pool", pool) }
            if set != nil { return }
            try cluster.waitForLatestOSDMap()
            usleep(delay)
            delay = min(delay * 2, 500_000)
        }
        try fs.setxattr(path, "ceph.dir.layout.pool", pool)
    }

    /// Detaches the pool from the file system and deletes it (idempotent).
    func removeDataPool(_ pool: String) throws {
        guard let id = try poolID(pool) else { return }
        let map = try mdsMap()
        if map["data_pools"]?.arrayValue?.compactMap(\.int64Value).contains(id) == true {
            let fsName = map["fs_name"]?.stringValue ?? config.fsName ?? ""
            _ = try cluster.monCommand(["prefix": "fs rm_data_pool", "fs_name": .string(fsName), "pool": .string(pool)])
        }
        _ = try ignoring(.ENOENT) { () throws(CephError) in
            try cluster.monCommand([
                "prefix": "osd pool delete", "pool": .string(pool), "pool2": .string(pool),
                "yes_i_really_really_mean_it": true,
            ])
        }
    }
}
