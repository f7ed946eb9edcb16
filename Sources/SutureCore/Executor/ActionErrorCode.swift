/// Why an action failed: the closed set of codes an `ActionReport` carries (`error_code` in
/// `suture apply --json`).
///
/// The executor's own codes (`JOURNAL`, `NO_BUNDLE`, `INSTALL`, `REMOVE`, `BAD_PLAN`, `STORE`, `FAILED`),
/// every ``UserPatchErrorCode`` of the ptrace engine and every ``KernelPatchError/Kind`` of the livepatch
/// driver, spelled as those types spell them. `BUSY` is shared by both drivers (one case).
public enum ActionErrorCode: String, Codable, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    // The executor's own.
    /// The journal could not be written before the action (nothing ran).
    case journal = "JOURNAL"
    /// An install with no bundle for the patch in the manifests.
    case noBundle = "NO_BUNDLE"
    /// Copying the bundle into the store failed.
    case install = "INSTALL"
    /// Removing the bundle from the store failed.
    case remove = "REMOVE"
    /// The plan is malformed (a user action without a pid).
    case badPlan = "BAD_PLAN"
    /// The store copy of the bundle is missing or corrupted.
    case store = "STORE"
    /// A Partial patch that became live in no process (every activation failed).
    case failed = "FAILED"

    // User-space engine (``UserPatchErrorCode``).
    /// See ``UserPatchErrorCode/notApplicable``.
    case notApplicable = "NOT_APPLICABLE"
    /// See ``UserPatchErrorCode/alreadyApplied``.
    case alreadyApplied = "ALREADY_APPLIED"
    /// See ``UserPatchErrorCode/targetExited``.
    case targetExited = "TARGET_EXITED"
    /// See ``UserPatchErrorCode/permission``.
    case permission = "PERMISSION"
    /// See ``UserPatchErrorCode/seccompBlocked``.
    case seccompBlocked = "SECCOMP_BLOCKED"
    /// ``UserPatchErrorCode/busy`` or ``KernelPatchError/Kind/busy``.
    case busy = "BUSY"
    /// See ``UserPatchErrorCode/unstoppable``.
    case unstoppable = "UNSTOPPABLE"
    /// See ``UserPatchErrorCode/noNearSpace``.
    case noNearSpace = "NO_NEAR_SPACE"
    /// See ``UserPatchErrorCode/unpatchableFunction``.
    case unpatchableFunction = "UNPATCHABLE_FUNCTION"
    /// See ``UserPatchErrorCode/foreignModification``.
    case foreignModification = "FOREIGN_MODIFICATION"
    /// See ``UserPatchErrorCode/execRace``.
    case execRace = "EXEC_RACE"
    /// See ``UserPatchErrorCode/inconsistent``.
    case inconsistent = "INCONSISTENT"

    // Kernel livepatch driver (``KernelPatchError/Kind``).
    /// See ``KernelPatchError/Kind/vermagicMismatch``.
    case vermagicMismatch = "VERMAGIC_MISMATCH"
    /// See ``KernelPatchError/Kind/unsupported``.
    case unsupported = "UNSUPPORTED"
    /// See ``KernelPatchError/Kind/lockdown``.
    case lockdown = "LOCKDOWN"
    /// See ``KernelPatchError/Kind/syscallFailed``.
    case syscallFailed = "SYSCALL_FAILED"
    /// See ``KernelPatchError/Kind/stalled``.
    case stalled = "STALLED"
    /// See ``KernelPatchError/Kind/stuck``.
    case stuck = "STUCK"

    /// The code of a user-space engine error (same spelling).
    public init(_ code: UserPatchErrorCode) {
        // Every UserPatchErrorCode has a case here (unit-tested over allCases).
        self = ActionErrorCode(rawValue: code.rawValue)!
    }

    /// The code of a kernel livepatch driver error (same spelling).
    public init(_ kind: KernelPatchError.Kind) {
        // Every KernelPatchError.Kind has a case here (unit-tested over allCases).
        self = ActionErrorCode(rawValue: kind.rawValue)!
    }

    /// The spelling used in reports (`BUSY`, `STORE`, …).
    public var description: String { rawValue }
}
