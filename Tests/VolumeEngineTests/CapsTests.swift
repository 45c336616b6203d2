import Testing

@testable import VolumeEngine

@Suite("Caps")
struct CapsTests {
    let rw = VolumeCaps(path: "/volumes/g/v", pool: "data", namespace: "fsvolumens_v", readonly: false)
    let r = VolumeCaps(path: "/volumes/g/v", pool: "data", namespace: "fsvolumens_v", readonly: true)

    @Test func volumeCapsText() {
        #expect(rw.mds == "allow rw path=/volumes/g/v")
        #expect(rw.osd == "allow rw pool=data namespace=fsvolumens_v")
        #expect(r.osd == "allow r pool=data namespace=fsvolumens_v")
        #expect(VolumeCaps(path: "/p", pool: "data", namespace: nil, readonly: false).osd == "allow rw pool=data")
    }

    @Test func grantAddsWithoutDuplicatesAndKeepsOthers() {
        let existing = ["mds": "allow r path=/other", "osd": "allow r pool=x", "mon": "allow rw", "mgr": "allow r"]
        let caps = Caps.grant(existing: existing, want: rw, unwanted: r)
        #expect(caps["mds"] == "allow r path=/other,allow rw path=/volumes/g/v")
        #expect(caps["osd"] == "allow r pool=x,allow rw pool=data namespace=fsvolumens_v")
        #expect(caps["mon"] == "allow rw")
        #expect(caps["mgr"] == "allow r")
        #expect(Caps.grant(existing: caps, want: rw, unwanted: r) == caps)
    }

    @Test func grantSwapsAccessLevel() {
        let granted = Caps.grant(existing: [:], want: r, unwanted: rw)
        let swapped = Caps.grant(existing: granted, want: rw, unwanted: r)
        #expect(swapped["mds"] == rw.mds)
        #expect(swapped["osd"] == rw.osd)
        #expect(swapped["mon"] == "allow r")
    }

    @Test func grantToPartialCapsIsValid() {
        // v6 builds ",allow rw ..." here, which the mon rejects.
        let caps = Caps.grant(existing: ["mds": "allow rw path=/x", "mon": "allow r"], want: rw, unwanted: r)
        #expect(caps["osd"] == rw.osd)
        #expect(!(caps["osd"] ?? "").hasPrefix(","))
        let noMds = Caps.grant(existing: ["osd": "allow r pool=y"], want: rw, unwanted: r)
        #expect(noMds["mds"] == rw.mds)
    }

    @Test func revokeRemovesOnlyOurs() {
        let existing = [
            "mds": "allow rw path=/volumes/g/v, allow r path=/other",
            "osd": "allow rw pool=data namespace=fsvolumens_v,allow r pool=x",
            "mon": "allow rw", "mgr": "allow r",
        ]
        let caps = Caps.revoke(existing: existing, mds: [rw.mds, r.mds], osd: [rw.osd, r.osd])
        #expect(caps == ["mds": "allow r path=/other", "osd": "allow r pool=x", "mon": "allow rw", "mgr": "allow r"])
    }

    @Test func revokeDeletesOnlyWhenNothingButMonAllowRRemains() {
        let ours = ["mds": rw.mds, "osd": rw.osd, "mon": "allow r"]
        #expect(Caps.revoke(existing: ours, mds: [rw.mds], osd: [rw.osd]) == nil)
        var withMgr = ours
        withMgr["mgr"] = "allow r"
        #expect(Caps.revoke(existing: withMgr, mds: [rw.mds], osd: [rw.osd]) == ["mon": "allow r", "mgr": "allow r"])
        var otherMon = ours
        otherMon["mon"] = "allow rw"
        #expect(Caps.revoke(existing: otherMon, mds: [rw.mds], osd: [rw.osd]) == ["mon": "allow rw"])
    }

    @Test func commandListIsStable() {
        #expect(Caps.commandList(["mon": "allow r", "zz": "x", "osd": "o", "mds": "m"]) == ["mds", "m", "osd", "o", "mon", "allow r", "zz", "x"])
    }
}

@Suite("Identifiers")
struct IdentifierTests {
    @Test(arguments: ["", ".", "..", "a/b", "/", "a\u{0}b", "_x", "$x", ".x", "x.meta", "a b", "ü", "a:b", String(repeating: "a", count: 250)])
    func rejects(_ name: String) {
        #expect(throws: InvalidIdentifier.self) { try Identifier.validateAuthID(name) }
    }

    @Test(arguments: ["alice", "a", "A-1_b.c", "share-4a7e", String(repeating: "a", count: 249), "x.metadata"])
    func accepts(_ name: String) throws {
        try Identifier.validateAuthID(name)
    }

    @Test func errorsNameTheField() {
        do {
            _ = try VolumePath(groupID: "ok", volumeID: "_bad", field: "dest_volume_path")
            Issue.record("expected a failure")
        } catch {
            #expect(error.field == "dest_volume_path.volume_id")
        }
    }

    @Test func groupNoneIsReserved() {
        #expect(throws: InvalidIdentifier.self) { try Identifier.validateGroupID("None") }
    }

    @Test func volumePathLengthKeepsMetadataNamesShort() throws {
        _ = try VolumePath(groupID: String(repeating: "g", count: 124), volumeID: String(repeating: "v", count: 124))
        #expect(throws: InvalidIdentifier.self) {
            try VolumePath(groupID: String(repeating: "g", count: 125), volumeID: String(repeating: "v", count: 124))
        }
    }

    @Test func metadataKeysRoundTrip() throws {
        let v = try VolumePath(groupID: nil, volumeID: "vol")
        #expect(v.description == "None/vol")
        #expect(VolumePath(metadataKey: "None/vol") == v)
        #expect(VolumePath(metadataKey: "g/v") == (try VolumePath(groupID: "g", volumeID: "v")))
        #expect(VolumePath(metadataKey: "g/v/w") == nil)
        #expect(Layout.authID(fromFileName: "$alice.meta") == "alice")
        #expect(Layout.authID(fromFileName: "_g:v.meta") == nil)
    }
}
