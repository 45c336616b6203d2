/// A failed librados or libcephfs call, with its context.
///
/// `detail` is the status text a mon, mgr or MDS command returned. Command
/// inputs and outputs are never copied into it, so keys cannot leak through
/// an error's description.
public struct CephError: Error, Sendable, CustomStringConvertible {
    public let errno: Errno
    public let operation: String
    public let target: String?
    public let detail: String?

    public init(errno: Errno, operation: String, target: String? = nil, detail: String? = nil) {
        self.errno = errno
        self.operation = operation
        self.target = target
        self.detail = detail
    }

    public var description: String {
        var s = operation
        if let target { s += " \(target)" }
        s += ": \(errno)"
        if let detail, !detail.isEmpty { s += ": \(detail)" }
        return s
    }
}

/// Turns a C return value into a result: negative values are `-errno`.
@inline(__always)
@discardableResult
func check<I: SignedInteger>(_ result: I, _ operation: String, _ target: String? = nil) throws(CephError) -> I {
    if result < 0 {
        throw CephError(errno: Errno(rawValue: Int32(-result)), operation: operation, target: target)
    }
    return result
}

/// Runs `body`, treating a failure with errno `ignored` as success, as in
/// "remove it unless it is already gone".
@discardableResult
public func ignoring<T>(_ ignored: Errno, _ body: () throws(CephError) -> T) throws(CephError) -> T? {
    do {
        return try body()
    } catch {
        if error.errno == ignored { return nil }
        throw error
    }
}
