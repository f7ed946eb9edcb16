#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// BUSY back-off shared by activation, reattach and deactivation.
extension EngineSession {
    enum CommitFailure: Error {
        case busy(UserPatchError)
        case fatal(UserPatchError)
    }

    /// Runs one stop-the-world `attempt` until it succeeds, retrying BUSY after 1 ms, 2 ms, 4 ms … until
    /// `options.busyDeadline`. `onGiveUp` runs before the last BUSY error is thrown at the deadline,
    /// `onFatal` before a fatal one is.
    /// - Returns: the attempt's result and the number of BUSY retries.
    func retryingBusy<T>(_ attempt: () throws(CommitFailure) -> T, onGiveUp: (UserPatchError) -> Void = { _ in },
                         onFatal: (UserPatchError) -> Void = { _ in }) throws(UserPatchError) -> (T, Int) {
        let deadline = cls_monotonic_ns() + UInt64(options.busyDeadline * 1e9)
        var backoffNs: UInt64 = 1_000_000
        var retries = 0
        while true {
            do throws(CommitFailure) {
                return (try attempt(), retries)
            } catch {
                switch error {
                case let .busy(e):
                    retries += 1
                    if cls_monotonic_ns() + backoffNs > deadline {
                        onGiveUp(e)
                        throw e
                    }
                    var ts = timespec(tv_sec: Int(backoffNs / 1_000_000_000), tv_nsec: Int(backoffNs % 1_000_000_000))
                    nanosleep(&ts, nil)
                    backoffNs *= 2
                case let .fatal(e):
                    onFatal(e)
                    throw e
                }
            }
        }
    }
}
