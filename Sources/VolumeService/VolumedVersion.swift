/// The release of cephfs-volumed.
package enum VolumedVersion {
    package static let string = "0.1.0"
}
