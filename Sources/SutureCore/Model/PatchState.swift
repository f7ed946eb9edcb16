/// The state a manifest asks for (`spec.patches[].state`).
public enum DesiredPatchState: String, Codable, Sendable, Hashable, CaseIterable {
    /// Installed, live, and restored at boot (SysCare `ACCEPTED`).
    case accepted
    /// Installed and live (SysCare `ACTIVED`/`ACTIVATED`).
    case activated
    /// Installed in the store, not live (SysCare `DEACTIVED`/`DEACTIVATED`).
    case deactivated
    /// Not in the store, not live (SysCare `NOT-APPLIED`).
    case absent
}

/// The state `suture status` reports, with SysCare's names (see ../shared/reference/syscare.md).
public enum PatchStatus: String, Codable, Sendable, Hashable, CaseIterable {
    /// Not in the store.
    case notApplied = "NOT-APPLIED"
    /// In the store, not live.
    case deactivated = "DEACTIVATED"
    /// Live: kernel `enabled=1` and transition finished; user: present in every matching process.
    case activated = "ACTIVATED"
    /// Activated and declared persistent.
    case accepted = "ACCEPTED"
}

/// Conditions that qualify a status (DESIGN §2), printed after the state, e.g. `ACTIVATED (Partial)`.
public enum PatchCondition: String, Codable, Sendable, Hashable, CaseIterable, Comparable {
    /// A kernel transition is in progress.
    case transitioning = "Transitioning"
    /// A kernel transition has been in progress for longer than the stall deadline, or tasks block it.
    case stalled = "Stalled"
    /// A user patch is live in some matching processes, not all.
    case partial = "Partial"
    /// A kernel transition was forced (`force` written): the kernel needs a reboot to be trusted.
    case forced = "Forced"
    /// Live, but not installed by Suture (a kernel livepatch or a marker we do not own).
    case foreign = "Foreign"
    /// Live state differs from the desired state.
    case drifted = "Drifted"

    /// Orders by raw value, for deterministic output.
    public static func < (a: PatchCondition, b: PatchCondition) -> Bool { a.rawValue < b.rawValue }
}

/// Kind of a patch bundle (`patch.yaml` `kind`).
public enum PatchKind: String, Codable, Sendable, Hashable, CaseIterable {
    /// User-space ELF function patches applied with ptrace.
    case user
    /// A kernel livepatch module (`.ko`).
    case kernel
}
