import Foundation
import JSONValue
import VolumeServer

/// Every option of the daemon, as the config file holds it (JSON, with the
/// keys below). Command-line flags override the file; absent keys keep the
/// defaults shown here.
struct Configuration {
    var socket: String?
    var conf: String?
    var id: String?
    var cluster = "ceph"
    var fsName: String?
    var volumePrefix: String?
    var namespacePrefix: String?
    var instance: String?
    var socketGroup: String?
    var allowUIDs: [UInt32] = []
    var allowGIDs: [UInt32] = []
    var maxLineLength = 16 * 1024 * 1024
    var maxConnections = 1024
    /// nil: half of maxConnections.
    var maxConnectionsPerPeer: Int?
    var lineBufferBudget = 128 * 1024 * 1024
    var maxInFlight = 128
    var idleTimeout = 600.0
    var slowWriterTimeout = 30.0
    /// nil: 4 × clusterTimeout, as a call makes a few cluster round trips.
    var requestTimeout: Double?
    var drainTimeout = 30.0
    var clusterTimeout = 15
    var busyPoll = 50
    var logLevel = "info"

    /// The config file keys, in the order the default file lists them.
    static let keys = [
        "socket", "conf", "id", "cluster", "fs_name", "volume_prefix", "namespace_prefix", "instance",
        "socket_group", "allow_uids", "allow_gids", "max_line_length", "max_connections", "max_connections_per_peer",
        "line_buffer_budget", "max_in_flight",
        "idle_timeout", "slow_writer_timeout", "request_timeout", "drain_timeout", "cluster_timeout", "busy_poll_us",
        "log_level",
    ]

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads a JSON config file; unknown keys are refused so a typo is not ignored.
    static func load(path: String) throws -> Configuration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Invalid(description: "cannot read config file \(path)")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse([UInt8](data))
        } catch {
            throw Invalid(description: "config file \(path) is not valid JSON: \(error)")
        }
        guard let o = value.objectValue else { throw Invalid(description: "config file \(path) must hold a JSON object") }
        var c = Configuration()
        for (key, v) in o {
            func str() throws -> String {
                guard let s = v.stringValue else { throw Invalid(description: "\(path): '\(key)' must be a string") }
                return s
            }
            func int() throws -> Int {
                guard let i = v.int64Value, i >= 0 else { throw Invalid(description: "\(path): '\(key)' must be a non-negative integer") }
                return Int(i)
            }
            func seconds() throws -> Double {
                guard case .number(let n) = v, let d = n.doubleValue, d >= 0 else {
                    throw Invalid(description: "\(path): '\(key)' must be a non-negative number of seconds")
                }
                return d
            }
            func ids() throws -> [UInt32] {
                guard let a = v.arrayValue else { throw Invalid(description: "\(path): '\(key)' must be an array of integers") }
                return try a.map { e in
                    guard let i = e.int64Value, let u = UInt32(exactly: i) else {
                        throw Invalid(description: "\(path): '\(key)' must be an array of integers")
                    }
                    return u
                }
            }
            if v.isNull { continue }
            switch key {
            case "socket": c.socket = try str()
            case "conf": c.conf = try str()
            case "id": c.id = try str()
            case "cluster": c.cluster = try str()
            case "fs_name": c.fsName = try str()
            case "volume_prefix": c.volumePrefix = try str()
            case "namespace_prefix": c.namespacePrefix = try str()
            case "instance": c.instance = try str()
            case "socket_group": c.socketGroup = try str()
            case "allow_uids": c.allowUIDs = try ids()
            case "allow_gids": c.allowGIDs = try ids()
            case "max_line_length": c.maxLineLength = try int()
            case "max_connections": c.maxConnections = try int()
            case "max_connections_per_peer": c.maxConnectionsPerPeer = try int()
            case "line_buffer_budget": c.lineBufferBudget = try int()
            case "max_in_flight": c.maxInFlight = try int()
            case "idle_timeout": c.idleTimeout = try seconds()
            case "slow_writer_timeout": c.slowWriterTimeout = try seconds()
            case "request_timeout": c.requestTimeout = try seconds()
            case "drain_timeout": c.drainTimeout = try seconds()
            case "cluster_timeout": c.clusterTimeout = try int()
            case "busy_poll_us": c.busyPoll = try int()
            case "log_level": c.logLevel = try str()
            default: throw Invalid(description: "\(path): unknown option '\(key)'")
            }
        }
        return c
    }

    /// A group given by name or number.
    static func resolveGroup(_ group: String) throws -> gid_t {
        if let n = gid_t(group) { return n }
        guard let g = getgrnam(group) else { throw Invalid(description: "unknown group '\(group)'") }
        return g.pointee.gr_gid
    }
}
