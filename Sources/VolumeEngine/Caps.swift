/// The caps one volume grants: an mds path cap and an osd pool (and namespace) cap.
struct VolumeCaps: Sendable, Equatable {
    let mds: String
    let osd: String

    init(mds: String, osd: String) {
        self.mds = mds
        self.osd = osd
    }

    init(path: String, pool: String, namespace: String?, readonly: Bool) {
        let level = readonly ? "r" : "rw"
        mds = "allow \(level) path=\(path)"
        osd = namespace.map { "allow \(level) pool=\(pool) namespace=\($0)" } ?? "allow \(level) pool=\(pool)"
    }
}

/// Pure edits of a cephx entity's caps (`{"mds": "...", "osd": "...", "mon": ...}`).
///
/// The model is the Python client's, so both can edit one entity: every
/// volume grant adds one mds path cap and one osd cap, and revoking removes
/// that pair. osd caps are a multiset: volumes without namespace isolation in
/// the same pool each hold their own copy of `allow rw pool=<pool>`, so
/// revoking one volume never takes another's data access away.
enum Caps {
    /// The comma-separated grants of a cap string, trimmed, without empties.
    static func tokens(_ caps: String?) -> [String] {
        (caps ?? "").split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
    }

    /// Grants a volume at one access level, keeping every other grant. If the
    /// volume is held at the other level, that pair is swapped. mds and osd
    /// are checked separately, so an entity with only one of them (caps set
    /// out of band) still ends up with valid, complete caps.
    static func grant(existing: [String: String], want: VolumeCaps, unwanted: VolumeCaps) -> [String: String] {
        var mds = tokens(existing["mds"])
        var osd = tokens(existing["osd"])
        if !mds.contains(want.mds) {
            if let i = mds.firstIndex(of: unwanted.mds) {
                mds.remove(at: i)
                if let j = osd.firstIndex(of: unwanted.osd) { osd.remove(at: j) }
            }
            mds.append(want.mds)
            osd.append(want.osd)
        } else if !osd.contains(want.osd) {
            osd.append(want.osd)
        }
        var caps = existing
        caps["mds"] = mds.isEmpty ? nil : mds.joined(separator: ",")
        caps["osd"] = osd.isEmpty ? nil : osd.joined(separator: ",")
        if caps["mon"] == nil { caps["mon"] = "allow r" }
        return caps
    }

    /// Revokes a volume's grants: each of its mds path caps present is removed
    /// with one copy of the osd cap of the same access level, and nothing
    /// else. Returns nil when the entity would be left with no mds or osd caps
    /// and nothing but mon `allow r`, which is when it should be deleted.
    static func revoke(existing: [String: String], grants: [VolumeCaps]) -> [String: String]? {
        let caps = revoked(existing: existing, grants: grants)
        let rest = caps.filter { $0.key != "mds" && $0.key != "osd" }
        if caps["mds"] == nil, caps["osd"] == nil, rest.allSatisfy({ $0.key == "mon" && $0.value == "allow r" }) {
            return nil
        }
        return caps
    }

    /// `revoke` without the deletion rule: the caps left, possibly none.
    static func revoked(existing: [String: String], grants: [VolumeCaps]) -> [String: String] {
        var mds = tokens(existing["mds"])
        var osd = tokens(existing["osd"])
        for grant in grants {
            guard let i = mds.firstIndex(of: grant.mds) else { continue }
            mds.remove(at: i)
            if let j = osd.firstIndex(of: grant.osd) { osd.remove(at: j) }
        }
        var caps = existing
        caps["mds"] = mds.isEmpty ? nil : mds.joined(separator: ",")
        caps["osd"] = osd.isEmpty ? nil : osd.joined(separator: ",")
        return caps
    }

    /// `caps` with the mds and osd grants of `kept` that it lacks added back
    /// (counted as a multiset), so revoking one of our grants never takes
    /// away a grant an entity the service did not create already had.
    static func keeping(_ kept: [String: String], in caps: [String: String]) -> [String: String] {
        var out = caps
        for service in ["mds", "osd"] {
            var have = tokens(caps[service])
            var missing: [String] = []
            for token in tokens(kept[service]) {
                if let i = have.firstIndex(of: token) { have.remove(at: i) } else { missing.append(token) }
            }
            if !missing.isEmpty {
                out[service] = (tokens(caps[service]) + missing).joined(separator: ",")
            }
        }
        return out
    }

    /// The `caps` argument of `auth caps` / `auth get-or-create`: a flat
    /// [service, caps, ...] list in a stable order.
    static func commandList(_ caps: [String: String]) -> [String] {
        let order = ["mds", "osd", "mon", "mgr"]
        let keys = order.filter { caps[$0] != nil } + caps.keys.filter { !order.contains($0) }.sorted()
        return keys.flatMap { [$0, caps[$0]!] }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
