/// The release of cephfs-volumed.
public enum VolumedVersion {
    public static let string = "0.1.0"
}
