import JSONValue
import VolumeProtocol

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
        guard let s = v.stringValue else { throw .invalidParams("parameter '\(field ?? name)' must be a string or null, not \(v.typeName)") }
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
            throw .invalidParams("parameter '\(name)' must be an integer, not \(v.typeName == "number" ? "a non-integer or out-of-range number" : v.typeName)")
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
