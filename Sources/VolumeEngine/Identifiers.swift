/// A rejected identifier; the server answers it with -32602 naming the field.
public struct InvalidIdentifier: Error, Sendable, CustomStringConvertible {
    public let field: String
    public let reason: String
    public var description: String { "invalid \(field): \(reason)" }
}

/// Validation of every name that ends up in a path, a metadata file name, a
/// cephx entity or a RADOS namespace. It runs before anything is touched.
public enum Identifier {
    /// The metadata file names built from identifiers must fit in 255 bytes:
    /// `$<auth_id>.meta` and `_<group>:<volume>.meta`.
    static let maxFileName = 255
    static let metaSuffix = ".meta"

    /// Letters, digits, '.', '_' and '-'; not '.', '..'; not starting with '_', '$' or '.';
    /// not ending in '.meta'; at most `maxLength` bytes.
    public static func validate(_ value: String, field: String, maxLength: Int = 249) throws(InvalidIdentifier) {
        func fail(_ reason: String) -> InvalidIdentifier { InvalidIdentifier(field: field, reason: reason) }
        let bytes = Array(value.utf8)
        if bytes.isEmpty { throw fail("must not be empty") }
        if value == "." || value == ".." { throw fail("must not be '.' or '..'") }
        if let first = bytes.first, first == UInt8(ascii: "_") || first == UInt8(ascii: "$") || first == UInt8(ascii: ".") {
            throw fail("must not start with '_', '$' or '.'")
        }
        if value.hasSuffix(metaSuffix) { throw fail("must not end with '\(metaSuffix)'") }
        if bytes.count > maxLength { throw fail("must be at most \(maxLength) bytes") }
        for b in bytes {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                continue
            default:
                throw fail("may contain only letters, digits, '.', '_' and '-'")
            }
        }
    }

    public static func validateAuthID(_ id: String, field: String = "auth_id") throws(InvalidIdentifier) {
        // `$` + id + `.meta`
        try validate(id, field: field, maxLength: maxFileName - 1 - metaSuffix.utf8.count)
    }

    public static func validateGroupID(_ id: String, field: String = "group_id") throws(InvalidIdentifier) {
        try validate(id, field: field)
        // Auth metadata keys a volume as "<group>/<volume>" with "None" for no group.
        if id == "None" { throw InvalidIdentifier(field: field, reason: "'None' is reserved for volumes without a group") }
    }
}

/// A volume, named by its group (nil for none) and its id.
public struct VolumePath: Sendable, Hashable, CustomStringConvertible {
    public let groupID: String?
    public let volumeID: String

    /// Validates both parts; `field` names the parameter in errors.
    public init(groupID: String?, volumeID: String, field: String = "volume_path") throws(InvalidIdentifier) {
        if let groupID { try Identifier.validateGroupID(groupID, field: "\(field).group_id") }
        try Identifier.validate(volumeID, field: "\(field).volume_id")
        // `_` + group + `:` + volume + `.meta`
        let total = 2 + (groupID?.utf8.count ?? 0) + volumeID.utf8.count + Identifier.metaSuffix.utf8.count
        if total > Identifier.maxFileName {
            throw InvalidIdentifier(field: field, reason: "group_id and volume_id together must be at most 248 bytes")
        }
        self.groupID = groupID
        self.volumeID = volumeID
    }

    /// The key of this volume in auth metadata, as the Python client writes it: `str(VolumePath)`.
    public var description: String { "\(groupID ?? "None")/\(volumeID)" }

    /// Parses an auth metadata key back; nil when it cannot name a volume.
    ///
    /// The Python client accepts names the API refuses today (such as a
    /// leading '_'), and its metadata must still be recoverable, so this only
    /// refuses what could escape the volume directory.
    init?(metadataKey: String) {
        let parts = metadataKey.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 else { return nil }
        func safe(_ s: String) -> Bool { !s.isEmpty && s != "." && s != ".." && !s.contains("\0") }
        guard safe(parts[0]), safe(parts[1]) else { return nil }
        groupID = parts[0] == "None" ? nil : parts[0]
        volumeID = parts[1]
    }
}
