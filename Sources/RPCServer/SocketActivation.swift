#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// systemd socket activation (sd_listen_fds(3)): the passed socket is fd 3.
enum SocketActivation {
    static func listenFD() -> Int32? {
        guard let pidText = getenv("LISTEN_PID").map({ String(cString: $0) }),
            let pid = Int32(pidText), pid == getpid(),
            let countText = getenv("LISTEN_FDS").map({ String(cString: $0) }),
            let count = Int(countText), count >= 1
        else { return nil }
        // Children must not think the sockets are theirs.
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        let fd: Int32 = 3
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }
}
