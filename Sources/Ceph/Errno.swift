#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX error number, as librados and libcephfs return them (negated).
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let EPERM = Errno(rawValue: 1)
    public static let ENOENT = Errno(rawValue: 2)
    public static let EINTR = Errno(rawValue: 4)
    public static let EIO = Errno(rawValue: 5)
    public static let E2BIG = Errno(rawValue: 7)
    public static let EBADF = Errno(rawValue: 9)
    public static let EAGAIN = Errno(rawValue: 11)
    public static let ENOMEM = Errno(rawValue: 12)
    public static let EACCES = Errno(rawValue: 13)
    public static let EBUSY = Errno(rawValue: 16)
    public static let EEXIST = Errno(rawValue: 17)
    public static let EXDEV = Errno(rawValue: 18)
    public static let ENOTDIR = Errno(rawValue: 20)
    public static let EISDIR = Errno(rawValue: 21)
    public static let EINVAL = Errno(rawValue: 22)
    public static let EFBIG = Errno(rawValue: 27)
    public static let ENOSPC = Errno(rawValue: 28)
    public static let EROFS = Errno(rawValue: 30)
    public static let ERANGE = Errno(rawValue: 34)
    public static let ENAMETOOLONG = Errno(rawValue: 36)
    public static let ENOSYS = Errno(rawValue: 38)
    public static let ENOTEMPTY = Errno(rawValue: 39)
    public static let ELOOP = Errno(rawValue: 40)
    public static let ENODATA = Errno(rawValue: 61)
    public static let EOPNOTSUPP = Errno(rawValue: 95)
    public static let ECONNRESET = Errno(rawValue: 104)
    public static let ENOTCONN = Errno(rawValue: 107)
    public static let ESHUTDOWN = Errno(rawValue: 108)
    public static let ETIMEDOUT = Errno(rawValue: 110)
    public static let ECONNREFUSED = Errno(rawValue: 111)
    public static let EDQUOT = Errno(rawValue: 122)
    public static let ECANCELED = Errno(rawValue: 125)

    private static let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 4: "EINTR", 5: "EIO", 7: "E2BIG", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM",
        13: "EACCES", 16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
        27: "EFBIG", 28: "ENOSPC", 30: "EROFS", 34: "ERANGE", 36: "ENAMETOOLONG", 38: "ENOSYS",
        39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA", 95: "EOPNOTSUPP", 104: "ECONNRESET", 107: "ENOTCONN",
        108: "ESHUTDOWN", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 122: "EDQUOT", 125: "ECANCELED",
    ]

    /// The symbolic name, such as `ENOENT`, or `E<n>` for numbers outside the table.
    public var name: String { Errno.names[rawValue] ?? "E\(rawValue)" }

    /// The C library's message for this number.
    public var message: String { String(cString: strerror(rawValue)) }

    public var description: String { "\(message) (\(name))" }

    /// Lets `catch Errno.ENOENT` match a `CephError` carrying that number.
    public static func ~= (lhs: Errno, rhs: any Error) -> Bool {
        switch rhs {
        case let e as CephError: e.errno == lhs
        case let e as Errno: e == lhs
        default: false
        }
    }
}
