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

/// clone_volume_to_existing against a destination whose tenant planted links
/// (issue 12, item 1; the CVE-2022-0670 class): the copy must never follow a
/// link, nor write through anything that already sits in the destination.
@Suite("clone safety", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
struct CloneSafetyTests {
    static let volumed = Volumed()
    var v: Volumed { Self.volumed }
    var admin: ClusterAdmin { ClusterAdmin.shared }
    let scratch = Scratch()

    @discardableResult
    func createVolume(_ g: String?, _ vol: String) async throws -> String {
        scratch.volume(g, vol)
        if let g { scratch.group(g) }
        return try #require(try await v.call("create_volume", ["volume_path": vpath(g, vol)])["mount_path"]?.stringValue)
    }

    /// Authorizes `id` for a tenant and writes its keyring, so a GuestMount can use it.
    func authorizeGuest(_ g: String?, _ vol: String, _ id: String, tenant: String) async throws {
        scratch.authID(id)
        let r = try await v.call(
            "authorize", ["volume_path": vpath(g, vol), "auth_id": .string(id), "tenant_id": .string(tenant)])
        try GuestMount.writeKeyring(id: id, key: try #require(r["auth_key"]?.stringValue))
    }

    func write(_ fs: CephFSMount, _ path: String, _ bytes: [UInt8], mode: UInt32 = 0o644) throws {
        let f = try fs.open(path, flags: O_CREAT | O_WRONLY | O_TRUNC, mode: mode)
        defer { f.close() }
        try f.write(bytes, offset: 0)
        try f.fsync()
        try fs.chmod(path, mode: mode)
    }

    func clone(_ g: String?, from src: String, _ snap: String, to dst: String) async throws {
        try await v.call(
            "clone_volume_to_existing",
            ["dest_volume_path": vpath(g, dst), "src_volume_path": vpath(g, src), "src_snapshot_name": .string(snap)])
    }

    /// A tree through the admin mount, links not followed: relative path → description.
    func tree(_ root: String) throws -> [String: String] {
        var out: [String: String] = [:]
        func walk(_ rel: String) throws {
            for e in try admin.fs.listDirectory(rel.isEmpty ? root : root + "/" + rel) {
                let r = rel.isEmpty ? e.name : rel + "/" + e.name
                let p = root + "/" + r
                let st = try admin.fs.stat(p, followSymlinks: false)
                let mode = String(st.permissions, radix: 8)
                if st.isDirectory {
                    out[r] = "dir \(mode)"
                    try walk(r)
                } else if st.isSymlink {
                    out[r] = "symlink -> \(try admin.fs.readlink(p))"
                } else {
                    out[r] = "file \(mode) \(String(decoding: try admin.readFile(p), as: UTF8.self))"
                }
            }
        }
        try walk("")
        return out
    }

    /// The victim's state, as the attack would change it.
    struct Victim: Equatable {
        let tree: [String: String]
        let rootMode: UInt32
    }

    func victimState(_ path: String) throws -> Victim {
        Victim(tree: try tree(path), rootMode: try admin.fs.stat(path).permissions)
    }

    /// The tenant of the destination plants links to another tenant's volume,
    /// to a file in it, and to that tenant's auth metadata, then an operator
    /// clones some snapshot into the destination.
    @Test func cloneNeverFollowsLinksPlantedInTheDestination() async throws {
        let g = unique("csg")
        let victim = unique("csvic")
        let src = unique("cssrc")
        let dst = unique("csdst")
        let victimPath = try await createVolume(g, victim)
        let srcPath = try await createVolume(g, src)
        let dstPath = try await createVolume(g, dst)

        // The victim: a secret, a private root, and an auth ID with metadata.
        try admin.writeFile(victimPath + "/secret.txt", Array("the victim's secret\n".utf8), mode: 0o600)
        try admin.fs.chmod(victimPath, mode: 0o700)
        let victimID = unique("csvid")
        try await authorizeGuest(g, victim, victimID, tenant: "victim")
        let victimMeta = VolumeLayout.authMeta(victimID)
        let metaBefore = try admin.readFile(victimMeta)
        let before = try victimState(victimPath)

        // The source snapshot: names that meet the planted links.
        let fs = admin.fs
        try fs.mkdir(srcPath + "/a", mode: 0o777)
        try fs.chmod(srcPath + "/a", mode: 0o777)
        try admin.writeFile(srcPath + "/a/secret.txt", Array("written through a/\n".utf8), mode: 0o666)
        try admin.writeFile(srcPath + "/leak", Array("written through leak\n".utf8), mode: 0o666)
        try admin.writeFile(srcPath + "/meta", Array("{\"dirty\": true, \"subvolumes\": {}}".utf8), mode: 0o644)
        try fs.mkdir(srcPath + "/dir", mode: 0o755)
        try fs.mkdir(srcPath + "/dir/sub", mode: 0o777)
        try fs.chmod(srcPath + "/dir/sub", mode: 0o777)
        try admin.writeFile(srcPath + "/dir/sub/secret.txt", Array("written through dir/sub/\n".utf8), mode: 0o666)
        try fs.symlink(target: "a", at: srcPath + "/link")
        let snap = unique("cssnap")
        try await v.call("create_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])
        let expected = try tree(srcPath + "/.snap/" + snap)

        // The destination's tenant plants the links through its own mount.
        let attacker = unique("csatk")
        try await authorizeGuest(g, dst, attacker, tenant: "attacker")
        let guest = try GuestMount(id: attacker, root: dstPath)
        do {
            defer { guest.dispose() }
            try guest.fs.symlink(target: victimPath, at: "/a")
            try guest.fs.symlink(target: victimPath + "/secret.txt", at: "/leak")
            try guest.fs.symlink(target: victimMeta, at: "/meta")
            try guest.fs.mkdir("/dir", mode: 0o755)
            try guest.fs.symlink(target: victimPath, at: "/dir/sub")
            try guest.fs.symlink(target: victimPath, at: "/link")
        }

        try await clone(g, from: src, snap, to: dst)

        #expect(try victimState(victimPath) == before, "the victim's volume changed")
        #expect(try admin.readFile(victimMeta) == metaBefore, "the victim's auth metadata changed")
        // The destination holds real copies where the links were.
        let cloned = try tree(dstPath)
        for (path, node) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(cloned[path] == node, "\(path): expected \(node), got \(cloned[path] ?? "nothing")")
        }
        #expect(Set(cloned.keys) == Set(expected.keys))

        try await v.call("destroy_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])
    }

    /// One tenant owning source and destination is enough: it writes forged
    /// auth metadata into its source, snapshots it, plants a link to its own
    /// `$<id>.meta` in the destination, and has the snapshot cloned. Before
    /// the fix the clone wrote the forgery, and `recover` then granted the
    /// tenant mds caps on the victim's path.
    @Test func oneTenantCannotForgeItsAuthMetadataThroughAClone() async throws {
        let g = unique("ctg")
        let victim = unique("ctvic")
        let src = unique("ctsrc")
        let dst = unique("ctdst")
        let victimPath = try await createVolume(g, victim)
        let srcPath = try await createVolume(g, src)
        let dstPath = try await createVolume(g, dst)
        try admin.writeFile(victimPath + "/secret.txt", Array("the victim's secret\n".utf8), mode: 0o600)
        try admin.fs.chmod(victimPath, mode: 0o700)
        // The victim's own guest, so the victim volume has metadata.
        try await authorizeGuest(g, victim, unique("ctvid"), tenant: "victim")
        let before = try victimState(victimPath)

        let id = unique("cttnt")
        try await authorizeGuest(g, src, id, tenant: "tenant")
        try await authorizeGuest(g, dst, id, tenant: "tenant")
        let meta = VolumeLayout.authMeta(id)
        let metaBefore = try admin.readFile(meta)
        let capsBefore = try #require(try admin.authGet(id)).caps

        // The forgery: a dirty grant of the victim's volume, which recover would finish.
        var forged = try #require(try JSONValue.parse(metaBefore).objectValue)
        var subvolumes = forged["subvolumes"]?.objectValue ?? [:]
        subvolumes["\(g)/\(victim)"] = ["access_level": "rw", "dirty": true]
        forged["subvolumes"] = .object(subvolumes)
        forged["dirty"] = true
        let forgedBytes = JSONValue.object(forged).serialized()
        // And the victim volume's side of that grant, which recover checks.
        let victimVolumeMeta = VolumeLayout.volumeMeta(g, victim)
        let volumeMetaBefore = try admin.readFile(victimVolumeMeta)
        var forgedVolume = try #require(try JSONValue.parse(volumeMetaBefore).objectValue)
        var auths = forgedVolume["auths"]?.objectValue ?? [:]
        auths[id] = ["access_level": "rw", "dirty": true]
        forgedVolume["auths"] = .object(auths)
        let forgedVolumeBytes = JSONValue.object(forgedVolume).serialized()

        let srcGuest = try GuestMount(id: id, root: srcPath)
        do {
            defer { srcGuest.dispose() }
            try write(srcGuest.fs, "/m", forgedBytes)
            try write(srcGuest.fs, "/vm", forgedVolumeBytes)
            try srcGuest.fs.mkdir("/a", mode: 0o777)
            try srcGuest.fs.chmod("/a", mode: 0o777)
            try write(srcGuest.fs, "/a/secret.txt", Array("mine now\n".utf8), mode: 0o666)
        }
        let snap = unique("ctsnap")
        try await v.call("create_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])

        let dstGuest = try GuestMount(id: id, root: dstPath)
        do {
            defer { dstGuest.dispose() }
            try dstGuest.fs.symlink(target: meta, at: "/m")
            try dstGuest.fs.symlink(target: victimVolumeMeta, at: "/vm")
            try dstGuest.fs.symlink(target: victimPath, at: "/a")
        }

        try await clone(g, from: src, snap, to: dst)
        #expect(try admin.readFile(meta) == metaBefore, "the clone rewrote the tenant's auth metadata")
        #expect(try admin.readFile(victimVolumeMeta) == volumeMetaBefore, "the clone rewrote the victim's volume metadata")
        #expect(try victimState(victimPath) == before, "the victim's volume changed")
        #expect(try admin.readFile(dstPath + "/m") == forgedBytes, "the forgery is only a file in the destination")
        #expect(try admin.fs.stat(dstPath + "/a", followSymlinks: false).isDirectory)

        try await v.call("recover")
        let capsAfter = try #require(try admin.authGet(id)).caps
        #expect(capsAfter == capsBefore)
        #expect(try await v.call("get_authorized_ids", ["volume_path": vpath(g, victim)]).arrayValue?.count == 1)
        #expect(!(capsAfter["mds"] ?? "").contains(victimPath), "the tenant gained caps on the victim: \(capsAfter)")

        try await v.call("destroy_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])
    }

    /// What already sits in the destination: a real directory is reused (its
    /// mode set, its other entries kept); a file is replaced by a new inode,
    /// never written through (a hard link to it keeps the old bytes); a
    /// directory where the snapshot has a file is refused, not followed or removed.
    @Test func existingEntriesAreReplacedOrRefusedNeverWrittenThrough() async throws {
        let g = unique("ceg")
        let src = unique("cesrc")
        let dst = unique("cedst")
        let dst2 = unique("cedst2")
        let srcPath = try await createVolume(g, src)
        let dstPath = try await createVolume(g, dst)
        let dst2Path = try await createVolume(g, dst2)
        let fs = admin.fs
        try fs.mkdir(srcPath + "/d", mode: 0o755)
        try fs.chmod(srcPath + "/d", mode: 0o755)
        try admin.writeFile(srcPath + "/d/f", Array("new f\n".utf8), mode: 0o640)
        try admin.writeFile(srcPath + "/blocker", Array("a file\n".utf8))
        let snap = unique("cesnap")
        try await v.call("create_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])

        // dst: a real directory, with an extra entry, and a file that has a hard link.
        try fs.mkdir(dstPath + "/d", mode: 0o700)
        try fs.chmod(dstPath + "/d", mode: 0o700)
        try admin.writeFile(dstPath + "/d/extra", Array("kept\n".utf8))
        try admin.writeFile(dstPath + "/d/f", Array("old f\n".utf8), mode: 0o600)
        try fs.link(dstPath + "/d/f", to: dstPath + "/hardlink")
        try await clone(g, from: src, snap, to: dst)
        #expect(
            try tree(dstPath) == [
                "d": "dir 755", "d/extra": "file 644 kept\n", "d/f": "file 640 new f\n",
                "hardlink": "file 600 old f\n", "blocker": "file 644 a file\n",
            ])

        // dst2: a directory where the snapshot has a file.
        try fs.mkdir(dst2Path + "/blocker", mode: 0o755)
        try admin.writeFile(dst2Path + "/blocker/inside", Array("tenant data\n".utf8))
        let e = try #require(
            await v.error(
                "clone_volume_to_existing",
                ["dest_volume_path": vpath(g, dst2), "src_volume_path": vpath(g, src), "src_snapshot_name": .string(snap)]))
        #expect(e.engineType == .clusterError)
        #expect(e.errnoName == "EISDIR")
        #expect(try admin.readFile(dst2Path + "/blocker/inside") == Array("tenant data\n".utf8))

        try await v.call("destroy_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])
    }

    /// A client with another `client_snapdir` can make a real entry named
    /// `.snap`. Copied by name, it would land in the destination's snapshot
    /// directory, making snapshots there; the copy skips it.
    @Test func anEntryNamedLikeTheSnapshotDirectoryIsSkipped() async throws {
        let g = unique("cxg")
        let src = unique("cxsrc")
        let dst = unique("cxdst")
        let srcPath = try await createVolume(g, src)
        let dstPath = try await createVolume(g, dst)
        var options = TestCluster.options()
        options.extraConfig = [("client_snapdir", ".altsnap")]
        let cluster = try RadosCluster(options)
        defer { cluster.shutdown() }
        let other = try CephFSMount(cluster: cluster)
        defer { other.close() }
        try other.mount(fsName: TestCluster.environment!.fsName)
        try other.mkdir(srcPath + "/.snap", mode: 0o755)
        try other.mkdir(srcPath + "/.snap/planted", mode: 0o755)
        try write(other, srcPath + "/.snap/planted/f", Array("x".utf8))
        try write(other, srcPath + "/plain", Array("plain\n".utf8))

        let snap = unique("cxsnap")
        try await v.call("create_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])
        try await clone(g, from: src, snap, to: dst)
        #expect(try admin.fs.listDirectory(dstPath + "/.snap").isEmpty, "the clone made snapshots in the destination")
        #expect(try tree(dstPath) == ["plain": "file 644 plain\n"])

        try await v.call("destroy_snapshot_volume", ["volume_path": vpath(g, src), "snapshot_name": .string(snap)])
        try? other.unlink(srcPath + "/.snap/planted/f")
        try? other.rmdir(srcPath + "/.snap/planted")
        try? other.rmdir(srcPath + "/.snap")
    }
}
