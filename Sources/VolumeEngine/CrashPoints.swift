#if canImport(Glibc)
import Glibc
#endif

/// A test-only hook: with `VOLUMED_CRASH_AT=<step>` in its environment the
/// daemon kills itself with SIGKILL when it reaches that step, so tests can
/// prove that recovery converges from every intermediate state. Unset, it
/// costs one comparison per step.
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

    static let armed: CrashPoint? = getenv("VOLUMED_CRASH_AT").flatMap { CrashPoint(rawValue: String(cString: $0)) }

    /// Dies here if this is the armed step.
    func reach() {
        if CrashPoint.armed == self {
            kill(getpid(), SIGKILL)
            pause()
        }
    }
}
