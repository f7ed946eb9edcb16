#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Test and benchmark hooks of one engine operation. They run on the ptrace thread.
public struct UserPatchHooks: Sendable {
    /// Called once after the region is prepared and before the commit stop (e.g. to kill the target in a
    /// test of "exit during activation").
    public var afterPrepare: (@Sendable (_ pid: Int32) -> Void)?
    /// Called while every thread of the target is stopped (commit and revert), after the detours are
    /// written and before the threads are resumed; receives the stopped TIDs.
    public var whileStopped: (@Sendable (_ pid: Int32, _ tids: [Int32]) -> Void)?

    /// Memberwise initializer.
    public init(afterPrepare: (@Sendable (Int32) -> Void)? = nil,
                whileStopped: (@Sendable (Int32, [Int32]) -> Void)? = nil) {
        self.afterPrepare = afterPrepare
        self.whileStopped = whileStopped
    }
}
