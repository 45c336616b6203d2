import Ceph
import Foundation
import JSONValue
import TestSupport
import Testing

extension FaultTests {
    /// The checker itself: silent on a consistent state, and it catches each
    /// kind of damage the fault tests look for (a negative control, so a
    /// passing fault test means something).
    @Suite("Invariant checker", .serialized, .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    struct InvariantCheckerTests {
        @Test("reports dirty flags, disagreements, orphans and unparsable metadata")
        func checkerCatchesDamage() throws {
            let run = tag()
            let scratch = Scratch()
            let vol = VolumeRef(nil, "fault-ic-\(run)")
            let id = "fault-ic-\(run)"
            scratch.volume(nil, vol.volume)
            scratch.authID(id)
            let daemon = try VolumedProcess(instance: "fault-ic-\(run)")
            let s = try RPCSession(socket: daemon.socketPath)
            try s.require("create_volume", ["volume_path": vp(vol)])
            try s.require("authorize", authorizeParams(vol, id))
            let admin = ClusterAdmin.shared
            let checker = sharedChecker()
            #expect(checker.check(authIDs: [id], volumes: [vol]) == [], "a fresh grant is consistent")
            #expect(checker.grants(authIDs: [id], volumes: [vol]) == [Grant(id, vol): "rw"])

            let authPath = "/volumes/$\(id).meta"
            let volumePath = vol.metadataPath()
            let authBytes = try admin.readFile(authPath)
            let volumeBytes = try admin.readFile(volumePath)
            let entity = try #require(try admin.authGet(id))

            func expectCaught(_ tag: String, _ what: String, _ damage: () throws -> Void, restore: () throws -> Void) throws {
                try damage()
                let v = checker.check(authIDs: [id], volumes: [vol])
                #expect(v.contains { $0.hasPrefix(tag) }, "\(what): expected a \(tag) violation, got \(v)")
                try restore()
                #expect(checker.check(authIDs: [id], volumes: [vol]) == [], "\(what): restored")
            }
            func withObject(_ bytes: [UInt8], _ edit: (inout [String: JSONValue]) -> Void) throws -> [UInt8] {
                var o = try #require(try JSONValue.parse(bytes).objectValue)
                edit(&o)
                return Array(JSONValue.object(o).description.utf8) + Array(repeating: 0x20, count: 100)
            }

            try expectCaught("(a)", "dirty auth metadata") {
                try admin.writeFile(authPath, try withObject(authBytes) { $0["dirty"] = true })
            } restore: {
                try admin.writeFile(authPath, authBytes)
            }
            try expectCaught("(a)", "dirty volume entry") {
                try admin.writeFile(
                    volumePath, try withObject(volumeBytes) { $0["auths"] = .object([id: ["access_level": "rw", "dirty": true]]) })
            } restore: {
                try admin.writeFile(volumePath, volumeBytes)
            }
            try expectCaught("(b)", "caps at another level than the metadata") {
                var caps = entity.caps
                caps["mds"] = "allow r path=\(vol.path())"
                try admin.authSetCaps(id, caps: caps)
            } restore: {
                try admin.authSetCaps(id, caps: entity.caps)
            }
            try expectCaught("(b)", "osd cap missing") {
                var caps = entity.caps
                caps["osd"] = nil
                try admin.authSetCaps(id, caps: caps)
            } restore: {
                try admin.authSetCaps(id, caps: entity.caps)
            }
            try expectCaught("(b)", "grant without its volume metadata entry (orphan)") {
                try admin.writeFile(volumePath, try withObject(volumeBytes) { $0["auths"] = [:] })
            } restore: {
                try admin.writeFile(volumePath, volumeBytes)
            }
            try expectCaught("(c)", "volume caps without auth metadata") {
                try admin.fs.unlink(authPath)
            } restore: {
                try admin.writeFile(authPath, authBytes, mode: 0o755)
            }
            try expectCaught("(d)", "unparsable metadata") {
                try admin.writeFile(authPath, Array("{\"dirty\": fa".utf8))
            } restore: {
                try admin.writeFile(authPath, authBytes)
            }
            try expectCaught("(d)", "empty auth metadata") {
                try admin.writeFile(authPath, [])
            } restore: {
                try admin.writeFile(authPath, authBytes)
            }

            try s.require("deauthorize", deauthorizeParams(vol, id))
            #expect(checker.check(authIDs: [id], volumes: [vol]) == [], "after deauthorize")
            #expect(checker.grants(authIDs: [id], volumes: [vol]).isEmpty)
            #expect(daemon.stop()?.status == 0)
        }
    }
}
