import Ceph

extension VolumeEngine {
    /// Finishes or undoes every interrupted authorize and deauthorize, using
    /// the dirty flags. Locks are taken auth first, then volume, so a volume
    /// entry is never dirty unless its auth entry is dirty too:
    /// - what the volume metadata has, the auth metadata has;
    /// - what Ceph grants, the volume metadata has;
    /// so replaying each dirty auth entry against its volume converges.
    ///
    /// `waitForLocks` false (the daemon's start-up): an auth ID whose lock
    /// another client holds is skipped, not waited for. A live holder is
    /// mid-update and finishes it; a dead one (a client killed while it held
    /// or waited for the lock) keeps it until the MDS drops its session, up to
    /// `session_autoclose` later, and the daemon must not wait that long to
    /// serve. Every authorize and deauthorize recovers its own auth ID under
    /// the lock, and `recover` can be called again.
    public func recover(waitForLocks: Bool = true) throws(VolumeError) {
        try engineCall {
            guard let names = try ignoring(.ENOENT, { () throws(CephError) in try fs.listDirectory(layout.prefix) }) else {
                return
            }
            var skipped: [String] = []
            for name in names {
                guard let authID = Layout.authID(fromFileName: name.name),
                    (try? Identifier.validateAuthID(authID)) != nil
                else { continue }
                let taken = Result { () throws(CephError) in
                    try store.lock(layout.authMetadataPath(authID), create: false, wait: waitForLocks)
                }
                if case .failure(let error) = taken, !waitForLocks, error.errno == .EAGAIN {
                    skipped.append(authID)
                    continue
                }
                guard let lock = try taken.get() else { continue }
                defer { lock.release() }
                guard var meta = try readAuthMetadata(lock), !meta.subvolumes.isEmpty else {
                    try store.unlink(lock)
                    continue
                }
                if meta.dirty {
                    logger.info("recover: finishing interrupted update of auth ID \(authID)")
                    try recoverAuthMetadata(authID, &meta, lock)
                }
            }
            if !skipped.isEmpty {
                let shown = skipped.prefix(10).joined(separator: ", ") + (skipped.count > 10 ? ", ..." : "")
                logger.notice("recover: skipped \(skipped.count) auth ID(s) locked by another client: \(shown)")
            }
        }
    }

    /// Replays the dirty entries of one auth ID's metadata; called with its lock held.
    func recoverAuthMetadata(_ authID: String, _ meta: inout AuthMetadata, _ authLock: MetadataLock) throws {
        var existing: CephEntity?? = .none  // fetched once, when first needed
        var unreadable = false
        for (key, entry) in meta.subvolumes.sorted(by: { $0.key < $1.key }) where entry.dirty {
            guard let volume = VolumePath(metadataKey: key) else {
                // Never drop what we cannot interpret: its caps may still exist.
                logger.error("recover: auth ID \(authID) has an entry '\(key)' that names no volume; left dirty")
                unreadable = true
                continue
            }
            let keep = try withLock(layout.volumeMetadataPath(volume)) { volumeLock -> Bool in
                // No volume record: the interrupted call never reached Ceph.
                guard let volumeMeta = try readVolumeMetadata(volumeLock), let volumeEntry = volumeMeta.auths[authID] else {
                    return false
                }
                if volumeEntry != AccessEntry(accessLevel: entry.accessLevel, dirty: false) {
                    if existing == nil { existing = .some(try authGet(authID)) }
                    let current = existing!
                    _ = try authorizeVolume(
                        volume, authID: authID, readonly: entry.readonly,
                        caps: { try volumeCaps(volume, readonly: entry.readonly) }, existing: { current }, volumeLock,
                        meta: volumeMeta)
                    existing = nil  // caps changed: read again if needed
                }
                return true
            }
            if keep {
                meta.subvolumes[key]?.dirty = false
                try store.write(authLock, meta.json)
            } else {
                meta.subvolumes[key] = nil
            }
        }
        if meta.subvolumes.isEmpty {
            try store.unlink(authLock)
            return
        }
        meta.dirty = unreadable
        try store.write(authLock, meta.json)
    }
}
