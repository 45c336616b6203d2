// The one errno type lives in POSIXSupport (which VolumeClient and the
// server's socket code share without Ceph); Ceph's users keep seeing it.
@_exported import POSIXSupport

extension CephError: ErrnoCarrying {}
