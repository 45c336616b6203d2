import Ceph
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension FaultTests {
    /// Start-up recovery must not wait for a lock another client holds: a
    /// client killed while it held or waited for an auth metadata lock keeps
    /// it until the MDS drops its session (up to `session_autoclose`, 300 s).
    @Suite("Start-up", .enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    struct StartupTests {
        @Test("start-up recovery skips an auth ID whose lock another client holds, and the daemon serves")
        func startupSkipsALockAnotherClientHolds() throws {
            let run = tag()
            // A prefix of its own, so no other daemon's start-up meets the held lock.
            let prefix = "/volumes-startlock-\(run)"
            let admin = ClusterAdmin.shared
            try admin.fs.mkdir(prefix, mode: 0o755)
            let id = "held-\(run)"
            let file = try admin.fs.open("\(prefix)/$\(id).meta", flags: O_CREAT | O_RDWR, mode: 0o600)
            defer { file.close() }
            let meta =
                #"{"version": 5, "compat_version": 1, "dirty": true, "tenant_id": null, "subvolumes": {"None/v": {"access_level": "rw", "dirty": true}}}"#
            try file.write(Array(meta.utf8), offset: 0)
            let owner = UInt64.random(in: 1...UInt64.max)
            try file.flock(.exclusive, owner: owner)
            defer { try? file.flock(.unlock, owner: owner) }

            let daemon = try VolumedProcess(
                instance: "startlock-\(run)", extraArguments: ["--volume-prefix", prefix], waitReady: false)
            defer { _ = daemon.stop() }
            let ready = Result { try daemon.waitUntilReady(timeout: 30) }
            #expect((try? ready.get()) != nil, "not serving while another client holds \(id)'s lock: \(ready)\n\(daemon.logTail())")
            #expect(daemon.logTail(200).contains("recover: skipped 1 auth ID(s) locked by another client: \(id)"), "\(daemon.logTail())")
        }
    }
}
