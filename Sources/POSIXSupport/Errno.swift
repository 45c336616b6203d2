import Glibc

/// A POSIX error number: the one errno type of the tree (librados and
/// libcephfs return them negated; sockets set them). The numbers are the C
/// library's, not written out here.
public struct Errno: RawRepresentable, Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    public static let EPERM = Errno(rawValue: Glibc.EPERM)
    public static let ENOENT = Errno(rawValue: Glibc.ENOENT)
    public static let EINTR = Errno(rawValue: Glibc.EINTR)
    public static let EIO = Errno(rawValue: Glibc.EIO)
    public static let E2BIG = Errno(rawValue: Glibc.E2BIG)
    public static let EBADF = Errno(rawValue: Glibc.EBADF)
    public static let EAGAIN = Errno(rawValue: Glibc.EAGAIN)
    public static let ENOMEM = Errno(rawValue: Glibc.ENOMEM)
    public static let EACCES = Errno(rawValue: Glibc.EACCES)
    public static let EBUSY = Errno(rawValue: Glibc.EBUSY)
    public static let EEXIST = Errno(rawValue: Glibc.EEXIST)
    public static let EXDEV = Errno(rawValue: Glibc.EXDEV)
    public static let ENOTDIR = Errno(rawValue: Glibc.ENOTDIR)
    public static let EISDIR = Errno(rawValue: Glibc.EISDIR)
    public static let EINVAL = Errno(rawValue: Glibc.EINVAL)
    public static let EFBIG = Errno(rawValue: Glibc.EFBIG)
    public static let ENOSPC = Errno(rawValue: Glibc.ENOSPC)
    public static let EROFS = Errno(rawValue: Glibc.EROFS)
    public static let ERANGE = Errno(rawValue: Glibc.ERANGE)
    public static let ENAMETOOLONG = Errno(rawValue: Glibc.ENAMETOOLONG)
    public static let ENOSYS = Errno(rawValue: Glibc.ENOSYS)
    public static let ENOTEMPTY = Errno(rawValue: Glibc.ENOTEMPTY)
    public static let ELOOP = Errno(rawValue: Glibc.ELOOP)
    public static let ENODATA = Errno(rawValue: Glibc.ENODATA)
    public static let EOVERFLOW = Errno(rawValue: Glibc.EOVERFLOW)
    public static let EOPNOTSUPP = Errno(rawValue: Glibc.EOPNOTSUPP)
    public static let ECONNRESET = Errno(rawValue: Glibc.ECONNRESET)
    public static let ENOTCONN = Errno(rawValue: Glibc.ENOTCONN)
    public static let ESHUTDOWN = Errno(rawValue: Glibc.ESHUTDOWN)
    public static let ETIMEDOUT = Errno(rawValue: Glibc.ETIMEDOUT)
    public static let ECONNREFUSED = Errno(rawValue: Glibc.ECONNREFUSED)
    public static let EDQUOT = Errno(rawValue: Glibc.EDQUOT)
    public static let ECANCELED = Errno(rawValue: Glibc.ECANCELED)
    public static let EWOULDBLOCK = Errno(rawValue: Glibc.EWOULDBLOCK)
    public static let EADDRINUSE = Errno(rawValue: Glibc.EADDRINUSE)
    public static let ECONNABORTED = Errno(rawValue: Glibc.ECONNABORTED)

    private static let names: [Int32: String] = Dictionary(uniqueKeysWithValues: [
        (Glibc.EPERM, "EPERM"), (Glibc.ENOENT, "ENOENT"), (Glibc.EINTR, "EINTR"), (Glibc.EIO, "EIO"),
        (Glibc.E2BIG, "E2BIG"), (Glibc.EBADF, "EBADF"), (Glibc.EAGAIN, "EAGAIN"), (Glibc.ENOMEM, "ENOMEM"),
        (Glibc.EACCES, "EACCES"), (Glibc.EBUSY, "EBUSY"), (Glibc.EEXIST, "EEXIST"), (Glibc.EXDEV, "EXDEV"),
        (Glibc.ENOTDIR, "ENOTDIR"), (Glibc.EISDIR, "EISDIR"), (Glibc.EINVAL, "EINVAL"), (Glibc.EFBIG, "EFBIG"),
        (Glibc.ENOSPC, "ENOSPC"), (Glibc.EROFS, "EROFS"), (Glibc.ERANGE, "ERANGE"),
        (Glibc.ENAMETOOLONG, "ENAMETOOLONG"), (Glibc.ENOSYS, "ENOSYS"), (Glibc.ENOTEMPTY, "ENOTEMPTY"),
        (Glibc.ELOOP, "ELOOP"), (Glibc.ENODATA, "ENODATA"), (Glibc.EOVERFLOW, "EOVERFLOW"),
        (Glibc.EOPNOTSUPP, "EOPNOTSUPP"),
        (Glibc.ECONNRESET, "ECONNRESET"), (Glibc.ENOTCONN, "ENOTCONN"), (Glibc.ESHUTDOWN, "ESHUTDOWN"),
        (Glibc.ETIMEDOUT, "ETIMEDOUT"), (Glibc.ECONNREFUSED, "ECONNREFUSED"), (Glibc.EDQUOT, "EDQUOT"),
        (Glibc.ECANCELED, "ECANCELED"), (Glibc.EADDRINUSE, "EADDRINUSE"), (Glibc.ECONNABORTED, "ECONNABORTED"),
    ])

    /// The symbolic name, such as `ENOENT`, or `E<n>` for numbers outside the table.
    public var name: String { Errno.names[rawValue] ?? "E\(rawValue)" }

    /// The C library's message for this number.
    public var message: String { String(cString: strerror(rawValue)) }

    public var description: String { "\(message) (\(name))" }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(rawValue: Glibc.errno) }

    /// Lets `catch Errno.ENOENT` match a thrown `Errno`.
    public static func ~= (lhs: Errno, rhs: any Error) -> Bool {
        switch rhs {
        case let e as Errno: e == lhs
        case let e as any ErrnoCarrying: e.errno == lhs
        default: false
        }
    }
}

/// An error that carries an errno (a Ceph call's or a socket's), so
/// `catch Errno.ENOENT` matches it.
public protocol ErrnoCarrying: Error {
    var errno: Errno { get }
}
