import CRados
import JSONValue

/// How to reach a cluster.
public struct ClusterOptions: Sendable {
    public var confPath: String?
    /// The cephx name without the `client.` prefix.
    public var id: String
    public var clusterName: String
    /// Whole seconds (Ceph's `secs` options) before a mon command, an OSD op
    /// or a CephFS mount gives up.
    public var monOpTimeout: Int
    public var osdOpTimeout: Int
    public var mountTimeout: Int
    /// Further configuration, applied after the conf file.
    public var extraConfig: [(String, String)]
    /// Settings applied only where the conf file left the library's default
    /// (the first value) in place: `(option, libraryDefault, value)`.
    public var defaultConfig: [(String, String, String)] = []

    public init(
        confPath: String?, id: String, clusterName: String = "ceph",
        monOpTimeout: Int = 15, osdOpTimeout: Int = 15, mountTimeout: Int = 15,
        extraConfig: [(String, String)] = []
    ) {
        self.confPath = confPath
        self.id = id
        self.clusterName = clusterName
        self.monOpTimeout = monOpTimeout
        self.osdOpTimeout = osdOpTimeout
        self.mountTimeout = mountTimeout
        self.extraConfig = extraConfig
    }
}

/// A connected librados cluster handle.
///
/// Thread safety: librados handles are thread-safe, and every method here may
/// be called from any thread. `shutdown()` waits for calls in flight and makes
/// later calls fail with `ESHUTDOWN`; mounts and I/O contexts made from this
/// handle keep it alive, and must be closed first.
public final class RadosCluster: @unchecked Sendable {
    let handle: rados_t
    private let guard_ = LifecycleGuard()
    public let options: ClusterOptions

    public init(_ options: ClusterOptions) throws(CephError) {
        self.options = options
        var h: rados_t?
        try check(rados_create2(&h, options.clusterName, "client.\(options.id)", 0), "rados_create2", "client.\(options.id)")
        guard let h else { throw CephError(errno: .ENOMEM, operation: "rados_create2") }
        do throws(CephError) {
            if let conf = options.confPath {
                try check(rados_conf_read_file(h, conf), "read conf", conf)
            }
            let settings: [(String, String)] =
                [
                    ("rados_mon_op_timeout", String(options.monOpTimeout)),
                    ("rados_osd_op_timeout", String(options.osdOpTimeout)),
                    ("client_mount_timeout", String(options.mountTimeout)),
                ] + options.extraConfig
            for (key, value) in settings {
                try check(rados_conf_set(h, key, value), "conf_set", key)
            }
            for (key, libraryDefault, value) in options.defaultConfig {
                var buf = [CChar](repeating: 0, count: 256)
                guard rados_conf_get(h, key, &buf, buf.count) == 0,
                    String(decoding: buf.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self) == libraryDefault
                else { continue }
                try check(rados_conf_set(h, key, value), "conf_set", key)
            }
            try check(rados_connect(h), "connect to cluster", options.clusterName)
        } catch {
            rados_shutdown(h)
            throw error
        }
        handle = h
    }

    deinit { shutdown() }

    /// Disconnects. Waits for calls in flight; safe to call more than once.
    public func shutdown() {
        let h = handle
        guard_.close { rados_shutdown(h) }
    }

    @discardableResult
    func use<T>(_ operation: String, _ body: (rados_t) throws(CephError) -> T) throws(CephError) -> T {
        let h = handle
        return try guard_.use(operation) { () throws(CephError) -> T in try body(h) }
    }

    /// A configuration value as the client sees it.
    public func confGet(_ option: String) throws(CephError) -> String {
        try use("conf_get") { h throws(CephError) in
            var buf = [CChar](repeating: 0, count: 4096)
            try check(rados_conf_get(h, option, &buf, buf.count), "conf_get", option)
            return String(decoding: buf.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
        }
    }

    /// The cluster's fsid.
    public func fsid() throws(CephError) -> String {
        try use("cluster_fsid") { h throws(CephError) in
            var buf = [CChar](repeating: 0, count: 64)
            try check(rados_cluster_fsid(h, &buf, buf.count), "cluster_fsid")
            return String(decoding: buf.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self)
        }
    }

    /// The global id of this client's session with the mons.
    public func instanceID() throws(CephError) -> UInt64 {
        try use("get_instance_id") { h in rados_get_instance_id(h) }
    }

    /// Blocks until this client has the newest OSD map, so that a pool another
    /// client just created is visible.
    public func waitForLatestOSDMap() throws(CephError) {
        try use("wait_for_latest_osdmap") { h throws(CephError) in
            try check(rados_wait_for_latest_osdmap(h), "wait_for_latest_osdmap")
        }
    }

    /// Sends a command to the mons. `args` holds `prefix` and the command's
    /// arguments; `format: json` is added.
    public func monCommand(_ args: [String: JSONValue], input: [UInt8] = []) throws(CephError) -> CommandOutput {
        try CallCounter.timed(\.mon, "mon \(args["prefix"]?.stringValue ?? "?")") { () throws(CephError) -> CommandOutput in
            try command(args, input: input, kind: "mon command", send: rados_mon_command)
        }
    }

    /// Sends a command to the active mgr.
    public func mgrCommand(_ args: [String: JSONValue], input: [UInt8] = []) throws(CephError) -> CommandOutput {
        try CallCounter.timed(\.mgr, "mgr \(args["prefix"]?.stringValue ?? "?")") { () throws(CephError) -> CommandOutput in
            try command(args, input: input, kind: "mgr command", send: rados_mgr_command)
        }
    }

    /// A mon command whose JSON reply is decoded; nil when the reply is empty.
    public func monJSON(_ args: [String: JSONValue]) throws(CephError) -> JSONValue? {
        let prefix = args["prefix"]?.stringValue ?? "?"
        return try monCommand(args).json(operation: "mon command '\(prefix)'")
    }

    private typealias Sender = (
        rados_t?, UnsafeMutablePointer<UnsafePointer<CChar>?>?, Int, UnsafePointer<CChar>?, Int,
        UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, UnsafeMutablePointer<Int>?,
        UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, UnsafeMutablePointer<Int>?
    ) -> Int32

    private func command(
        _ args: [String: JSONValue], input: [UInt8], kind: String, send: Sender
    ) throws(CephError) -> CommandOutput {
        let prefix = args["prefix"]?.stringValue ?? "?"
        let cmd = encodeCommand(args)
        return try use(kind) { h throws(CephError) in
            var outbuf: UnsafeMutablePointer<CChar>?
            var outlen = 0
            var outs: UnsafeMutablePointer<CChar>?
            var outslen = 0
            let r: Int32 = cmd.withCString { c in
                var cmds: [UnsafePointer<CChar>?] = [c]
                return input.withUnsafeBufferPointer { inBuf in
                    inBuf.withMemoryRebound(to: CChar.self) { inChars in
                        send(h, &cmds, 1, inChars.baseAddress, inChars.count, &outbuf, &outlen, &outs, &outslen)
                    }
                }
            }
            let data = takeBuffer(outbuf, outlen, free: rados_buffer_free)
            let status = String(decoding: takeBuffer(outs, outslen, free: rados_buffer_free), as: UTF8.self)
            if r < 0 {
                throw CephError(errno: Errno(rawValue: -r), operation: "\(kind) '\(prefix)'", detail: status)
            }
            return CommandOutput(data: data, status: status)
        }
    }

    /// An I/O context on `pool`, optionally restricted to a RADOS namespace.
    public func ioContext(pool: String, namespace: String? = nil) throws(CephError) -> IOContext {
        try IOContext(cluster: self, pool: pool, namespace: namespace)
    }
}
