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

    /// Sends `session evict` with `filters` to every rank that holds a daemon.
    func evictSessions(filters: [String], timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let map = try mdsMap()
        var found: [(rank: Int, gid: Int64)] = []
        for (name, gid) in map["up"]?.objectValue ?? [:] {
            guard name.hasPrefix("mds_"), let rank = Int(name.dropFirst(4)), let g = gid.int64Value else { continue }
            found.append((rank, g))
        }
        let ranks = found
        let results = RankResults(count: ranks.count)
        DispatchQueue.concurrentPerform(iterations: ranks.count) { i in
            let (rank, gid) = ranks[i]
            do {
                try evictOnRank(rank: rank, gid: gid, filters: filters, deadline: deadline)
            } catch {
                results.set(i, "rank \(rank) (gid \(gid)): \(error)", isTimeout: (error as? VolumeError)?.kind == .clusterTimeout)
            }
        }
        let failures = results.failures
        guard !failures.isEmpty else { return }
        let spec = filters.joined(separator: ", ")
        if failures.allSatisfy(\.isTimeout) {
            throw VolumeError(.clusterTimeout, "timed out evicting clients with \(spec): " + failures.map(\.message).joined(separator: "; "), errno: .ETIMEDOUT)
        }
        throw VolumeError(.evictionError, "Failed to evict client with \(spec): " + failures.map(\.message).joined(separator: "; "))
    }

    private func evictOnRank(rank: Int, gid: Int64, filters: [String], deadline: Date) throws {
        while true {
            // Wait until the mons believe this daemon can take commands.
            while true {
                let map = try mdsMap()
                guard map["up"]?["mds_\(rank)"]?.int64Value == gid else {
                    logger.info("evict: rank \(rank) is no longer held by gid \(gid); its sessions went with it")
                    return
                }
                let state = map["info"]?["gid_\(gid)"]?["state"]?.stringValue
                if state == "up:active" || state == "up:clientreplay" { break }
                if Date() >= deadline {
                    throw VolumeError(.clusterTimeout, "rank \(rank) did not become active (state \(state ?? "unknown"))", errno: .ETIMEDOUT)
                }
                Thread.sleep(forTimeInterval: min(1, max(0.05, deadline.timeIntervalSinceNow)))
            }
            let filterValues = filters.map { JSONValue.string($0) }
            let sent = try ignoring(.ETIMEDOUT) { () throws(CephError) in
                try fs.mdsCommand(String(gid), ["prefix": "session evict", "filters": .array(filterValues)])
            }
            if sent != nil { return }
            // The daemon went laggy: wait for it again, within the deadline.
            if Date() >= deadline { throw VolumeError(.clusterTimeout, "rank \(rank) did not answer", errno: .ETIMEDOUT) }
        }
    }
}

private final class RankResults: @unchecked Sendable {
    struct Failure { let message: String; let isTimeout: Bool }
    private let lock = NSLock()
    private var slots: [Failure?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ message: String, isTimeout: Bool) {
        lock.lock()
        slots[i] = Failure(message: message, isTimeout: isTimeout)
        lock.unlock()
    }

    var failures: [Failure] {
        lock.lock()
        defer { lock.unlock() }
        return slots.compactMap { $0 }
    }
}
