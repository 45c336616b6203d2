import JSONValue

/// A request's named params, read with errors that name the field (-32602).
public struct Params: Sendable {
    public let members: [String: JSONValue]

    /// Accepts an object or absent params; positional (array) params are refused
    /// because every method's contract is by name.
    public init(_ value: JSONValue?) throws(RPCError) {
        switch value {
        case nil: members = [:]
        case .object(let o)?: members = o
        default: throw .invalidParams("params must be an object of named parameters")
        }
    }

    init(members: [String: JSONValue]) { self.members = members }

    /// Refuses names the method does not know, so a typo is not silently ignored.
    public func allowOnly(_ names: Set<String>) throws(RPCError) {
        for key in members.keys.sorted() where !names.contains(key) {
            throw .invalidParams("unknown parameter '\(key)'")
        }
    }

    private func present(_ name: String) -> JSONValue? {
        guard let v = members[name], !v.isNull else { return nil }
        return v
    }

    /// `field` is the name used in errors, for members of nested objects.
    public func string(_ name: String, field: String? = nil) throws(RPCError) -> String {
        guard let v = members[name] else { throw .invalidParams("missing parameter '\(field ?? name)'") }
        guard let s = v.stringValue else { throw .invalidParams("parameter '\(field ?? name)' must be a string, not \(v.typeName)") }
        return s
    }

    public func optionalString(_ name: String, field: String? = nil) throws(RPCError) -> String? {
        guard let v = present(name) else { return nil }
        guard let s = v.stringValue else {
            throw .invalidParams("parameter '\(field ?? name)' must be a string or null, not \(v.typeName)")
        }
        return s
    }

    /// A number of seconds (integer or fractional), nil when absent or null.
    public func optionalSeconds(_ name: String) throws(RPCError) -> Double? {
        guard let v = present(name) else { return nil }
        guard case .number(let n) = v, let d = n.doubleValue, d.isFinite, d >= 0, d <= 86_400 else {
            throw .invalidParams("parameter '\(name)' must be a number of seconds between 0 and 86400")
        }
        return d
    }

    public var isEmpty: Bool { members.isEmpty }

    public func bool(_ name: String, default def: Bool) throws(RPCError) -> Bool {
        guard let v = present(name) else { return def }
        guard let b = v.boolValue else { throw .invalidParams("parameter '\(name)' must be a boolean, not \(v.typeName)") }
        return b
    }

    /// An integer within `range`; nil when absent or null.
    public func optionalInt(_ name: String, in range: ClosedRange<Int64> = Int64.min...Int64.max) throws(RPCError) -> Int64? {
        guard let v = present(name) else { return nil }
        guard case .number(let n) = v, let i = n.int64Value else {
            throw .invalidParams(
                "parameter '\(name)' must be an integer, not \(v.typeName == "number" ? "a non-integer or out-of-range number" : v.typeName)"
            )
        }
        guard range.contains(i) else { throw .invalidParams("parameter '\(name)' must be in \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    public func object(_ name: String) throws(RPCError) -> Params {
        guard let v = members[name] else { throw .invalidParams("missing parameter '\(name)'") }
        guard let o = v.objectValue else { throw .invalidParams("parameter '\(name)' must be an object, not \(v.typeName)") }
        return Params(members: o)
    }
}

/// Reading params by their spec, identifiers validated as they are read.
extension Params {
    func validated<T>(_ make: () throws(InvalidIdentifier) -> T) throws(RPCError) -> T {
        do {
            return try make()
        } catch {
            throw .invalidParams(error.description)
        }
    }

    /// A required string param that must be a valid identifier.
    public func identifier<I: ValidatedIdentifier>(_ spec: ParamSpec, as: I.Type = I.self) throws(RPCError) -> I {
        let value = try string(spec.name)
        return try validated { () throws(InvalidIdentifier) in try I(value, field: spec.name) }
    }

    /// An identifier or null.
    public func optionalIdentifier<I: ValidatedIdentifier>(_ spec: ParamSpec, as: I.Type = I.self) throws(RPCError) -> I? {
        guard let value = try optionalString(spec.name) else { return nil }
        return try validated { () throws(InvalidIdentifier) in try I(value, field: spec.name) }
    }

    /// A volume path param (group_id: string or null, volume_id: string), validated.
    public func volumeRef(_ spec: ParamSpec) throws(RPCError) -> VolumeRef {
        let name = spec.name
        let o = try object(name)
        try o.allowOnly([VolumeRef.groupIDMember, VolumeRef.volumeIDMember])
        let group = try o.optionalString(VolumeRef.groupIDMember, field: "\(name).\(VolumeRef.groupIDMember)")
        let volume = try o.string(VolumeRef.volumeIDMember, field: "\(name).\(VolumeRef.volumeIDMember)")
        return try validated { () throws(InvalidIdentifier) in try VolumeRef(groupID: group, volumeID: volume, field: name) }
    }

    public func optionalVolumeRef(_ spec: ParamSpec) throws(RPCError) -> VolumeRef? {
        guard let v = members[spec.name], !v.isNull else { return nil }
        return try volumeRef(spec)
    }

    /// A boolean, its spec's default when absent or null.
    public func bool(_ spec: ParamSpec) throws(RPCError) -> Bool {
        try bool(spec.name, default: spec.defaultValue?.boolValue ?? false)
    }

    /// An integer in the spec's range, nil when absent or null.
    public func optionalInt(_ spec: ParamSpec) throws(RPCError) -> Int64? {
        switch spec.type {
        case .integer(let lo, let hi), .nullable(.integer(let lo, let hi)): try optionalInt(spec.name, in: lo...hi)
        default: try optionalInt(spec.name)
        }
    }

    /// An integer in the spec's range, its default when absent or null.
    public func int(_ spec: ParamSpec) throws(RPCError) -> Int64 {
        try optionalInt(spec) ?? spec.defaultValue?.int64Value ?? 0
    }

    /// Seconds, its default when absent or null.
    public func seconds(_ spec: ParamSpec) throws(RPCError) -> Double {
        if let s = try optionalSeconds(spec.name) { return s }
        if case .number(let n)? = spec.defaultValue { return n.doubleValue ?? 0 }
        return 0
    }

    /// Base64 data, as binary travels on the wire.
    public func base64(_ spec: ParamSpec) throws(RPCError) -> [UInt8] {
        guard let bytes = Base64.decode(try string(spec.name)) else {
            throw .invalidParams("parameter '\(spec.name)' must be base64")
        }
        return bytes
    }

    /// A string that must not be empty; checked after every other param is read.
    public static func requireNonEmpty(_ value: String, _ spec: ParamSpec) throws(RPCError) {
        if value.isEmpty { throw .invalidParams("parameter '\(spec.name)' must not be empty") }
    }
}
