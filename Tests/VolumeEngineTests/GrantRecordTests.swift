import JSONValue
import Testing

@testable import VolumeEngine

/// The pure parts of issue 12's grant fixes: tenant comparison, the record of
/// a pre-existing entity's caps, and revoking around those caps.
@Suite("Grant records")
struct GrantRecordTests {
    let rw = VolumeCaps(path: "/volumes/_nogroup/v", pool: "data", namespace: "fsvolumens_v", readonly: false)

    @Test func aMissingTenantEqualsOnlyAMissingOne() throws {
        let untenanted = try AuthMetadata(["tenant_id": .null, "subvolumes": [:]], path: "t")
        #expect(untenanted.sameTenant(nil))
        #expect(!untenanted.sameTenant("None"))
        #expect(!untenanted.sameTenant(""))
        let none = try AuthMetadata(["tenant_id": "None", "subvolumes": [:]], path: "t")
        #expect(none.sameTenant("None"))
        #expect(!none.sameTenant(nil))
    }

    @Test func preexistingCapsRoundTripAndSurviveOtherKeys() throws {
        var meta = AuthMetadata(tenantID: "t")
        #expect(meta.preexistingCaps == nil)
        meta.preexistingCaps = ["mon": "allow r", "mds": "allow r path=/x"]
        let reread = try AuthMetadata(meta.json, path: "t")
        #expect(reread.preexistingCaps == ["mon": "allow r", "mds": "allow r path=/x"])
        #expect(reread.json[AuthMetadata.preexistingKey] != nil)
        var cleared = reread
        cleared.preexistingCaps = nil
        #expect(cleared.json[AuthMetadata.preexistingKey] == nil)
    }

    @Test func keepingAddsBackOnlyWhatIsMissing() {
        let kept = ["mds": rw.mds, "osd": rw.osd, "mon": "allow r"]
        // Our grant of the same volume revoked: the entity's own copy comes back.
        let revoked = Caps.revoked(existing: kept, grants: [rw])
        #expect(revoked["mds"] == nil)
        #expect(Caps.keeping(kept, in: revoked) == kept)
        // Nothing missing: unchanged, no duplicates.
        let both = ["mds": "\(rw.mds),allow r path=/y", "osd": rw.osd, "mon": "allow r"]
        #expect(Caps.keeping(kept, in: both) == both)
        // A multiset: two copies kept, one present, one added.
        let twice = ["osd": "allow rw pool=data,allow rw pool=data"]
        #expect(Caps.keeping(twice, in: ["osd": "allow rw pool=data"])["osd"] == "allow rw pool=data,allow rw pool=data")
    }

    @Test func revokeStillDeletesOnlyEmptyEntities() {
        #expect(Caps.revoke(existing: ["mds": rw.mds, "osd": rw.osd, "mon": "allow r"], grants: [rw]) == nil)
        #expect(Caps.revoke(existing: ["mds": rw.mds, "osd": rw.osd, "mon": "allow rw"], grants: [rw]) == ["mon": "allow rw"])
    }
}
