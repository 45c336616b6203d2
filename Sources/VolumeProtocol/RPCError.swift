import JSONValue

/// A JSON-RPC 2.0 error code; the standard ones are negative, as the specification says.
public struct RPCErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let parseError = RPCErrorCode(rawValue: -32700)
    public static let invalidRequest = RPCErrorCode(rawValue: -32600)
    public static let methodNotFound = RPCErrorCode(rawValue: -32601)
    public static let invalidParams = RPCErrorCode(rawValue: -32602)
    public static let internalError = RPCErrorCode(rawValue: -32603)
    /// Every failure of the volume engine or the cluster; `data` says which.
    public static let engineError = RPCErrorCode(rawValue: -32000)
    /// The peer may not use this socket.
    public static let accessDenied = RPCErrorCode(rawValue: -32001)
    /// A limit of the server was reached (line length, connections).
    public static let limitExceeded = RPCErrorCode(rawValue: -32002)
    /// The server is shutting down.
    public static let shuttingDown = RPCErrorCode(rawValue: -32003)

    public var description: String { String(rawValue) }
}

/// The `data.type` of an engine error: the seed's exception class names, so a
/// Python shim can raise the same classes.
public enum EngineErrorType: String, Sendable, CaseIterable {
    case volumeClientError = "VolumeClientError"
    case objectNotFound = "ObjectNotFound"
    case clusterError = "ClusterError"
    case clusterTimeout = "ClusterTimeout"
    case evictionError = "EvictionError"
    case `internal` = "Internal"
}

/// A JSON-RPC error object.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: RPCErrorCode
    public var message: String
    public var data: JSONValue?

    public init(code: RPCErrorCode, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    /// An engine failure (-32000) with `data: {type, errno, errno_name}`.
    public static func engine(
        _ type: EngineErrorType, _ message: String, errno: Int32? = nil, errnoName: String? = nil
    ) -> RPCError {
        RPCError(
            code: .engineError, message: message,
            data: [
                "type": .string(type.rawValue),
                "errno": errno.map { .int($0) } ?? .null,
                "errno_name": errnoName.map { .string($0) } ?? .null,
            ])
    }

    public static func invalidParams(_ message: String) -> RPCError {
        RPCError(code: .invalidParams, message: message)
    }

    /// The engine error type, when this is an engine error.
    public var engineType: EngineErrorType? {
        data?["type"]?.stringValue.flatMap(EngineErrorType.init(rawValue:))
    }

    /// The positive errno, when Ceph gave one.
    public var errno: Int32? {
        data?["errno"]?.int64Value.flatMap { Int32(exactly: $0) }
    }

    public var errnoName: String? { data?["errno_name"]?.stringValue }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["code": .int(code.rawValue), "message": .string(message)]
        if let data { o["data"] = data }
        return .object(o)
    }

    public init?(json: JSONValue) {
        guard let code = json["code"]?.int64Value, let message = json["message"]?.stringValue else { return nil }
        self.init(code: RPCErrorCode(rawValue: Int(code)), message: message, data: json["data"])
    }

    public var description: String {
        if let t = engineType { return "\(t.rawValue): \(message)" }
        return "\(message) (\(code.rawValue))"
    }
}
