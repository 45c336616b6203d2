import JSONValue

/// The reply to a mon, mgr or MDS command. `data` may hold secrets (an
/// `auth get` returns keys): it has no description of its own on purpose.
public struct CommandOutput: Sendable {
    public let data: [UInt8]
    public let status: String

    public init(data: [UInt8], status: String) {
        self.data = data
        self.status = status
    }

    /// The decoded JSON reply, or nil when the command returned no data.
    public func json(operation: String = "decode command output") throws(CephError) -> JSONValue? {
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D }) { return nil }
        do {
            return try JSONValue.parse(data)
        } catch {
            throw CephError(errno: .EINVAL, operation: operation, detail: "invalid JSON in reply: \(error)")
        }
    }
}

/// Encodes a command as the JSON string librados expects, adding `format: json`.
func encodeCommand(_ args: [String: JSONValue]) -> String {
    var a = args
    if a["format"] == nil { a["format"] = "json" }
    return JSONValue.object(a).description
}

/// Copies and frees a C output buffer that librados or libcephfs allocated.
func takeBuffer(_ ptr: UnsafeMutablePointer<CChar>?, _ len: Int, free: (UnsafeMutablePointer<CChar>) -> Void) -> [UInt8] {
    guard let ptr else { return [] }
    defer { free(ptr) }
    return Array(UnsafeRawBufferPointer(start: ptr, count: len))
}
