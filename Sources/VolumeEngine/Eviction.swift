import Ceph
import Dispatch
import Foundation
import JSONValue

extension VolumeEngine {
    /// Evicts the sessions of `authID` (only those mounting `volume`, when
    /// given) from every active MDS rank, in parallel. Waits up to `timeout`
    /// seconds for ranks that are not yet active.
    public func evict(authID: String, volume: VolumePath? = nil, timeout: Double = 30) throws {
        try Identifier.validateAuthID(authID)
        var filters = ["auth_name=\(authID)"]
        if let volume { filters.append("client_metadata.root=\(layout.volumePath(volume))") }
        try evictSessions(filters: filters, timeout: timeout)
    }

    /// Sends `session evict` with `filters` to every rank of the file system.
    ///
    /// Every rank in the map's `in` set is covered, not only those up now: a
    /// failed or replaying rank still has the sessions in its journal and
    /// brings them back when it becomes active. Each rank is waited for
    /// until it is active (or clientreplay), then told to evict; when its
    /// daemon changes meanwhile (a failover), the new one is told instead.
    func evictSessions(filters: [String], timeout: Double) throws {
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
                    try evictOnRank(rank: rank, filters: filters, deadline: deadline)
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
        let spec = filters.joined(separator: ", ")
        if failures.allSatisfy(\.isTimeout) {
            throw VolumeError(.clusterTimeout, "timed out evicting clients with \(spec): " + failures.map(\.message).joined(separator: "; "), errno: .ETIMEDOUT)
        }
        throw VolumeError(.evictionError, "Failed to evict client with \(spec): " + failures.map(\.message).joined(separator: "; "))
    }

    private func evictOnRank(rank: Int, filters: [String], deadline: Date) throws {
        let filterValues = filters.map { JSONValue.string($0) }
        while true {
            let map = try mdsMap()
            if let gid = map["up"]?["mds_\(rank)"]?.int64Value {
                let state = map["info"]?["gid_\(gid)"]?["state"]?.stringValue
                if state == "up:active" || state == "up:clientreplay" {
                    let sent = try ignoring(.ETIMEDOUT) { () throws(CephError) in
                        try fs.mdsCommand(String(gid), ["prefix": "session evict", "filters": .array(filterValues)])
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

/// Per-rank outcomes; a rank that has not reported counts as timed out.
private final class RankResults: @unchecked Sendable {
    struct Failure { let message: String; let isTimeout: Bool }
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
