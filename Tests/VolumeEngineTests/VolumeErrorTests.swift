import Ceph
import TestSupport
import Testing
import VolumeProtocol

@testable import VolumeEngine

/// The engine's public methods throw one typed error, whose kind is the
/// wire's `data.type`.
@Suite("VolumeError")
struct VolumeErrorTests {
    struct Unexpected: Error, CustomStringConvertible { var description: String { "boom" } }

    @Test(arguments: [
        (Errno.ETIMEDOUT, EngineErrorType.clusterTimeout),
        (.ENOENT, .objectNotFound),
        (.EPERM, .clusterError),
        (.EIO, .clusterError),
    ])
    func cephErrorsMapToTheirKind(_ errno: Errno, _ kind: EngineErrorType) {
        let ceph = CephError(errno: errno, operation: "stat", target: "/volumes/g/v")
        let e = VolumeError(ceph)
        #expect(e.kind == kind)
        #expect(e.errno == errno)
        // The wire message is the Ceph error's text, as before.
        #expect(e.message == ceph.description)
    }

    @Test func volumeErrorsPassThroughAndOthersAreInternal() {
        let original = VolumeError(.volumeClientError, "group g is not empty", errno: .ENOTEMPTY)
        let same = VolumeError(original as any Error)
        #expect(same.kind == .volumeClientError && same.message == original.message && same.errno == .ENOTEMPTY)

        let other = VolumeError(Unexpected())
        #expect(other.kind == .internal)
        #expect(other.message == "internal error: boom")
        #expect(other.errno == nil)
    }

    @Test func engineCallConvertsWhatItsBodyThrows() {
        #expect(throws: Never.self) { try engineCall { 1 } }
        do {
            _ = try engineCall { () throws -> Int in throw CephError(errno: .ENOENT, operation: "open") }
            Issue.record("engineCall did not throw")
        } catch {
            // `error` is statically a VolumeError: no cast.
            #expect(error.kind == .objectNotFound)
        }
    }

    /// Against the cluster: a missing object comes back as a typed
    /// ObjectNotFound (it used to escape as a raw CephError).
    @Test(.enabled(if: TestCluster.isAvailable, "needs the dev cluster"))
    func aMissingObjectIsATypedObjectNotFound() throws {
        let engine = try connectTestEngine("err")
        defer { engine.shutdown() }
        let pool = "cephfs_data"
        let result: Result<[UInt8], VolumeError> = Result { () throws(VolumeError) in
            try engine.getObject(pool: pool, object: TestCluster.uniqueName("missing"))
        }
        guard case .failure(let e) = result else {
            Issue.record("a missing object was read")
            return
        }
        #expect(e.kind == .objectNotFound)
        #expect(e.errno == .ENOENT)
    }
}
