import Ceph
import Foundation
import JSONValue

#if canImport(Glibc)
import Glibc
#endif

/// A volume as the daemon lays it out: `<prefix>/<group or _nogroup>/<volume>`.
public struct VolumeRef: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let group: String?
    public let volume: String

    public init(_ group: String?, _ volume: String) {
        self.group = group
        self.volume = volume
    }

    /// The key of the volume in auth metadata: `"<group or None>/<volume>"`.
    public var metadataKey: String { "\(group ?? "None")/\(volume)" }

    /// Parses an auth metadata key.
    public init?(metadataKey: String) {
        let parts = metadataKey.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[1].isEmpty else { return nil }
        self.init(parts[0] == "None" ? nil : String(parts[0]), String(parts[1]))
    }

    public func path(prefix: String = "/volumes") -> String { "\(prefix)/\(group ?? "_nogroup")/\(volume)" }
    public func metadataPath(prefix: String = "/volumes") -> String { "\(prefix)/_\(group ?? ""):\(volume).meta" }

    public var description: String { metadataKey }
    public static func < (a: VolumeRef, b: VolumeRef) -> Bool { a.metadataKey < b.metadataKey }
}

/// One (auth ID, volume) pair.
public struct Grant: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let authID: String
    public let volume: VolumeRef
    public init(_ authID: String, _ volume: VolumeRef) {
        self.authID = authID
        self.volume = volume
    }
    public var description: String { "(\(authID), \(volume))" }
    public static func < (a: Grant, b: Grant) -> Bool { (a.authID, a.volume) < (b.authID, b.volume) }
}

/// The cross-checks of authorization state that must hold whenever no call is
/// in progress (after `recover`, in particular):
///
/// (a) no auth metadata file and no volume metadata file has a dirty flag set,
///     at the top level or on any entry;
/// (b) for every (auth ID, volume): the auth metadata's `subvolumes` has it ⇔
///     the volume metadata's `auths` has it ⇔ the entity's mds caps contain
///     `allow <lvl> path=<volume path>` (and the osd caps `allow <lvl>
///     pool=<pool> namespace=<ns>` when the volume has a namespace), all with
///     the same access level;
/// (c) no orphaned grant: no cap granting a volume path (or namespace) without
///     the metadata entries, no entity with volume caps but no auth metadata,
///     no entity left with nothing but `mon 'allow r'`, no auth metadata
///     without volumes, no volume metadata without its volume directory;
/// (d) every metadata file parses as a JSON object (trailing padding is fine)
///     and is never empty. The one exemption: a volume metadata file of zero
///     bytes with the volume directory present is what create_volume makes
///     (as the Python client does) and means "no auth IDs".
///
/// Given the auth IDs and volumes under test, it also follows every pair the
/// files and caps of those IDs and volumes mention.
public struct InvariantChecker {
    public let fs: CephFSMount
    public let cluster: RadosCluster
    public let prefix: String
    public let namespacePrefix: String

    public init(fs: CephFSMount, cluster: RadosCluster, prefix: String = "/volumes", namespacePrefix: String = "fsvolumens_") {
        self.fs = fs
        self.cluster = cluster
        self.prefix = prefix
        self.namespacePrefix = namespacePrefix
    }

    /// The human-readable violations; empty when every invariant holds.
    public func check(authIDs: [String], volumes: [VolumeRef]) -> [String] {
        var run = Run(checker: self)
        return run.check(authIDs: authIDs, volumes: volumes)
    }

    /// The access level of every pair as the auth metadata records it
    /// (meaningful when `check` found nothing).
    public func grants(authIDs: [String], volumes: [VolumeRef]) -> [Grant: String] {
        var run = Run(checker: self)
        var out: [Grant: String] = [:]
        for id in authIDs {
            for v in volumes {
                if let level = run.authMeta(id).entries[v.metadataKey]?.level { out[Grant(id, v)] = level }
            }
        }
        return out
    }

    // MARK: Reading

    struct Entry {
        let level: String?
        let dirty: Bool
    }

    struct MetaFile {
        var exists = false
        var problems: [String] = []
        var dirty = false
        var empty = false
        var entries: [String: Entry] = [:]
        var object: [String: JSONValue]?
    }

    struct Entity {
        var exists = false
        var caps: [String: String] = [:]
        var error: String?
        func tokens(_ service: String) -> [String] {
            (caps[service] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    func readFile(_ path: String) -> (bytes: [UInt8]?, error: String?) {
        do {
            guard try fs.statIfExists(path) != nil else { return (nil, nil) }
            let f = try fs.open(path, flags: O_RDONLY)
            defer { f.close() }
            return (try f.readAll(), nil)
        } catch {
            return (nil, "\(path): cannot read: \(error)")
        }
    }

    /// Reads a metadata file; `entriesKey` is "subvolumes" (auth) or "auths" (volume).
    func readMeta(_ path: String, entriesKey: String) -> MetaFile {
        var m = MetaFile()
        let (bytes, error) = readFile(path)
        if let error { m.problems.append("(d) " + error) }
        guard let bytes else { return m }
        m.exists = true
        if bytes.isEmpty {
            m.empty = true
            return m
        }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D || $0 == 0 }) {
            m.problems.append("(d) \(path) holds \(bytes.count) bytes of whitespace/NUL and no JSON")
            return m
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            let head = String(decoding: bytes.prefix(120), as: UTF8.self)
            m.problems.append("(d) \(path) does not parse as JSON (\(error)): \(head)")
            return m
        }
        guard let object = value.objectValue else {
            m.problems.append("(d) \(path) is JSON but not an object: \(value)")
            return m
        }
        m.object = object
        if object["dirty"]?.boolValue == true { m.dirty = true }
        var entries = object[entriesKey]?.objectValue
        if entries == nil, entriesKey == "subvolumes" { entries = object["volumes"]?.objectValue }
        for (k, v) in entries ?? [:] {
            let level = v["access_level"]?.stringValue
            if level != "r" && level != "rw" {
                m.problems.append("(d) \(path): entry \(k) has access_level \(v["access_level"].map { "\($0)" } ?? "missing")")
            }
            m.entries[k] = Entry(level: level, dirty: v["dirty"]?.boolValue ?? false)
        }
        return m
    }

    func readEntity(_ id: String) -> Entity {
        var e = Entity()
        do throws(CephError) {
            let reply = try cluster.monJSON(["prefix": "auth get", "entity": .string("client.\(id)")])
            guard let first = reply?.arrayValue?.first ?? reply, first["entity"] != nil || first["key"] != nil else {
                return e
            }
            e.exists = true
            for (service, v) in first["caps"]?.objectValue ?? [:] { e.caps[service] = v.stringValue }
        } catch {
            if error.errno != .ENOENT { e.error = "auth get client.\(id): \(error)" }
        }
        return e
    }

    // MARK: One check

    struct Run {
        let checker: InvariantChecker
        var authCache: [String: MetaFile] = [:]
        var volumeCache: [VolumeRef: MetaFile] = [:]
        var entityCache: [String: Entity] = [:]
        var dirCache: [VolumeRef: (exists: Bool, namespace: String?, pool: String?)] = [:]

        init(checker: InvariantChecker) { self.checker = checker }

        mutating func authMeta(_ id: String) -> MetaFile {
            if let m = authCache[id] { return m }
            let m = checker.readMeta("\(checker.prefix)/$\(id).meta", entriesKey: "subvolumes")
            authCache[id] = m
            return m
        }

        mutating func volumeMeta(_ v: VolumeRef) -> MetaFile {
            if let m = volumeCache[v] { return m }
            let m = checker.readMeta(v.metadataPath(prefix: checker.prefix), entriesKey: "auths")
            volumeCache[v] = m
            return m
        }

        mutating func entity(_ id: String) -> Entity {
            if let e = entityCache[id] { return e }
            let e = checker.readEntity(id)
            entityCache[id] = e
            return e
        }

        mutating func directory(_ v: VolumeRef) -> (exists: Bool, namespace: String?, pool: String?) {
            if let d = dirCache[v] { return d }
            let path = v.path(prefix: checker.prefix)
            let exists = ((try? checker.fs.statIfExists(path)) ?? nil) != nil
            var ns: String?
            var pool: String?
            if exists {
                ns = (try? checker.fs.getxattrString(path, "ceph.dir.layout.pool_namespace")) ?? nil
                if ns?.isEmpty == true { ns = nil }
                pool = (try? checker.fs.getxattrString(path, "ceph.dir.layout.pool")) ?? nil
                if pool?.isEmpty == true { pool = nil }
            }
            let d = (exists, ns, pool)
            dirCache[v] = d
            return d
        }

        /// The volume a `path=` grant names, when it is under the prefix.
        func volume(fromPath path: String) -> VolumeRef? {
            guard path.hasPrefix(checker.prefix + "/") else { return nil }
            let rest = path.dropFirst(checker.prefix.count + 1).split(separator: "/", omittingEmptySubsequences: false)
            guard rest.count == 2, !rest[1].isEmpty else { return nil }
            return VolumeRef(rest[0] == "_nogroup" ? nil : String(rest[0]), String(rest[1]))
        }

        /// (level, path) of an mds grant like `allow rw path=/volumes/g/v`.
        static func mdsGrant(_ token: String) -> (level: String, path: String)? {
            let words = token.split(separator: " ").map(String.init)
            guard words.count == 3, words[0] == "allow", words[2].hasPrefix("path=") else { return nil }
            return (words[1], String(words[2].dropFirst(5)))
        }

        /// (level, pool, namespace) of an osd grant like `allow rw pool=p namespace=n`.
        static func osdGrant(_ token: String) -> (level: String, pool: String?, namespace: String?)? {
            let words = token.split(separator: " ").map(String.init)
            guard words.count >= 2, words[0] == "allow" else { return nil }
            var pool: String?
            var ns: String?
            for w in words.dropFirst(2) {
                if w.hasPrefix("pool=") { pool = String(w.dropFirst(5)) }
                if w.hasPrefix("namespace=") { ns = String(w.dropFirst(10)) }
            }
            return (words[1], pool, ns)
        }

        mutating func check(authIDs: [String], volumes: [VolumeRef]) -> [String] {
            var violations: [String] = []
            var pairs = Set<Grant>()
            var ids = Set(authIDs)
            var vols = Set(volumes)
            for id in authIDs { for v in volumes { pairs.insert(Grant(id, v)) } }

            // Follow what the files and caps of the IDs and volumes under test mention.
            for v in volumes {
                for id in volumeMeta(v).entries.keys {
                    pairs.insert(Grant(id, v))
                    ids.insert(id)
                }
            }
            for id in ids.sorted() {
                for key in authMeta(id).entries.keys {
                    if let v = VolumeRef(metadataKey: key) {
                        pairs.insert(Grant(id, v))
                        vols.insert(v)
                    } else {
                        violations.append("(d) $\(id).meta has a malformed volume key \"\(key)\"")
                    }
                }
                for token in entity(id).tokens("mds") {
                    if let g = Self.mdsGrant(token), let v = volume(fromPath: g.path) {
                        pairs.insert(Grant(id, v))
                        vols.insert(v)
                    }
                }
            }

            // (a), (d) and file-level (c) for every file involved.
            for id in ids.sorted() {
                let m = authMeta(id)
                let e = entity(id)
                if let err = e.error { violations.append("cannot check entity: \(err)") }
                violations += m.problems
                let name = "$\(id).meta"
                if m.exists {
                    if m.empty { violations.append("(d) \(name) is empty") }
                    if m.dirty { violations.append("(a) \(name) is dirty") }
                    for (k, entry) in m.entries.sorted(by: { $0.key < $1.key }) where entry.dirty {
                        violations.append("(a) \(name): entry \(k) is dirty")
                    }
                    if m.object != nil && m.entries.isEmpty {
                        violations.append("(c) \(name) has no volumes left but was not removed")
                    }
                }
                if e.exists {
                    let volumeCaps =
                        e.tokens("mds").contains { Self.mdsGrant($0).flatMap { volume(fromPath: $0.path) } != nil }
                        || e.tokens("osd").contains { Self.osdGrant($0)?.namespace?.hasPrefix(checker.namespacePrefix) == true }
                    if volumeCaps && !m.exists {
                        violations.append("(c) client.\(id) has volume caps \(e.caps) but no auth metadata \(name)")
                    }
                    let onlyMonR =
                        e.tokens("mds").isEmpty && e.tokens("osd").isEmpty
                        && e.caps.filter({ $0.key != "mds" && $0.key != "osd" }).allSatisfy { $0.key == "mon" && $0.value == "allow r" }
                    if onlyMonR && !m.exists {
                        violations.append("(c) client.\(id) is left with nothing but mon 'allow r' (should have been deleted)")
                    }
                }
            }
            for v in vols.sorted() {
                let m = volumeMeta(v)
                violations += m.problems
                let name = "_\(v.group ?? ""):\(v.volume).meta"
                guard m.exists else { continue }
                if m.dirty { violations.append("(a) \(name) is dirty") }
                for (k, entry) in m.entries.sorted(by: { $0.key < $1.key }) where entry.dirty {
                    violations.append("(a) \(name): entry \(k) is dirty")
                }
                let dir = directory(v)
                if m.empty && !dir.exists { violations.append("(d) \(name) is empty and its volume does not exist") }
                if !dir.exists && !m.empty { violations.append("(c) \(name) exists but volume \(v.path(prefix: checker.prefix)) does not") }
            }

            // (b) and grant-level (c) for every pair.
            for p in pairs.sorted() {
                let a = authMeta(p.authID).entries[p.volume.metadataKey]?.level
                let b = volumeMeta(p.volume).entries[p.authID]?.level
                let e = entity(p.authID)
                let path = p.volume.path(prefix: checker.prefix)
                let mdsLevels = e.tokens("mds").compactMap(Self.mdsGrant).filter { $0.path == path }.map(\.level)
                if mdsLevels.count > 1 {
                    violations.append("(b) client.\(p.authID) has \(mdsLevels.count) mds grants for \(path): \(mdsLevels)")
                }
                let c = mdsLevels.first
                if !(a == b && b == c) {
                    violations.append(
                        "(b) \(p): auth meta says \(a ?? "none"), volume meta says \(b ?? "none"), mds caps say \(c ?? "none")"
                            + (c != nil && (a == nil || b == nil) ? " — orphaned grant (c)" : ""))
                }
                // osd: the namespace grant of the volume, when it has one.
                let dir = directory(p.volume)
                let ns = dir.exists ? dir.namespace : checker.namespacePrefix + p.volume.volume
                if let ns {
                    let osd = e.tokens("osd").compactMap(Self.osdGrant).filter { $0.namespace == ns }
                    let osdLevels = osd.map(\.level)
                    if let c {
                        if osdLevels != [c] {
                            violations.append(
                                "(b) \(p): mds caps grant \(c) but the osd caps for namespace \(ns) are \(osdLevels) (\(e.caps["osd"] ?? "none"))"
                            )
                        } else if dir.exists, let pool = dir.pool, osd.first?.pool != pool {
                            violations.append(
                                "(b) \(p): osd grant names pool \(osd.first?.pool ?? "none"), the volume's layout pool is \(pool)")
                        }
                    } else if !osdLevels.isEmpty {
                        violations.append("(c) \(p): orphaned osd grant for namespace \(ns) (\(e.caps["osd"] ?? "")) without an mds grant")
                    }
                }
            }
            return violations
        }
    }
}
