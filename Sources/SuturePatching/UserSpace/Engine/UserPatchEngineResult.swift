#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// What one engine operation did, with its measured pause.
public struct UserPatchEngineResult: Sendable, Hashable {
    /// The outcome.
    public var outcome: UserPatchOutcome
    /// Pause of the successful stop-the-world window: first thread stopped → last thread resumed, in
    /// nanoseconds (nil when no stop happened).
    public var pauseNanoseconds: UInt64?
    /// Number of threads stopped in that window.
    public var threads: Int
    /// Commit attempts that found the process BUSY before success.
    public var busyRetries: Int
    /// Start address of the patch region (activate) or of the removed region (deactivate).
    public var regionAddress: UInt64?
    /// Run slices (resume, then `PTRACE_INTERRUPT`) that took threads out of the replaced (or removed) code.
    public var steppedInstructions: Int = 0
}
