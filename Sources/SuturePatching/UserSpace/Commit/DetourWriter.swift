/// The byte-level decisions of a commit and a revert, made while every thread is stopped: which entries
/// to write, in which order, and how to undo a partial write. Reads and writes the tracee's text only
/// through ``TraceeText`` and records the region's state only through `setState`, so every outcome is
/// unit-tested against a fake tracee.
enum DetourWriter {
    /// How a commit ended.
    enum CommitOutcome: Equatable {
        /// Every detour written and the header says ACTIVE.
        case committed
        /// `function`'s site holds `found` (nil: unreadable) instead of its original bytes; nothing written.
        case foreign(PatchRegionHeader.Function, found: [UInt8]?)
        /// Writing `function`'s detour failed; the detours written before it were restored, and
        /// `rollbackFailed` tells whether that failed too (the header is then INCONSISTENT).
        case detourWriteFailed(PatchRegionHeader.Function, rollbackFailed: Bool)
        /// Setting the header ACTIVE failed; every detour was restored (`rollbackFailed` as above).
        case headerWriteFailed(rollbackFailed: Bool)
    }

    /// How a revert ended.
    enum RevertOutcome: Equatable {
        /// Every entry that held its detour holds its original bytes again; the header says PREPARED
        /// (best effort: a failed header write leaves ACTIVE, which readback reports as detached).
        case reverted
        /// `function`'s site holds `found` (nil: unreadable), neither its detour nor its original; nothing
        /// restored.
        case foreign(PatchRegionHeader.Function, found: [UInt8]?)
        /// Restoring `function` failed; the entries restored before it got their detours back, and
        /// `reapplyFailed` tells whether that failed too (the header is then INCONSISTENT).
        case restoreFailed(PatchRegionHeader.Function, reapplyFailed: Bool)
    }

    /// Commits `functions`: checks that every site holds its original bytes, writes the detours in order,
    /// then `setState(.active)`. A failure part-way restores what was written (in reverse order) and, if
    /// that fails, `setState(.inconsistent)`.
    static func commit(_ functions: [PatchRegionHeader.Function], text: some TraceeText,
                       setState: (PatchRegionHeader.State) -> Bool) -> CommitOutcome {
        for f in functions {
            let cur = text.read(f.detour.count, at: f.site)
            if cur != f.original { return .foreign(f, found: cur) }
        }
        var written: [PatchRegionHeader.Function] = []
        func rollback() -> Bool {
            var failed = false
            for f in written.reversed() where !text.write(f.original, at: f.site) { failed = true }
            if failed { _ = setState(.inconsistent) }
            return failed
        }
        for f in functions {
            if text.write(f.detour, at: f.site) {
                written.append(f)
                continue
            }
            return .detourWriteFailed(f, rollbackFailed: rollback())
        }
        if !setState(.active) { return .headerWriteFailed(rollbackFailed: rollback()) }
        return .committed
    }

    /// Reverts `functions`: every site must hold its detour (restored) or its original bytes (left alone,
    /// e.g. restored by someone else); then writes the originals in order and `setState(.prepared)`. A
    /// failure part-way puts the detours back on what was restored (reverse order) and, if that fails,
    /// `setState(.inconsistent)`.
    static func revert(_ functions: [PatchRegionHeader.Function], text: some TraceeText,
                       setState: (PatchRegionHeader.State) -> Bool) -> RevertOutcome {
        var toRestore: [PatchRegionHeader.Function] = []
        for f in functions {
            let cur = text.read(f.detour.count, at: f.site)
            if cur == f.detour { toRestore.append(f); continue }
            if cur == f.original { continue }
            return .foreign(f, found: cur)
        }
        var restored: [PatchRegionHeader.Function] = []
        for f in toRestore {
            if text.write(f.original, at: f.site) { restored.append(f); continue }
            var failed = false
            for r in restored.reversed() where !text.write(r.detour, at: r.site) { failed = true }
            if failed { _ = setState(.inconsistent) }
            return .restoreFailed(f, reapplyFailed: failed)
        }
        _ = setState(.prepared)
        return .reverted
    }
}
