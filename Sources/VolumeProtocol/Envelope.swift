import JSONValue

/// A decoded JSON-RPC 2.0 request or notification.
public struct RPCRequest: Sendable, Equatable {
    /// nil for a notification. A present `null` id is a request, answered with `"id": null`.
    public var id: JSONValue?
    public var method: String
    /// An object or an array, or nil when absent.
    public var params: JSONValue?

    public init(id: JSONValue?, method: String, params: JSONValue? = nil) {
        self.id = id
        self.method = method
        self.params = params
    }

    public var isNotification: Bool { id == nil }

    /// Checks one request object against the specification. On failure, the
    /// error comes with the id to answer with (`null` when it is unusable).
    public static func decode(_ value: JSONValue) -> Result<RPCRequest, RequestDecodingError> {
        guard case .object(let o) = value else {
            return .failure(.init(id: .null, error: RPCError(code: .invalidRequest, message: "request must be an object")))
        }
        // One pass over the members instead of a hashed lookup per field.
        var id: JSONValue?
        var version: JSONValue?
        var methodValue: JSONValue?
        var params: JSONValue?
        for (key, value) in o {
            switch key {
            case "id": id = value
            case "jsonrpc": version = value
            case "method": methodValue = value
            case "params": params = value
            default: break
            }
        }
        // A usable id is echoed even when something else is wrong.
        var replyID: JSONValue = .null
        if let id {
            switch id {
            case .string, .number, .null: replyID = id
            default:
                return .failure(.init(id: .null, error: RPCError(code: .invalidRequest, message: "id must be a string, a number or null")))
            }
        }
        guard version == .string("2.0") else {
            return .failure(.init(id: replyID, error: RPCError(code: .invalidRequest, message: "jsonrpc must be exactly \"2.0\"")))
        }
        guard case .string(let method)? = methodValue else {
            return .failure(.init(id: replyID, error: RPCError(code: .invalidRequest, message: "method must be a string")))
        }
        switch params {
        case nil, .object?, .array?: break
        default:
            return .failure(.init(id: replyID, error: RPCError(code: .invalidRequest, message: "params must be an object or an array")))
        }
        return .success(RPCRequest(id: id, method: method, params: params))
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = ["jsonrpc": "2.0", "method": .string(method)]
        if let id { o["id"] = id }
        if let params { o["params"] = params }
        return .object(o)
    }
}

public struct RequestDecodingError: Error, Sendable {
    public let id: JSONValue
    public let error: RPCError
}

/// A JSON-RPC 2.0 response.
public struct RPCResponse: Sendable, Equatable {
    public var id: JSONValue
    public var outcome: Result<JSONValue, RPCError>

    public init(id: JSONValue, outcome: Result<JSONValue, RPCError>) {
        self.id = id
        self.outcome = outcome
    }

    public init(id: JSONValue, result: JSONValue) { self.init(id: id, outcome: .success(result)) }
    public init(id: JSONValue, error: RPCError) { self.init(id: id, outcome: .failure(error)) }

    public var json: JSONValue {
        switch outcome {
        case .success(let r): ["jsonrpc": "2.0", "id": id, "result": r]
        case .failure(let e): ["jsonrpc": "2.0", "id": id, "error": e.json]
        }
    }

    /// Appends the response as compact JSON, the same bytes `json.serialized()`
    /// gives (members in sorted order), without building the object first.
    public func write(into out: inout [UInt8]) {
        switch outcome {
        case .success(let r):
            out.append(contentsOf: Self.idHead)
            id.write(into: &out)
            out.append(contentsOf: Self.resultHead)
            r.write(into: &out)
        case .failure(let e):
            out.append(contentsOf: Self.errorHead)
            e.json.write(into: &out)
            out.append(contentsOf: Self.errorIDHead)
            id.write(into: &out)
            out.append(contentsOf: Self.errorTail)
        }
        out.append(UInt8(ascii: "}"))
    }

    private static let idHead = Array(#"{"id":"#.utf8)
    private static let resultHead = Array(#","jsonrpc":"2.0","result":"#.utf8)
    private static let errorHead = Array(#"{"error":"#.utf8)
    private static let errorIDHead = Array(#","id":"#.utf8)
    private static let errorTail = Array(#","jsonrpc":"2.0""#.utf8)

    /// Reads a response object; nil when it is not one.
    public init?(json: JSONValue) {
        guard json["jsonrpc"] == .string("2.0"), let id = json["id"] else { return nil }
        // Exactly one of result and error.
        if json["result"] != nil && json["error"] != nil { return nil }
        if let result = json["result"] {
            self.init(id: id, result: result)
        } else if let e = json["error"].flatMap(RPCError.init(json:)) {
            self.init(id: id, error: e)
        } else {
            return nil
        }
    }
}
