import JSONValue

/// The on-disk version we write and the newest compat_version we understand:
/// the v6 Python client's format.
enum MetadataVersion {
    static let current = 6
    static let authCompat = 6
    static let volumeCompat = 1

    static func check(_ object: [String: JSONValue], path: String) throws(VolumeError) {
        guard let compat = object["compat_version"]?.int64Value else { return }
        if compat > Int64(current) {
            throw VolumeError(
                .volumeClientError,
                "The current version of CephFSVolumeClient, version \(current) does not support the required feature. Need version \(compat) or greater (\(path))"
            )
        }
    }
}

/// One grant in metadata: `{"access_level": "r"|"rw", "dirty": bool}`.
struct AccessEntry: Sendable, Equatable {
    var accessLevel: String
    var dirty: Bool

    init(accessLevel: String, dirty: Bool) {
        self.accessLevel = accessLevel
        self.dirty = dirty
    }

    init?(_ json: JSONValue) {
        guard let level = json["access_level"]?.stringValue else { return nil }
        accessLevel = level
        dirty = json["dirty"]?.boolValue ?? false
    }

    var json: JSONValue { ["access_level": .string(accessLevel), "dirty": .bool(dirty)] }
    var readonly: Bool { accessLevel == "r" }
}

/// `$<auth_id>.meta`: which volumes an auth ID may use, and its tenant.
/// Unknown keys are kept, so a newer peer's additions survive our writes.
struct AuthMetadata: Sendable {
    private var extra: [String: JSONValue]
    var dirty: Bool
    var tenantID: String?
    var subvolumes: [String: AccessEntry]

    init(tenantID: String?) {
        extra = [:]
        dirty = true
        self.tenantID = tenantID
        subvolumes = [:]
    }

    /// Reads either format: v6's `subvolumes` or the older `volumes` key.
    init(_ object: [String: JSONValue], path: String) throws(VolumeError) {
        try MetadataVersion.check(object, path: path)
        var o = object
        let entries = (o.removeValue(forKey: "subvolumes") ?? o.removeValue(forKey: "volumes"))?.objectValue ?? [:]
        o["volumes"] = nil
        dirty = o.removeValue(forKey: "dirty")?.boolValue ?? false
        switch o.removeValue(forKey: "tenant_id") {
        case .string(let s)?: tenantID = s
        case nil, .null?: tenantID = nil
        case let other?: tenantID = other.description
        }
        var subvolumes: [String: AccessEntry] = [:]
        for (key, value) in entries {
            guard let entry = AccessEntry(value) else {
                throw VolumeError(.volumeClientError, "auth metadata \(path) has a malformed entry for \(key)")
            }
            subvolumes[key] = entry
        }
        self.subvolumes = subvolumes
        o["version"] = nil
        o["compat_version"] = nil
        extra = o
    }

    var json: [String: JSONValue] {
        var o = extra
        o["dirty"] = .bool(dirty)
        o["tenant_id"] = tenantID.map { .string($0) } ?? .null
        o["subvolumes"] = .object(subvolumes.mapValues(\.json))
        o["version"] = .int(MetadataVersion.current)
        o["compat_version"] = .int(MetadataVersion.authCompat)
        return o
    }

    /// Whether `other` is this ID's tenant. A missing tenant (JSON null, as
    /// v6 writes it) equals only a missing one: never a string, not even
    /// "None", which the Python client's `str(a) == str(b)` let through.
    func sameTenant(_ other: String?) -> Bool { tenantID == other }

    /// The caps the cephx entity had before the service first granted it a
    /// volume, when the service did not create it (`allow_existing_id`);
    /// nil when the service (or the Python client) created it. Stored under a
    /// key v6 does not know, which it keeps when it rewrites the file.
    var preexistingCaps: [String: String]? {
        get {
            guard let caps = extra[Self.preexistingKey]?["caps"]?.objectValue else { return nil }
            return caps.compactMapValues(\.stringValue)
        }
        set {
            extra[Self.preexistingKey] = newValue.map { ["caps": .object($0.mapValues { .string($0) })] }
        }
    }

    static let preexistingKey = "volumed_preexisting_entity"
}

/// `_<group>:<volume>.meta`: which auth IDs may use a volume.
struct VolumeMetadata: Sendable {
    private var extra: [String: JSONValue]
    var auths: [String: AccessEntry]

    init() {
        extra = [:]
        auths = [:]
    }

    init(_ object: [String: JSONValue], path: String) throws(VolumeError) {
        try MetadataVersion.check(object, path: path)
        var o = object
        var auths: [String: AccessEntry] = [:]
        for (key, value) in o.removeValue(forKey: "auths")?.objectValue ?? [:] {
            guard let entry = AccessEntry(value) else {
                throw VolumeError(.volumeClientError, "volume metadata \(path) has a malformed entry for \(key)")
            }
            auths[key] = entry
        }
        self.auths = auths
        o["version"] = nil
        o["compat_version"] = nil
        extra = o
    }

    var json: [String: JSONValue] {
        var o = extra
        o["auths"] = .object(auths.mapValues(\.json))
        o["version"] = .int(MetadataVersion.current)
        o["compat_version"] = .int(MetadataVersion.volumeCompat)
        return o
    }
}
