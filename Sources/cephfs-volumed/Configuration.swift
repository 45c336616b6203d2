import Foundation
import JSONValue
import RPCServer

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

    /// Every option: its config file key, where the flag and the file's value
    /// land, and what the file must hold. In the order the default file lists them.
    static var options: [Option] {
        [
            Option("socket", \.socket, \.socket, .string),
            Option("conf", \.conf, \.conf, .string),
            Option("id", \.id, \.id, .string),
            Option("cluster", \.cluster, \.cluster, .string),
            Option("fs_name", \.fsName, \.fsName, .string),
            Option("volume_prefix", \.volumePrefix, \.volumePrefix, .string),
            Option("namespace_prefix", \.namespacePrefix, \.namespacePrefix, .string),
            Option("instance", \.instance, \.instance, .string),
            Option("socket_group", \.socketGroup, \.socketGroup, .string),
            Option("allow_uids", \.allowUIDs, \.allowUIDs, .ids),
            Option("allow_gids", \.allowGIDs, \.allowGIDs, .ids),
            Option("max_line_length", \.maxLineLength, \.maxLineLength, .count),
            Option("max_connections", \.maxConnections, \.maxConnections, .count),
            Option("max_connections_per_peer", \.maxConnectionsPerPeer, \.maxConnectionsPerPeer, .count),
            Option("line_buffer_budget", \.lineBufferBudget, \.lineBufferBudget, .count),
            Option("max_in_flight", \.maxInFlight, \.maxInFlight, .count),
            Option("idle_timeout", \.idleTimeout, \.idleTimeout, .seconds),
            Option("slow_writer_timeout", \.slowWriterTimeout, \.slowWriterTimeout, .seconds),
            Option("request_timeout", \.requestTimeout, \.requestTimeout, .seconds),
            Option("drain_timeout", \.drainTimeout, \.drainTimeout, .seconds),
            Option("cluster_timeout", \.clusterTimeout, \.clusterTimeout, .count),
            Option("busy_poll_us", \.busyPollUs, \.busyPoll, .count),
            Option("log_level", \.logLevel, \.logLevel, .string),
        ]
    }

    /// The config file keys, in the order the default file lists them.
    static var keys: [String] { options.map(\.key) }

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
            if v.isNull { continue }
            guard let option = options.first(where: { $0.key == key }) else {
                throw Invalid(description: "\(path): unknown option '\(key)'")
            }
            guard option.read(v, &c) else { throw Invalid(description: "\(path): '\(key)' \(option.expected)") }
        }
        return c
    }

    /// The file's settings (or the defaults) with the flags given on top.
    func overlaid(with flags: Daemon) -> Configuration {
        var c = self
        for option in Self.options { option.overlay(flags, &c) }
        return c
    }

    /// A group given by name or number.
    static func resolveGroup(_ group: String) throws -> gid_t {
        if let n = gid_t(group) { return n }
        guard let g = getgrnam(group) else { throw Invalid(description: "unknown group '\(group)'") }
        return g.pointee.gr_gid
    }
}

extension Configuration {
    /// One daemon option. The flag itself (its name and help) is declared in
    /// `Daemon`; a flag that is given overrides the file.
    struct Option {
        let key: String
        /// What the file's value must be, as the error message says it.
        let expected: String
        /// Stores the file's value; false when it has the wrong type.
        let read: (JSONValue, inout Configuration) -> Bool
        let overlay: (Daemon, inout Configuration) -> Void

        private init<T>(_ key: String, _ flag: KeyPath<Daemon, T?>, _ kind: Kind<T>, set: @escaping (inout Configuration, T) -> Void) {
            self.key = key
            expected = kind.expected
            read = { v, c in
                guard let x = kind.parse(v) else { return false }
                set(&c, x)
                return true
            }
            overlay = { d, c in if let x = d[keyPath: flag] { set(&c, x) } }
        }

        init<T>(_ key: String, _ flag: KeyPath<Daemon, T?>, _ field: WritableKeyPath<Configuration, T>, _ kind: Kind<T>) {
            self.init(key, flag, kind) { $0[keyPath: field] = $1 }
        }

        /// An option without a default.
        init<T>(_ key: String, _ flag: KeyPath<Daemon, T?>, _ field: WritableKeyPath<Configuration, T?>, _ kind: Kind<T>) {
            self.init(key, flag, kind) { $0[keyPath: field] = $1 }
        }

        /// A repeatable flag: given when not empty.
        init(_ key: String, _ flag: KeyPath<Daemon, [UInt32]>, _ field: WritableKeyPath<Configuration, [UInt32]>, _ kind: Kind<[UInt32]>) {
            self.init(key, flag.appending(path: \.nonEmpty), field, kind)
        }
    }

    /// A type of value in the config file, and its check.
    struct Kind<T> {
        let expected: String
        let parse: (JSONValue) -> T?
    }
}

extension Configuration.Kind<String> {
    static var string: Self { .init(expected: "must be a string") { $0.stringValue } }
}

extension Configuration.Kind<Int> {
    static var count: Self {
        .init(expected: "must be a non-negative integer") { v in v.int64Value.flatMap { $0 >= 0 ? Int($0) : nil } }
    }
}

extension Configuration.Kind<Double> {
    static var seconds: Self {
        .init(expected: "must be a non-negative number of seconds") { v in
            guard case .number(let n) = v, let d = n.doubleValue, d >= 0 else { return nil }
            return d
        }
    }
}

extension Configuration.Kind<[UInt32]> {
    static var ids: Self {
        .init(expected: "must be an array of integers") { v in
            guard let a = v.arrayValue else { return nil }
            var ids: [UInt32] = []
            for e in a {
                guard let i = e.int64Value, let u = UInt32(exactly: i) else { return nil }
                ids.append(u)
            }
            return ids
        }
    }
}

extension Array {
    fileprivate var nonEmpty: Self? { isEmpty ? nil : self }
}
