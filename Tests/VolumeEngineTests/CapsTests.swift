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
        let caps = Caps.revoke(existing: existing, grants: [r, rw])
        #expect(caps == ["mds": "allow r path=/other", "osd": "allow r pool=x", "mon": "allow rw", "mgr": "allow r"])
    }

    @Test func revokeDeletesOnlyWhenNothingButMonAllowRRemains() {
        let ours = ["mds": rw.mds, "osd": rw.osd, "mon": "allow r"]
        #expect(Caps.revoke(existing: ours, grants: [rw]) == nil)
        var withMgr = ours
        withMgr["mgr"] = "allow r"
        #expect(Caps.revoke(existing: withMgr, grants: [rw]) == ["mon": "allow r", "mgr": "allow r"])
        var otherMon = ours
        otherMon["mon"] = "allow rw"
        #expect(Caps.revoke(existing: otherMon, grants: [rw]) == ["mon": "allow rw"])
    }

    /// Volumes without namespace isolation in one pool share the osd cap text;
    /// each grant holds its own copy, as the Python client does.
    let pooled1 = VolumeCaps(path: "/volumes/g/p1", pool: "data", namespace: nil, readonly: false)
    let pooled2 = VolumeCaps(path: "/volumes/g/p2", pool: "data", namespace: nil, readonly: false)
    let pooled2r = VolumeCaps(path: "/volumes/g/p2", pool: "data", namespace: nil, readonly: true)
    let pooled2rw = VolumeCaps(path: "/volumes/g/p2", pool: "data", namespace: nil, readonly: false)

    @Test func sharedPoolCapsAreCountedPerVolume() throws {
        let one = Caps.grant(existing: [:], want: pooled1, unwanted: pooled1)
        let two = Caps.grant(existing: one, want: pooled2, unwanted: pooled2r)
        #expect(two["osd"] == "allow rw pool=data,allow rw pool=data")
        // Revoking one volume leaves the other its data access.
        let left = try #require(Caps.revoke(existing: two, grants: [pooled1]))
        #expect(left["osd"] == "allow rw pool=data")
        #expect(left["mds"] == pooled2.mds)
        #expect(Caps.revoke(existing: left, grants: [pooled2]) == nil)
    }

    @Test func readonlyGrantKeepsAnotherVolumesPoolCap() {
        let one = Caps.grant(existing: [:], want: pooled1, unwanted: pooled1)
        let two = Caps.grant(existing: one, want: pooled2r, unwanted: pooled2rw)
        #expect(Caps.tokens(two["osd"]).sorted() == ["allow r pool=data", "allow rw pool=data"])
    }

    @Test func revokingAPooledVolumeNextToANamespacedOneDropsThePoolCap() throws {
        let pooled = Caps.grant(existing: [:], want: pooled1, unwanted: pooled1)
        let both = Caps.grant(existing: pooled, want: rw, unwanted: r)
        let left = try #require(Caps.revoke(existing: both, grants: [pooled1]))
        #expect(left["osd"] == rw.osd, "no pool-wide access may survive")
    }

    @Test func regrantingTheSameVolumeAddsNothing() {
        let one = Caps.grant(existing: [:], want: pooled1, unwanted: pooled1)
        #expect(Caps.grant(existing: one, want: pooled1, unwanted: pooled1) == one)
    }

    @Test func commandListIsStable() {
        #expect(
            Caps.commandList(["mon": "allow r", "zz": "x", "osd": "o", "mds": "m"]) == [
                "mds", "m", "osd", "o", "mon", "allow r", "zz", "x",
            ])
    }
}

@Suite("Identifiers")
struct IdentifierTests {
    @Test(arguments: [
        "", ".", "..", "a/b", "/", "a\u{0}b", "_x", "$x", ".x", "x.meta", "a b", "ü", "a:b", String(repeating: "a", count: 250),
    ])
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
