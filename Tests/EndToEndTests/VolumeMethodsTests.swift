import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing
import VolumeClient
import VolumeProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Every volume method over the socket, success and error paths, checked
/// against the file system and the cluster.
@Suite("volume methods", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct VolumeMethodsTests {
    static let volumed = Volumed()
    var v: Volumed { Self.volumed }
    var admin: ClusterAdmin { ClusterAdmin.shared }
    let scratch = Scratch()

    /// Creates a volume (and its group) and registers them for cleanup.
    @discardableResult
    func createVolume(_ g: String?, _ vol: String, _ extra: [String: JSONValue] = [:]) async throws -> String {
        scratch.volume(g, vol)
        if let g { scratch.group(g) }
        var params: [String: JSONValue] = ["volume_path": vpath(g, vol)]
        params.merge(extra) { _, new in new }
        let r = try await v.call("create_volume", .object(params))
        return try #require(r["mount_path"]?.stringValue)
    }

    // MARK: Groups

    @Test func createGroupIsIdempotentAndHonoursMode() async throws {
        let g = unique("grp")
        scratch.group(g)
        #expect(try await v.call("create_group", ["group_id": .string(g), "mode": .int(0o750)]) == .null)
        let st = try admin.fs.stat(VolumeLayout.groupPath(g))
        #expect(st.isDirectory)
        #expect(st.permissions == 0o750)
        // Again: no error, nothing changes.
        #expect(try await v.call("create_group", ["group_id": .string(g), "mode": .int(0o700)]) == .null)
        #expect(try admin.fs.stat(VolumeLayout.groupPath(g)).inode == st.inode)

        let g2 = unique("grpdef")
        scratch.group(g2)
        try await v.call("create_group", ["group_id": .string(g2)])
        #expect(try admin.fs.stat(VolumeLayout.groupPath(g2)).permissions == 0o755, "default mode 0o755")

        let g3 = unique("grp700")
        scratch.group(g3)
        try await v.call("create_group", ["group_id": .string(g3), "mode": .int(0o700)])
        #expect(try admin.fs.stat(VolumeLayout.groupPath(g3)).permissions == 0o700)

        await v.expectInvalidParams("create_group", ["group_id": .string(g), "mode": .int(0o10000)], naming: "mode")
        await v.expectInvalidParams("create_group", ["group_id": .string(g), "mode": "755"], naming: "mode")
    }

    @Test func destroyGroupIsIdempotentAndRefusesANonEmptyGroup() async throws {
        let g = unique("dgrp")
        scratch.group(g)
        try await v.call("create_group", ["group_id": .string(g)])
        let vol = unique("dvol")
        try await createVolume(g, vol)

        let e = try #require(await v.error("destroy_group", ["group_id": .string(g)]))
        #expect(e.code == .engineError)
        #expect(e.engineType == .volumeClientError)
        #expect(e.errno == 39)
        #expect(e.errnoName == "ENOTEMPTY")
        #expect(admin.exists(VolumeLayout.volumePath(g, vol)), "the volume is untouched")

        try await v.call("delete_volume", ["volume_path": vpath(g, vol)])
        #expect(try await v.call("destroy_group", ["group_id": .string(g)]) == .null)
        #expect(!admin.exists(VolumeLayout.groupPath(g)))
        #expect(try await v.call("destroy_group", ["group_id": .string(g)]) == .null, "idempotent")
        #expect(try await v.call("destroy_group", ["group_id": .string(unique("nevergrp"))]) == .null)
        try await v.call("purge_volume", ["volume_path": vpath(g, vol)])
    }

    // MARK: Volumes

    @Test func createVolumeInAGroup() async throws {
        let g = unique("cgrp")
        let vol = unique("cvol")
        let path = try await createVolume(g, vol, ["size": .int(10 << 20)])
        #expect(path == "/volumes/\(g)/\(vol)")
        let st = try admin.fs.stat(path)
        #expect(st.isDirectory)
        #expect(admin.xattr(path, "ceph.quota.max_bytes") == String(10 << 20))
        #expect(admin.xattr(path, "ceph.dir.layout.pool_namespace") == "fsvolumens_\(vol)")
        #expect(admin.xattr(path, "ceph.dir.layout.pool") == "cephfs_data")
        #expect(admin.exists("/volumes/_\(g):\(vol).meta"), "volume metadata file")

        // Idempotent, even with data in it.
        try admin.writeFile(path + "/keep", Array("data".utf8))
        let again = try await v.call("create_volume", ["volume_path": vpath(g, vol), "size": .int(10 << 20)])
        #expect(again == ["mount_path": .string(path)])
        #expect(try admin.fs.stat(path).inode == st.inode)
        #expect(try admin.readFile(path + "/keep") == Array("data".utf8))
    }

    @Test func createVolumeWithoutGroupAndDefaults() async throws {
        let vol = unique("ngvol")
        let path = try await createVolume(nil, vol)
        #expect(path == "/volumes/_nogroup/\(vol)")
        #expect(try admin.fs.stat(path).permissions == 0o755)
        #expect(admin.xattr(path, "ceph.dir.layout.pool_namespace") == "fsvolumens_\(vol)", "namespace isolation is the default")
        #expect(
            admin.xattr(path, "ceph.quota.max_bytes") == nil || admin.xattr(path, "ceph.quota.max_bytes") == "0", "no quota without size")
        #expect(admin.exists("/volumes/_:\(vol).meta"))
        let again = try await v.call("create_volume", ["volume_path": vpath(nil, vol)])
        #expect(again["mount_path"]?.stringValue == path)
    }

    @Test func createVolumeWithoutNamespaceIsolationPinsThePool() async throws {
        let vol = unique("nonsvol")
        let path = try await createVolume(nil, vol, ["namespace_isolated": false, "mode": .int(0o750)])
        #expect(admin.xattr(path, "ceph.dir.layout.pool_namespace") == nil)
        #expect(admin.xattr(path, "ceph.dir.layout.pool") == "cephfs_data", "the pool is pinned on the volume itself")
        #expect(try admin.fs.stat(path).permissions == 0o750)
    }

    @Test func deleteVolumeMovesItToTheTrashAndIsIdempotent() async throws {
        let g = unique("delg")
        let vol = unique("delvol")
        let path = try await createVolume(g, vol)
        try admin.writeFile(path + "/f", randomBytes(1000))
        let inode = try admin.fs.stat(path).inode

        #expect(try await v.call("delete_volume", ["volume_path": vpath(g, vol)]) == .null)
        #expect(!admin.exists(path))
        let trashed = VolumeLayout.trashPath(vol)
        #expect(try admin.fs.stat(trashed).inode == inode, "moved, not copied")
        #expect(admin.exists(trashed + "/f"))
        #expect(!admin.exists(VolumeLayout.volumeMeta(g, vol)), "metadata file removed")

        #expect(try await v.call("delete_volume", ["volume_path": vpath(g, vol)]) == .null, "idempotent")
        #expect(admin.exists(trashed))
        // Never existed at all.
        #expect(try await v.call("delete_volume", ["volume_path": vpath(nil, unique("nodelvol"))]) == .null)
    }

    @Test func purgeVolumeRemovesTheTrashedTreeAndIsIdempotent() async throws {
        let vol = unique("purvol")
        let path = try await createVolume(nil, vol)
        try admin.fs.mkdir(path + "/a", mode: 0o755)
        try admin.fs.mkdir(path + "/a/b", mode: 0o700)
        try admin.fs.mkdir(path + "/a/b/c", mode: 0o755)
        try admin.writeFile(path + "/a/b/c/deep", randomBytes(5000))
        try admin.writeFile(path + "/top", [])
        try admin.fs.symlink(target: "a/b", at: path + "/link")
        try admin.fs.symlink(target: "/nowhere", at: path + "/a/dangling")

        try await v.call("delete_volume", ["volume_path": vpath(nil, vol)])
        #expect(admin.exists(VolumeLayout.trashPath(vol)))
        #expect(try await v.call("purge_volume", ["volume_path": vpath(nil, vol)]) == .null)
        #expect(!admin.exists(VolumeLayout.trashPath(vol)))
        #expect(try await v.call("purge_volume", ["volume_path": vpath(nil, vol)]) == .null, "idempotent")
        #expect(!admin.exists(path))
    }

    @Test func getUsedBytesFollowsWrittenData() async throws {
        let vol = unique("usedvol")
        let path = try await createVolume(nil, vol)
        #expect(try await v.call("get_used_bytes", ["volume_path": vpath(nil, vol)]) == .int(0))
        let n = 3 * 1024 * 1024 + 17
        try admin.writeFile(path + "/data", randomBytes(n))
        try admin.fs.mkdir(path + "/sub")
        try admin.writeFile(path + "/sub/more", randomBytes(1000))

        // rbytes propagates lazily to the volume directory (under CI's load, 30 s was once too short).
        var used: Int64 = -1
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            used = try #require(try await v.call("get_used_bytes", ["volume_path": vpath(nil, vol)]).int64Value)
            if used >= Int64(n + 1000) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(used == Int64(n + 1000))

        let missing = try #require(await v.error("get_used_bytes", ["volume_path": vpath(nil, unique("nousedvol"))]))
        #expect(missing.code == .engineError)
        #expect(missing.errno == 2)
    }

    @Test func setMaxBytesSetsAndRemovesTheQuota() async throws {
        let vol = unique("quotavol")
        let path = try await createVolume(nil, vol, ["size": .int(1 << 20)])
        #expect(admin.xattr(path, "ceph.quota.max_bytes") == String(1 << 20))
        #expect(try await v.call("set_max_bytes", ["volume_path": vpath(nil, vol), "max_bytes": .int(5 << 30)]) == .null)
        #expect(admin.settledXattr(path, "ceph.quota.max_bytes", expecting: String(5 << 30)) == String(5 << 30))
        #expect(try await v.call("set_max_bytes", ["volume_path": vpath(nil, vol), "max_bytes": .null]) == .null)
        let removed = admin.settledXattr(path, "ceph.quota.max_bytes") { $0 == nil || $0 == "0" }
        #expect(removed == nil || removed == "0", "quota removed, got \(removed ?? "nil")")
        // Removing again is fine.
        try await v.call("set_max_bytes", ["volume_path": vpath(nil, vol), "max_bytes": .null])

        await v.expectInvalidParams("set_max_bytes", ["volume_path": vpath(nil, vol)], naming: "max_bytes")
        await v.expectInvalidParams("set_max_bytes", ["volume_path": vpath(nil, vol), "max_bytes": -1], naming: "max_bytes")
        await v.expectInvalidParams("set_max_bytes", ["volume_path": vpath(nil, vol), "max_bytes": "10"], naming: "max_bytes")
        let missing = try #require(await v.error("set_max_bytes", ["volume_path": vpath(nil, unique("noqvol")), "max_bytes": 10]))
        #expect(missing.code == .engineError)
        #expect(missing.errno == 2)
    }

    // MARK: Cluster

    @Test func getMonAddrsMatchesTheMonMap() async throws {
        let r = try await v.call("get_mon_addrs")
        let addrs = try #require(r.arrayValue).compactMap(\.stringValue)
        let dump = try #require(try admin.cluster.monJSON(["prefix": "mon dump"]))
        let expected = try #require(dump["mons"]?.arrayValue).compactMap {
            $0["addr"]?.stringValue?.components(separatedBy: "/").first
        }
        #expect(addrs == expected)
        #expect(!addrs.isEmpty)
        await v.expectInvalidParams("get_mon_addrs", ["x": 1], naming: "x")
    }

    @Test func recoverReturnsNull() async throws {
        #expect(try await v.call("recover") == .null)
        #expect(try await v.call("recover", [:]) == .null)
        await v.expectInvalidParams("recover", ["all": true], naming: "all")
    }

    // MARK: Snapshots

    @Test func volumeSnapshots() async throws {
        let g = unique("sgrp")
        let vol = unique("svol")
        let path = try await createVolume(g, vol)
        try admin.writeFile(path + "/f", Array("before".utf8))
        let snap = unique("snap")
        #expect(try await v.call("create_snapshot_volume", ["volume_path": vpath(g, vol), "snapshot_name": .string(snap)]) == .null)
        let snapPath = path + "/.snap/" + snap
        #expect(try admin.fs.stat(snapPath).isDirectory)
        try admin.writeFile(path + "/f", Array("after".utf8))
        #expect(try admin.readFile(snapPath + "/f") == Array("before".utf8), "the snapshot is frozen")

        let dup = try #require(await v.error("create_snapshot_volume", ["volume_path": vpath(g, vol), "snapshot_name": .string(snap)]))
        #expect(dup.code == .engineError)
        #expect(dup.errno == 17, "\(dup)")

        #expect(try await v.call("destroy_snapshot_volume", ["volume_path": vpath(g, vol), "snapshot_name": .string(snap)]) == .null)
        #expect(!admin.exists(snapPath))
        #expect(
            try await v.call("destroy_snapshot_volume", ["volume_path": vpath(g, vol), "snapshot_name": .string(snap)]) == .null,
            "idempotent")

        // With a mode.
        let snap2 = unique("snapm")
        try await v.call("create_snapshot_volume", ["volume_path": vpath(g, vol), "snapshot_name": .string(snap2), "mode": .int(0o755)])
        #expect(admin.exists(path + "/.snap/" + snap2))
        try await v.call("destroy_snapshot_volume", ["volume_path": vpath(g, vol), "snapshot_name": .string(snap2)])

        let missing = try #require(
            await v.error("create_snapshot_volume", ["volume_path": vpath(g, unique("nosnapvol")), "snapshot_name": "s"]))
        #expect(missing.code == .engineError)
        #expect(missing.errno == 2)
    }

    @Test func groupSnapshots() async throws {
        let g = unique("gsgrp")
        scratch.group(g)
        try await v.call("create_group", ["group_id": .string(g)])
        let vol = unique("gsvol")
        let path = try await createVolume(g, vol)
        try admin.writeFile(path + "/f", Array("x".utf8))
        let snap = unique("gsnap")
        #expect(try await v.call("create_snapshot_group", ["group_id": .string(g), "snapshot_name": .string(snap)]) == .null)
        let snapPath = VolumeLayout.groupPath(g) + "/.snap/" + snap
        #expect(try admin.fs.stat(snapPath).isDirectory)
        #expect(try admin.readFile(snapPath + "/" + vol + "/f") == Array("x".utf8), "the group snapshot covers its volumes")

        #expect(try await v.call("destroy_snapshot_group", ["group_id": .string(g), "snapshot_name": .string(snap)]) == .null)
        #expect(!admin.exists(snapPath))
        #expect(
            try await v.call("destroy_snapshot_group", ["group_id": .string(g), "snapshot_name": .string(snap)]) == .null, "idempotent")

        let missing = try #require(
            await v.error("create_snapshot_group", ["group_id": .string(unique("nosnapgrp")), "snapshot_name": "s"]))
        #expect(missing.code == .engineError)
        #expect(missing.errno == 2)
    }

    /// Destroying a snapshot that does not exist once left the daemon's
    /// CephFS client unable to unmount (an rmdir of a missing `.snap` entry
    /// leaks in libcephfs), so SIGTERM never finished and its session kept
    /// its caps. It must stop promptly, with nothing in flight.
    @Test func stopsPromptlyAfterDestroyingAbsentSnapshots() async throws {
        let instance = "e2e-snapstop-\(UUID().uuidString.prefix(8))"
        let daemon = try DaemonProcess(extraArguments: ["--instance", instance])
        let client = VolumeClient(socketPath: daemon.socketPath, callTimeout: 60)
        let g = unique("stopg")
        let vol = unique("stopv")
        scratch.group(g)
        scratch.volume(g, vol)
        try await client.call("create_volume", params: ["volume_path": vpath(g, vol)])
        #expect(
            try await client.call("destroy_snapshot_volume", params: ["volume_path": vpath(g, vol), "snapshot_name": "absent"]) == .null)
        #expect(try await client.call("destroy_snapshot_group", params: ["group_id": .string(g), "snapshot_name": "absent"]) == .null)
        // And a volume that goes through the trash afterwards.
        try await client.call("delete_volume", params: ["volume_path": vpath(g, vol)])
        try await client.call("purge_volume", params: ["volume_path": vpath(g, vol)])
        client.close()

        kill(daemon.process.processIdentifier, SIGTERM)
        let exited = waitUntil(timeout: 15, interval: 0.1) { !daemon.process.isRunning }
        #expect(exited, "the daemon did not exit within 15 s of SIGTERM: \(daemon.log().suffix(400))")
        if !exited {
            daemon.stop(signal: SIGKILL)
            admin.evictSessions(filters: ["client_metadata.volumed_instance=\(instance)"])
        } else {
            #expect(daemon.process.terminationStatus == 0)
        }
    }

    // MARK: Clone

    /// A tree as seen through the admin mount: relative path → description.
    enum Node: Equatable, CustomStringConvertible {
        case dir(mode: UInt32)
        case file(mode: UInt32, size: Int, digest: [UInt8])
        case symlink(target: String)

        var description: String {
            switch self {
            case .dir(let m): "dir \(String(m, radix: 8))"
            case .file(let m, let s, _): "file \(String(m, radix: 8)) \(s) bytes"
            case .symlink(let t): "symlink -> \(t)"
            }
        }
    }

    func tree(_ root: String) throws -> [String: Node] {
        var out: [String: Node] = [:]
        func walk(_ rel: String) throws {
            let dir = rel.isEmpty ? root : root + "/" + rel
            for e in try admin.fs.listDirectory(dir) {
                let r = rel.isEmpty ? e.name : rel + "/" + e.name
                let p = root + "/" + r
                let st = try admin.fs.stat(p, followSymlinks: false)
                if st.isDirectory {
                    out[r] = .dir(mode: st.permissions)
                    try walk(r)
                } else if st.isSymlink {
                    out[r] = .symlink(target: try admin.fs.readlink(p))
                } else {
                    let bytes = try admin.readFile(p)
                    // Keep the whole content: the comparison is byte for byte.
                    out[r] = .file(mode: st.permissions, size: bytes.count, digest: bytes)
                }
            }
        }
        try walk("")
        return out
    }

    @Test func cloneVolumeToExistingCopiesASnapshotExactly() async throws {
        let g = unique("clg")
        let src = unique("clsrc")
        let dst = unique("cldst")
        let srcPath = try await createVolume(g, src)
        let dstPath = try await createVolume(g, dst)

        let fs = admin.fs
        try fs.mkdir(srcPath + "/dir", mode: 0o755)
        try fs.mkdir(srcPath + "/dir/private", mode: 0o700)
        try fs.mkdir(srcPath + "/dir/private/deeper", mode: 0o750)
        try fs.mkdir(srcPath + "/empty", mode: 0o711)
        try fs.chmod(srcPath + "/dir/private", mode: 0o700)
        try fs.chmod(srcPath + "/dir/private/deeper", mode: 0o750)
        try fs.chmod(srcPath + "/empty", mode: 0o711)
        try admin.writeFile(srcPath + "/empty-file", [], mode: 0o600)
        try admin.writeFile(srcPath + "/one", [0], mode: 0o644)
        try admin.writeFile(srcPath + "/dir/page", randomBytes(4096), mode: 0o640)
        try admin.writeFile(srcPath + "/dir/private/exact-chunk", randomBytes(4 << 20), mode: 0o600)
        try admin.writeFile(srcPath + "/dir/private/deeper/big", randomBytes((9 << 20) + 12345), mode: 0o755)
        try admin.writeFile(srcPath + "/dir/private/deeper/script", Array("#!/bin/sh\necho hi\n".utf8), mode: 0o700)
        try fs.symlink(target: "dir/page", at: srcPath + "/link-rel")
        try fs.symlink(target: "/absolute/nowhere", at: srcPath + "/dir/link-dangling")
        try fs.symlink(target: "private", at: srcPath + "/dir/link-to-dir")

        let snap = unique("clsnap")
        try await v.call("create_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])
        // Changes after the snapshot must not be cloned.
        try admin.writeFile(srcPath + "/after-snapshot", Array("late".utf8))
        try admin.writeFile(srcPath + "/one", [1, 2, 3], mode: 0o644)

        let expected = try tree(srcPath + "/.snap/" + snap)
        #expect(expected.count == 13, "\(expected.keys.sorted())")

        #expect(
            try await v.call(
                "clone_volume_to_existing",
                ["dest_volume_path": vpath(g, dst), "src_volume_path": vpath(g, src), "src_snapshot_name": .string(snap)]) == .null)

        let cloned = try tree(dstPath)
        #expect(Set(cloned.keys) == Set(expected.keys))
        for (path, node) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(cloned[path] == node, "\(path): expected \(node), got \(cloned[path].map { "\($0)" } ?? "nothing")")
        }
        #expect(cloned["after-snapshot"] == nil)
        if case .file(_, let size, _)? = cloned["dir/private/deeper/big"] { #expect(size == (9 << 20) + 12345) }

        // Cloning the same snapshot again overwrites in place.
        try await v.call(
            "clone_volume_to_existing",
            ["dest_volume_path": vpath(g, dst), "src_volume_path": vpath(g, src), "src_snapshot_name": .string(snap)])
        #expect(try tree(dstPath) == expected)

        try await v.call("destroy_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])
    }

    @Test func cloneFromAMissingSnapshotIsObjectNotFound() async throws {
        let src = unique("cmsrc")
        let dst = unique("cmdst")
        try await createVolume(nil, src)
        let dstPath = try await createVolume(nil, dst)
        let e = try #require(
            await v.error(
                "clone_volume_to_existing",
                ["dest_volume_path": vpath(nil, dst), "src_volume_path": vpath(nil, src), "src_snapshot_name": "nosuchsnap"]))
        #expect(e.code == .engineError)
        #expect(e.engineType == .objectNotFound)
        #expect(e.errno == 2)
        #expect(try admin.fs.listDirectory(dstPath).isEmpty)

        // A missing destination too.
        let snap = unique("cms")
        try await v.call("create_snapshot_volume", ["volume_path": vpath(nil, src), "snapshot_name": .string(snap)])
        let e2 = try #require(
            await v.error(
                "clone_volume_to_existing",
                ["dest_volume_path": vpath(nil, unique("cmnodst")), "src_volume_path": vpath(nil, src), "src_snapshot_name": .string(snap)])
        )
        #expect(e2.engineType == .objectNotFound)
        try await v.call("destroy_snapshot_volume", ["volume_path": vpath(nil, src), "snapshot_name": .string(snap)])
    }

    // MARK: Objects

    static let pool = "cephfs_data"

    func obj(_ name: String, _ extra: [String: JSONValue] = [:]) -> JSONValue {
        var o: [String: JSONValue] = ["pool_name": .string(Self.pool), "object_name": .string(name)]
        o.merge(extra) { _, new in new }
        return .object(o)
    }

    @Test func objectRoundTripWithBinaryData() async throws {
        let name = unique("e2e-obj")
        defer { _ = try? admin.cluster.ioContext(pool: Self.pool).remove(name) }
        var data: [UInt8] = [0, 0, 1, 0, 255, 254, 0x0A, 0x0D, 0x22, 0x5C, 0]
        data += randomBytes(70_000)
        data += [0, 0, 0]
        #expect(try await v.call("put_object", obj(name, ["data": .string(Base64.encode(data))])) == .null)
        let got = try #require(try await v.call("get_object", obj(name)).stringValue)
        #expect(Base64.decode(got) == data)
        #expect(got == Base64.encode(data), "canonical base64 on the wire")
        // The object holds exactly those bytes.
        let io = try admin.cluster.ioContext(pool: Self.pool)
        defer { io.close() }
        #expect(try io.read(name, maxLength: 1 << 20) == data)

        // Overwrite with something shorter, then with nothing.
        try await v.call("put_object", obj(name, ["data": .string(Base64.encode([0]))]))
        #expect(try await v.call("get_object", obj(name)) == .string(Base64.encode([0])))
        try await v.call("put_object", obj(name, ["data": ""]))
        #expect(try await v.call("get_object", obj(name)) == "")
    }

    @Test func missingObjectsAndIdempotentDelete() async throws {
        let name = unique("e2e-missing")
        let e = try #require(await v.error("get_object", obj(name)))
        #expect(e.code == .engineError)
        #expect(e.engineType == .objectNotFound)
        #expect(e.errno == 2)
        #expect(e.errnoName == "ENOENT")
        let e2 = try #require(await v.error("get_object_and_version", obj(name)))
        #expect(e2.engineType == .objectNotFound)

        try await v.call("put_object", obj(name, ["data": .string(Base64.encode([1, 2, 3]))]))
        #expect(try await v.call("delete_object", obj(name)) == .null)
        #expect(await v.error("get_object", obj(name))?.engineType == .objectNotFound)
        #expect(try await v.call("delete_object", obj(name)) == .null, "idempotent")

        // A pool that does not exist.
        let p = try #require(await v.error("get_object", ["pool_name": .string(unique("nopool")), "object_name": "x"]))
        #expect(p.code == .engineError)
        #expect(p.errno == 2)
    }

    @Test func versionedPuts() async throws {
        let name = unique("e2e-ver")
        defer { _ = try? admin.cluster.ioContext(pool: Self.pool).remove(name) }
        try await v.call("put_object", obj(name, ["data": .string(Base64.encode(Array("v1".utf8)))]))
        let first = try await v.call("get_object_and_version", obj(name))
        #expect(Set(try #require(first.objectValue).keys) == ["data", "version"])
        #expect(first["data"] == .string(Base64.encode(Array("v1".utf8))))
        let version = try #require(first["version"]?.int64Value)
        #expect(version > 0)

        // With the current version: accepted.
        #expect(
            try await v.call(
                "put_object_versioned", obj(name, ["data": .string(Base64.encode(Array("v2".utf8))), "version": .int(version)])) == .null)
        let second = try await v.call("get_object_and_version", obj(name))
        #expect(second["data"] == .string(Base64.encode(Array("v2".utf8))))
        let version2 = try #require(second["version"]?.int64Value)
        #expect(version2 > version)

        // With the stale version: refused, and the object is unchanged.
        let stale = try #require(
            await v.error(
                "put_object_versioned", obj(name, ["data": .string(Base64.encode(Array("v3".utf8))), "version": .int(version)])))
        #expect(stale.code == .engineError)
        #expect(stale.errno != nil, "\(stale)")
        #expect(try await v.call("get_object", obj(name)) == .string(Base64.encode(Array("v2".utf8))))

        // A null version is an unconditional put.
        try await v.call("put_object_versioned", obj(name, ["data": .string(Base64.encode(Array("v4".utf8))), "version": .null]))
        #expect(try await v.call("get_object", obj(name)) == .string(Base64.encode(Array("v4".utf8))))
        try await v.call("put_object_versioned", obj(name, ["data": .string(Base64.encode(Array("v5".utf8)))]))
        #expect(try await v.call("get_object", obj(name)) == .string(Base64.encode(Array("v5".utf8))))
    }

    @Test func objectParamsAreChecked() async throws {
        let name = unique("e2e-bad")
        await v.expectInvalidParams("put_object", obj(name, ["data": "not base64!!"]), naming: "data")
        await v.expectInvalidParams("put_object_versioned", obj(name, ["data": "@@@@", "version": 1]), naming: "data")
        await v.expectInvalidParams("put_object", obj(name), naming: "data")
        await v.expectInvalidParams("put_object", ["pool_name": "", "object_name": "x", "data": ""], naming: "pool_name")
        await v.expectInvalidParams("get_object", ["pool_name": .string(Self.pool), "object_name": ""], naming: "object_name")
        await v.expectInvalidParams("put_object_versioned", obj(name, ["data": "", "version": -1]), naming: "version")
        await v.expectInvalidParams("put_object_versioned", obj(name, ["data": "", "version": "1"]), naming: "version")
        // Nothing was written by the refused calls.
        #expect(await v.error("get_object", obj(name))?.engineType == .objectNotFound)
    }
}
