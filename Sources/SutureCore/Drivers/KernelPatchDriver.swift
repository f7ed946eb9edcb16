/// Errors of the kernel livepatch driver.
public struct KernelPatchError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Error kinds.
    public enum Kind: String, Codable, Sendable, Hashable, CaseIterable {
        /// The module's vermagic does not match the running kernel.
        case vermagicMismatch = "VERMAGIC_MISMATCH"
        /// The kernel has no livepatch support, or ftrace is disabled.
        case unsupported = "UNSUPPORTED"
        /// Lockdown forbids loading an unsigned module.
        case lockdown = "LOCKDOWN"
        /// `finit_module`/`delete_module`/sysfs write failed.
        case syscallFailed = "SYSCALL_FAILED"
        /// Another transition is in progress (EBUSY) and did not finish within the retries.
        case busy = "BUSY"
        /// The transition did not finish by the hard deadline.
        case stalled = "STALLED"
        /// The module could not be unloaded (refcnt did not drop).
        case stuck = "STUCK"
    }
    /// The kind.
    public var kind: Kind
    /// The livepatch (module) name.
    public var patch: String
    /// What happened.
    public var message: String
    /// Tasks blocking a transition, when relevant.
    public var blockers: [TransitionBlocker]
    /// `stalled` only: true when the transition was left running (`onStall: fail`, or `wait` past its
    /// limit), false when it was reversed and the system is back where it was (`onStall: revert`).
    public var transitionLeftRunning: Bool

    /// Memberwise initializer.
    public init(_ kind: Kind, patch: String, message: String, blockers: [TransitionBlocker] = [],
                transitionLeftRunning: Bool = false) {
        self.kind = kind
        self.patch = patch
        self.message = message
        self.blockers = blockers
        self.transitionLeftRunning = transitionLeftRunning
    }

    /// `STALLED: livepatch_x: …`.
    public var description: String { "\(kind.rawValue): \(patch): \(message)" }
}

/// Loads, enables, disables and unloads kernel livepatch modules through the real ABI
/// (`finit_module(2)`, `/sys/kernel/livepatch/<p>/enabled`, `delete_module(2)`).
/// Implemented by `SuturePatching`; a fake kernel implements it in unit tests.
public protocol KernelPatchDriver: Sendable {
    /// Loads the module at `modulePath` (in the store) and waits for its transition to finish.
    /// - Throws: `KernelPatchError`.
    func activate(bundle: ResolvedBundle, entity: BundleEntity, onStall: StallPolicy) throws(KernelPatchError)

    /// Disables livepatch `moduleName`, waits for the transition, the sysfs directory to go and the
    /// refcount to drop, then unloads the module.
    /// - Throws: `KernelPatchError`.
    func deactivate(moduleName: String, onStall: StallPolicy) throws(KernelPatchError)
}
