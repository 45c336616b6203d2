import Ceph
import JSONValue
import Synchronization
import WorkerThreads

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on one metadata file, held through CephFS `flock`, so it
/// excludes every process sharing the cluster, including the Python client,
/// which locks the same files the same way. Reads and writes go through the
/// locked descriptor, so the file is opened once per lock.
/// Used by one thread at a time: the holder, then the releaser.
final class MetadataLock: @unchecked Sendable {
    let path: String
    let file: CephFile
    private let owner: UInt64
    private let openFiles: OpenFiles
    /// The file's size as last read or written; writes never make it smaller.
    var size: UInt64
    /// The last write is not yet synced.
    var unsynced = false
    /// Unlinked under this lock: its descriptor is not kept for the next lock.
    var unlinked = false
    private var released = false

    fileprivate init(path: String, file: CephFile, owner: UInt64, size: UInt64, openFiles: OpenFiles) {
        self.path = path
        self.file = file
        self.owner = owner
        self.size = size
        self.openFiles = openFiles
    }

    deinit { release() }

    func release() {
        guard !released else { return }
        released = true
        try? file.flock(.unlock, owner: owner)
        if unlinked { file.close() } else { openFiles.keep(path, file) }
    }

    /// Unlocks on a helper thread when one is idle, so the caller's reply
    /// does not wait for the MDS round trip. Safe because every later
    /// locker, here or in another process, asks the MDS for the lock and
    /// waits until this unlock arrives; the caller must not touch the lock
    /// afterwards.
    func releaseInBackground(on pool: WorkerPool) {
        guard !released else { return }
        if !pool.submitIfIdle({ [self] in release() }) { release() }
    }
}

/// Reads, writes and locks JSON metadata files.
///
/// Crash safety of writes. The Python client truncates and then writes, so a
/// crash in between leaves an empty file, which its recovery then deletes.
/// Here a write never truncates: the new JSON overwrites the old bytes in
/// place and is padded with spaces (JSON whitespace) to at least the old size,
/// rounded up to a 4 KiB block, then fsynced. The file is far smaller than a
/// RADOS object, so the data reaches the OSD as one write to one object, which
/// RADOS applies atomically: a crash leaves the old text or the new one, never
/// a mix and never an empty file. The size rarely changes (only when the text
/// outgrows its block), and when it does, the MDS recovers a crashed writer's
/// size by probing the object.
///
/// Why not write a temporary file and rename it over the old one? Mutual
/// exclusion needs every locker to lock the same inode. After a rename, a
/// newcomer locks the new inode while the previous holder still holds the
/// old one, and both run at once. Overwriting in place keeps one inode for
/// the life of the file, so the flock, and the peer's inode re-check after
/// locking, keep working for every process.
struct MetadataStore: Sendable {
    let fs: CephFSMount
    let openFiles = OpenFiles()

    static let block: UInt64 = 4096
    static let fileMode: UInt32 = 0o755  // as the Python client creates them

    /// Locks `path`, creating the file when `create` is true. Returns nil when
    /// `create` is false and the file does not exist. With `wait` false, a
    /// lock another owner holds is not waited for: EAGAIN.
    func lock(_ path: String, create: Bool = true, wait: Bool = true) throws(CephError) -> MetadataLock? {
        // A fresh owner per lock: two holders in this process exclude each other
        // at the MDS too, not only through the in-process serializer.
        let owner = UInt64.random(in: 1...UInt64.max)
        while true {
            let file: CephFile
            if let kept = openFiles.take(path) {
                file = kept  // checked below like a fresh one: it may have been unlinked meanwhile
            } else if create {
                file = try fs.open(path, flags: O_CREAT | O_RDWR, mode: Self.fileMode)
            } else {
                // Stat first: no ENOENT-failing call on a path we may lock later (see VolumeEngine.ifPresent).
                guard try fs.statIfExists(path) != nil,
                    let existing = try ignoring(.ENOENT, { () throws(CephError) in try fs.open(path, flags: O_RDWR) })
                else { return nil }
                file = existing
            }
            do throws(CephError) {
                try file.flock(wait ? .exclusive : [.exclusive, .nonBlocking], owner: owner)
                // The file may have been unlinked (by us or a peer) before the lock
                // was granted; then the lock protects nothing, so start again.
                let current = try fs.statIfExists(path)
                let locked = try file.stat()
                if let current, current.inode == locked.inode {
                    return MetadataLock(path: path, file: file, owner: owner, size: locked.size, openFiles: openFiles)
                }
                try? file.flock(.unlock, owner: owner)
                file.close()
                if current == nil && !create { return nil }
            } catch {
                file.close()
                throw error
            }
        }
    }

    /// The file's JSON object, or nil when it is empty (just created by a lock).
    func read(_ lock: MetadataLock) throws(VolumeError) -> [String: JSONValue]? {
        let bytes: [UInt8]
        do {
            bytes = try lock.file.readAll(chunk: 64 * 1024)
        } catch {
            throw VolumeError(cephError: error)
        }
        lock.size = UInt64(bytes.count)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x09 || $0 == 0x0D || $0 == 0 }) { return nil }
        guard let value = try? JSONValue.parse(bytes), let object = value.objectValue else {
            throw VolumeError(.volumeClientError, "metadata file \(lock.path) is not a JSON object", errno: .EINVAL)
        }
        return object
    }

    /// Replaces the file's content with `object`, as described above.
    ///
    /// `durable` writes return once the data is on the OSDs. Syncing the
    /// data (`fdatasync`) is enough, also for a file the lock just created:
    /// the inode never changes, and should this client die with the size
    /// update still unflushed, the MDS recovers the size by probing the
    /// objects when the session goes (checked against the dev cluster: a
    /// writer killed right after `fdatasync` leaves the full file). The MDS
    /// journals the create itself within milliseconds, long before the mon
    /// round trip that could make a lost file matter.
    ///
    /// A write that is not durable stays in this client's cache until the
    /// next sync or writeback. That is enough when losing it in a crash
    /// leaves a state recovery handles, for example an auth entry that stays
    /// dirty and is replayed. Other clients still see it at once: the MDS
    /// makes this client flush before anyone else may read the file.
    func write(_ lock: MetadataLock, _ object: [String: JSONValue], durable: Bool = true) throws(CephError) {
        var bytes = JSONValue.object(object).serialized()
        bytes.append(0x0A)
        let length = UInt64(bytes.count)
        let target = max(lock.size, (length + Self.block - 1) / Self.block * Self.block)
        bytes.append(contentsOf: repeatElement(0x20, count: Int(target - length)))
        try lock.file.write(bytes, offset: 0)
        lock.size = target
        lock.unsynced = true
        if durable { try sync(lock) }
    }

    /// Makes the last write durable (see `write`).
    func sync(_ lock: MetadataLock) throws(CephError) {
        guard lock.unsynced else { return }
        try lock.file.fsync(dataOnly: true)
        lock.unsynced = false
    }

    /// Removes the file while its lock is held; waiters then retry on a new file.
    func unlink(_ lock: MetadataLock) throws(CephError) {
        try ignoring(.ENOENT) { () throws(CephError) in try fs.unlink(lock.path) }
        lock.unlinked = true
    }
}

/// Metadata files kept open between locks, so that locking one again costs
/// a flock instead of an open, which is an MDS round trip whenever the
/// client holds no caps on the file. A kept descriptor is only a shortcut:
/// `MetadataStore.lock` checks it against the path's inode after locking,
/// as it does a fresh one, so a file unlinked or replaced meanwhile (here or
/// by another client) is noticed, closed and opened again.
final class OpenFiles: Sendable {
    private struct State {
        var files: [String: CephFile] = [:]
        var order: [String] = []  // least recently kept first
    }
    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 256) {
        self.capacity = capacity
    }

    /// The kept file of `path`, which the caller then has to itself.
    func take(_ path: String) -> CephFile? {
        let file: CephFile? = state.withLock { s in
            guard let f = s.files.removeValue(forKey: path) else { return nil }
            s.order.removeAll { $0 == path }
            return f
        }
        // Kept before the mount replaced its evicted client (see VolumeEngine.remounted).
        if let file, file.isStale {
            file.close()
            return nil
        }
        return file
    }

    /// Keeps `file` open for the next lock of `path`; closes what does not fit.
    func keep(_ path: String, _ file: CephFile) {
        let surplus: [CephFile] = state.withLock { s in
            // Checked under the lock: a file kept after `closeAll` of a remount is never stale.
            if file.isStale { return [file] }
            var out: [CephFile] = []
            if let old = s.files.updateValue(file, forKey: path) {
                out.append(old)
                s.order.removeAll { $0 == path }
            }
            s.order.append(path)
            while s.order.count > capacity {
                out.append(s.files.removeValue(forKey: s.order.removeFirst())!)
            }
            return out
        }
        for f in surplus { f.close() }
    }

    /// Closes the kept file of `path`, if any (the file was removed).
    func drop(_ path: String) {
        take(path)?.close()
    }

    func closeAll() {
        let all = state.withLock { s in
            defer { s = State() }
            return Array(s.files.values)
        }
        for f in all { f.close() }
    }
}
