/// A rejected identifier; the server answers it with -32602 naming the field.
public struct InvalidIdentifier: Error, Sendable, CustomStringConvertible {
    public let field: String
    public let reason: String
    public var description: String { "invalid \(field): \(reason)" }

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }
}

/// The rules for every name that ends up in a path, a metadata file name, a
/// cephx entity or a RADOS namespace: the one place they are written.
public enum IdentifierRules {
    /// The metadata file names built from identifiers must fit in 255 bytes:
    /// `$<auth_id>.meta` and `_<group>:<volume>.meta`.
    public static let maxFileName = 255
    public static let metaSuffix = ".meta"

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

    public static func validateAuthID(_ id: String, field: String = ParamSpec.authID.name) throws(InvalidIdentifier) {
        // `$` + id + `.meta`
        try validate(id, field: field, maxLength: maxFileName - 1 - metaSuffix.utf8.count)
    }

    public static func validateGroupID(_ id: String, field: String = ParamSpec.groupID.name) throws(InvalidIdentifier) {
        try validate(id, field: field)
        // Auth metadata keys a volume as "<group>/<volume>" with "None" for no group.
        if id == "None" { throw InvalidIdentifier(field: field, reason: "'None' is reserved for volumes without a group") }
    }

    /// `_` + group + `:` + volume + `.meta` must fit a file name.
    public static func validateVolumePath(groupID: String?, volumeID: String, field: String) throws(InvalidIdentifier) {
        if let groupID { try validateGroupID(groupID, field: "\(field).group_id") }
        try validate(volumeID, field: "\(field).volume_id")
        let total = 2 + (groupID?.utf8.count ?? 0) + volumeID.utf8.count + metaSuffix.utf8.count
        if total > maxFileName {
            throw InvalidIdentifier(field: field, reason: "group_id and volume_id together must be at most 248 bytes")
        }
    }
}

/// A validated identifier: made only by validating (`init(_:field:)`), or by
/// this package from a value it validated before, or for a client to send
/// as given (`init(unchecked:)`).
public protocol ValidatedIdentifier: Sendable, Hashable, CustomStringConvertible {
    var rawValue: String { get }
    init(_ value: String, field: String) throws(InvalidIdentifier)
}

extension ValidatedIdentifier {
    public var description: String { rawValue }
}

/// A cephx client name without `client.`.
public struct AuthID: ValidatedIdentifier {
    public let rawValue: String
    public init(_ value: String, field: String = ParamSpec.authID.name) throws(InvalidIdentifier) {
        try IdentifierRules.validateAuthID(value, field: field)
        rawValue = value
    }
    package init(unchecked value: String) { rawValue = value }
}

public struct GroupID: ValidatedIdentifier {
    public let rawValue: String
    public init(_ value: String, field: String = ParamSpec.groupID.name) throws(InvalidIdentifier) {
        try IdentifierRules.validateGroupID(value, field: field)
        rawValue = value
    }
    package init(unchecked value: String) { rawValue = value }
}

public struct VolumeID: ValidatedIdentifier {
    public let rawValue: String
    public init(_ value: String, field: String = VolumeRef.volumeIDMember) throws(InvalidIdentifier) {
        try IdentifierRules.validate(value, field: field)
        rawValue = value
    }
    package init(unchecked value: String) { rawValue = value }
}

public struct SnapshotName: ValidatedIdentifier {
    public let rawValue: String
    public init(_ value: String, field: String = ParamSpec.snapshotName.name) throws(InvalidIdentifier) {
        try IdentifierRules.validate(value, field: field)
        rawValue = value
    }
    package init(unchecked value: String) { rawValue = value }
}

public struct TenantID: ValidatedIdentifier {
    public let rawValue: String
    public init(_ value: String, field: String) throws(InvalidIdentifier) {
        try IdentifierRules.validate(value, field: field)
        rawValue = value
    }
    package init(unchecked value: String) { rawValue = value }
}

/// A volume as a param names it: its group (nil for none) and its id. The
/// server makes it only by validating; a client may hold any strings, which
/// the server then refuses.
public struct VolumeRef: Sendable, Hashable {
    public let groupID: String?
    public let volumeID: String

    /// Validates both parts; `field` names the parameter in errors.
    public init(groupID: String?, volumeID: String, field: String) throws(InvalidIdentifier) {
        try IdentifierRules.validateVolumePath(groupID: groupID, volumeID: volumeID, field: field)
        self.groupID = groupID
        self.volumeID = volumeID
    }

    package init(unchecked groupID: String?, volumeID: String) {
        self.groupID = groupID
        self.volumeID = volumeID
    }
}
