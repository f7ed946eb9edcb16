#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore
import SystemPackage

/// Error mapping for a failed injected system call.
extension EngineSession {
    func injectedFailure(_ name: String, _ r: Int64, hint: String = "") -> UserPatchError {
        let e = Int32(-r)
        let text = "injected \(name) failed: \(Errno(rawValue: e).description)"
        if e == EPERM || e == EACCES {
            return error(.permission, text, hint: hint.isEmpty ? "an LSM (SELinux execmem, AppArmor) or policy denied it" : hint)
        }
        if e == ENOMEM { return error(.noNearSpace, text, hint: hint) }
        return error(.permission, text, hint: hint)
    }
}
