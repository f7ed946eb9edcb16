/// The one description of a kernel livepatch's sysfs directory and how its attributes read
/// (Documentation/ABI/testing/sysfs-kernel-livepatch): `/sys/kernel/livepatch/<patch>/{enabled,transition,
/// force,replace,stack_order}` and `<patch>/<object>/patched`. ``KernelLivepatchReader`` (the live state),
/// ``ProcFSProbe`` (the executor's re-read) and the sysfs driver in `SuturePatching` (through its
/// `KernelInterface` seam) all read livepatches through it.
public enum LivepatchSysfs {
    /// `/sys/kernel/livepatch`: exists when the kernel has livepatch support (`CONFIG_LIVEPATCH`).
    public static let root = "/sys/kernel/livepatch"

    /// The attributes of a livepatch directory.
    public enum Attribute: String, Sendable, CaseIterable {
        /// `1` enabled, `0` disabled (writing the opposite during a transition reverses it).
        case enabled
        /// `1` while a transition is in progress.
        case transition
        /// Write-only: `1` forces the transition to finish.
        case force
        /// `1` for an atomic-replace (cumulative) patch (Linux ≥ 6.11).
        case replace
        /// Position in the stack of patches, 1 = oldest (Linux ≥ 6.14).
        case stackOrder = "stack_order"
    }

    /// `/sys/kernel/livepatch/<patch>`.
    public static func directory(_ patch: String) -> String { root + "/" + patch }

    /// `/sys/kernel/livepatch/<patch>/<attribute>`.
    public static func path(_ patch: String, _ attribute: Attribute) -> String {
        directory(patch) + "/" + attribute.rawValue
    }

    /// A boolean attribute's value: `1` true, `0` false (surrounding whitespace ignored), anything else
    /// (or nil: unreadable) nil.
    public static func bool(_ text: String?) -> Bool? {
        switch text.map(trimmed) {
        case "1"?: return true
        case "0"?: return false
        default: return nil
        }
    }

    /// A livepatch's `enabled` and `transition` read through `read` (absolute sysfs path → the file's text,
    /// nil when unreadable); nil when `enabled` cannot be read or holds neither `0` nor `1` (the patch is
    /// not loaded, or was freed while read). An unreadable `transition` counts as no transition.
    public static func state(of patch: String, read: (String) -> String?) -> KernelLivePatch? {
        guard let enabled = bool(read(path(patch, .enabled))) else { return nil }
        return KernelLivePatch(
            name: patch, enabled: enabled,
            transition: bool(read(path(patch, .transition))) ?? false)
    }

    private static func trimmed(_ text: String) -> String {
        var s = Substring(text)
        while let f = s.first, f == " " || f == "\n" || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
