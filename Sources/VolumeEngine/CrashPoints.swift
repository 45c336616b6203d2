import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A test-only hook: the daemon kills itself with SIGKILL when it reaches
/// the armed step, so tests can prove that recovery converges from every
/// intermediate state.
///
/// Compiled only into debug builds (VOLUMED_CRASH_POINTS, see Package.swift),
/// so a release build, such as the .deb's, never dies here. Even then a step
/// is armed only by `VOLUMED_CRASH_AT=<step>` together with the daemon's
/// hidden `--enable-crash-points` flag: an environment variable alone, set
/// by accident or inherited, never kills a daemon. Unarmed, a step costs one
/// atomic load.
public enum CrashPoint: String, CaseIterable, Sendable {
    case authorizeAuthMetaDirty = "authorize.auth_meta_dirty"
    case authorizeVolumeMetaDirty = "authorize.volume_meta_dirty"
    case authorizeCapsUpdated = "authorize.caps_updated"
    case authorizeVolumeMetaClean = "authorize.volume_meta_clean"
    case deauthorizeAuthMetaDirty = "deauthorize.auth_meta_dirty"
    case deauthorizeVolumeMetaDirty = "deauthorize.volume_meta_dirty"
    case deauthorizeCapsUpdated = "deauthorize.caps_updated"
    case deauthorizeVolumeMetaRemoved = "deauthorize.volume_meta_removed"
    case createVolumeDirectoryMade = "create_volume.directory_made"
    case createVolumeLayoutSet = "create_volume.layout_set"
    case deleteVolumeTrashed = "delete_volume.trashed"

    /// Why crash points cannot be armed.
    public struct ArmingError: Error, CustomStringConvertible {
        public let description: String
    }

    #if VOLUMED_CRASH_POINTS
    /// The armed step's index in `allCases`, plus one; 0 for none.
    private static let armed = Atomic<Int>(0)
    #endif

    /// Arms the step that `VOLUMED_CRASH_AT` names. Fails in builds without
    /// crash points, and when the variable names no step.
    public static func armFromEnvironment() throws(ArmingError) {
        #if VOLUMED_CRASH_POINTS
        guard let value = getenv("VOLUMED_CRASH_AT").map({ String(cString: $0) }) else {
            throw ArmingError(description: "VOLUMED_CRASH_AT is not set")
        }
        guard let step = CrashPoint(rawValue: value), let i = allCases.firstIndex(of: step) else {
            throw ArmingError(description: "VOLUMED_CRASH_AT names no crash point: '\(value)'")
        }
        armed.store(i + 1, ordering: .relaxed)
        #else
        throw ArmingError(description: "this build has no crash points (only debug builds have)")
        #endif
    }

    /// Dies here if this is the armed step.
    @inline(__always)
    func reach() {
        #if VOLUMED_CRASH_POINTS
        let i = CrashPoint.armed.load(ordering: .relaxed)
        if i != 0, CrashPoint.allCases[i - 1] == self {
            kill(getpid(), SIGKILL)
            pause()
        }
        #endif
    }
}
