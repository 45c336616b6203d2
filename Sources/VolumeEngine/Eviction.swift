import Ceph
import Dispatch
import Foundation
import JSONValue

extension VolumeEngine {
    /// Evicts the sessions of `authID` (only those mounting `volume` or a
    /// directory inside it, when given) from every active MDS rank, in
    /// parallel. Waits up to `timeout` seconds for ranks that are not yet active.
    public func evict(authID: String, volume: VolumePath? = nil, timeout: Double = 30) throws(VolumeError) {
        try engineCall {
            // Evicting our own ID would evict this daemon's session (and every
            // other daemon of the service); refused as authorize refuses it.
            if authID == config.cluster.id {
                throw VolumeError(
                    .volumeClientError, "auth ID: \(authID) is the service's own identity and cannot be evicted", errno: .EPERM)
            }
            try evictSessions(filters: ["auth_name=\(authID)"], within: volume.map { layout.volumePath($0) }, timeout: timeout)
        }
    }

    /// Sends `session evict` with `filters` to every rank of the file system;
    /// with `root`, only to the sessions that mounted `root` or a directory
    /// under it (see `evictWithin`).
    ///
    /// Every rank in the map's `in` set is covered, not only those up now: a
    /// failed or replaying rank still has the sessions in its journal and
    /// brings them back when it becomes active. Each rank is waited for
    /// until it is active (or clientreplay), then told to evict; when its
    /// daemon changes meanwhile (a failover), the new one is told instead.
    func evictSessions(filters: [String], within root: String? = nil, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let map = try mdsMap()
        var found = Set((map["in"]?.arrayValue ?? []).compactMap { $0.int64Value.map(Int.init) })
        for name in (map["up"]?.objectValue ?? [:]).keys where name.hasPrefix("mds_") {
            if let rank = Int(name.dropFirst(4)) { found.insert(rank) }
        }
        let ranks = found.sorted()
        let results = RankResults(count: ranks.count)
        // A thread per rank, and a bounded wait: an MDS command to a daemon that
        // stopped answering can block far past the deadline inside libcephfs.
        let group = DispatchGroup()
        for (i, rank) in ranks.enumerated() {
            group.enter()
            Thread.detachNewThread { [self] in
                do {
                    try evictOnRank(rank: rank, filters: filters, within: root, deadline: deadline)
                    results.set(i, nil, isTimeout: false)
                } catch {
                    results.set(i, "rank \(rank): \(error)", isTimeout: (error as? VolumeError)?.kind == .clusterTimeout)
                }
                group.leave()
            }
        }
        _ = group.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow) + 0.5)
        let failures = results.failures
        guard !failures.isEmpty else { return }
        let spec = (filters + (root.map { ["client_metadata.root=\($0)"] } ?? [])).joined(separator: ", ")
        if failures.allSatisfy(\.isTimeout) {
            throw VolumeError(
                .clusterTimeout, "timed out evicting clients with \(spec): " + failures.map(\.message).joined(separator: "; "),
                errno: .ETIMEDOUT)
        }
        throw VolumeError(.evictionError, "Failed to evict client with \(spec): " + failures.map(\.message).joined(separator: "; "))
    }

    private func evictOnRank(rank: Int, filters: [String], within root: String?, deadline: Date) throws {
        let filterValues = filters.map { JSONValue.string($0) }
        while true {
            let map = try mdsMap()
            if let gid = map["up"]?["mds_\(rank)"]?.int64Value {
                let state = map["info"]?["gid_\(gid)"]?["state"]?.stringValue
                if state == "up:active" || state == "up:clientreplay" {
                    let sent: Void? = try ignoring(.ETIMEDOUT) { () throws(CephError) in
                        if let root {
                            try evictWithin(root, gid: gid, filters: filters)
                        } else {
                            _ = try fs.mdsCommand(String(gid), ["prefix": "session evict", "filters": .array(filterValues)])
                        }
                    }
                    if sent != nil { return }
                    // The daemon went laggy: look at the map again, within the deadline.
                }
            } else if !(map["in"]?.arrayValue ?? []).contains(where: { $0.int64Value == Int64(rank) }) {
                logger.info("evict: rank \(rank) was removed from the file system")
                return
            }
            if Date() >= deadline {
                throw VolumeError(.clusterTimeout, "rank \(rank) did not become active in time", errno: .ETIMEDOUT)
            }
            Thread.sleep(forTimeInterval: min(0.5, max(0.05, deadline.timeIntervalSinceNow)))
        }
    }
}

extension VolumeEngine {
    /// Evicts, on the MDS daemon `gid`, the sessions matching `filters` whose
    /// mount root is `root` or lies under it. The MDS's own filter on
    /// `client_metadata.root` matches the root exactly, and a client given
    /// access to a volume may mount any directory inside it: so the
    /// sessions are listed and evicted one by one, by id, with `filters`
    /// still applied by the MDS (the auth name is its to check).
    func evictWithin(_ root: String, gid: Int64, filters: [String]) throws(CephError) {
        let sessions = try fs.mdsCommand(String(gid), ["prefix": "session ls"]).json(operation: "mds session ls")?.arrayValue ?? []
        let authID = filters.first { $0.hasPrefix("auth_name=") }.map { String($0.dropFirst("auth_name=".count)) }
        for session in sessions {
            guard let id = session["id"]?.int64Value,
                let mounted = session["client_metadata"]?["root"]?.stringValue, Self.path(mounted, isWithin: root)
            else { continue }
            // A client names its entity in its metadata; skip the round trip for other IDs.
            if let authID, let entity = session["client_metadata"]?["entity_id"]?.stringValue, entity != authID { continue }
            let values = (filters + ["id=\(id)"]).map { JSONValue.string($0) }
            _ = try fs.mdsCommand(String(gid), ["prefix": "session evict", "filters": .array(values)])
        }
    }

    /// Whether `path` is `root` or below it, compared component by
    /// component: `/a/v` holds `/a/v/sub`, not `/a/v2`.
    static func path(_ path: String, isWithin root: String) -> Bool {
        let p = path.split(separator: "/", omittingEmptySubsequences: true)
        let r = root.split(separator: "/", omittingEmptySubsequences: true)
        return p.count >= r.count && zip(p, r).allSatisfy { $0 == $1 }
    }
}

/// Per-rank outcomes; a rank that has not reported counts as timed out.
private final class RankResults: @unchecked Sendable {
    struct Failure {
        let message: String
        let isTimeout: Bool
    }
    private let lock = NSLock()
    private var slots: [Failure?]
    private var done: [Bool]

    init(count: Int) {
        slots = Array(repeating: nil, count: count)
        done = Array(repeating: false, count: count)
    }

    /// Records a rank's outcome: nil message for success.
    func set(_ i: Int, _ message: String?, isTimeout: Bool) {
        lock.lock()
        slots[i] = message.map { Failure(message: $0, isTimeout: isTimeout) }
        done[i] = true
        lock.unlock()
    }

    var failures: [Failure] {
        lock.lock()
        defer { lock.unlock() }
        return slots.indices.compactMap { i in
            done[i] ? slots[i] : Failure(message: "rank #\(i) did not answer in time", isTimeout: true)
        }
    }
}
