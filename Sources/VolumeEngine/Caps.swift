/// The caps one volume grants: an mds path cap and an osd pool (and namespace) cap.
struct VolumeCaps: Sendable, Equatable {
    let mds: String
    let osd: String

    init(path: String, pool: String, namespace: String?, readonly: Bool) {
        let level = readonly ? "r" : "rw"
        mds = "allow \(level) path=\(path)"
        osd = namespace.map { "allow \(level) pool=\(pool) namespace=\($0)" } ?? "allow \(level) pool=\(pool)"
    }
}

/// Pure edits of a cephx entity's caps (`{"mds": "...", "osd": "...", "mon": ...}`).
enum Caps {
    /// The comma-separated grants of a cap string, trimmed, without empties.
    static func tokens(_ caps: String?) -> [String] {
        (caps ?? "").split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
    }

    /// Adds `want` and drops `unwanted` (the other access level for the same
    /// volume), keeping every other grant. mds and osd are edited
    /// independently, so an entity with only one of them still gets valid caps.
    static func grant(existing: [String: String], want: VolumeCaps, unwanted: VolumeCaps) -> [String: String] {
        var caps = existing
        caps["mds"] = edit(existing["mds"], add: want.mds, remove: [unwanted.mds])
        caps["osd"] = edit(existing["osd"], add: want.osd, remove: [unwanted.osd])
        if caps["mon"] == nil { caps["mon"] = "allow r" }
        return caps
    }

    /// Removes the given mds and osd grants and nothing else. Returns nil when
    /// the entity would be left with nothing but `mon 'allow r'`, which is
    /// when it should be deleted.
    static func revoke(existing: [String: String], mds: Set<String>, osd: Set<String>) -> [String: String]? {
        var caps = existing
        caps["mds"] = edit(existing["mds"], add: nil, remove: mds)
        caps["osd"] = edit(existing["osd"], add: nil, remove: osd)
        let rest = caps.filter { $0.key != "mds" && $0.key != "osd" }
        if caps["mds"] == nil, caps["osd"] == nil, rest.allSatisfy({ $0.key == "mon" && $0.value == "allow r" }) {
            return nil
        }
        return caps
    }

    private static func edit(_ current: String?, add: String?, remove: Set<String>) -> String? {
        var tokens = tokens(current).filter { !remove.contains($0) }
        if let add, !tokens.contains(add) { tokens.append(add) }
        return tokens.isEmpty ? nil : tokens.joined(separator: ",")
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
