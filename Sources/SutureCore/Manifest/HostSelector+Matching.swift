#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension HostSelector {
    /// Whether this selector selects a host.
    ///
    /// - `hostnames`: shell globs matched with `fnmatch(3)` (`*`, `?`, `[a-z]`; no flags, so `*` also
    ///   matches `.`), compared case-insensitively (DNS names are case-insensitive); any one matching
    ///   is enough. Empty: every hostname.
    /// - `labels`: every selector label must be present on the host with exactly this value.
    ///
    /// - Parameters:
    ///   - hostname: the host's name (`gethostname(2)`, possibly fully qualified).
    ///   - labels: the host's labels (config `labels` merged with `/etc/suture/labels`).
    /// - Returns: `true` when both parts match.
    public func matches(hostname: String, labels hostLabels: [String: String]) -> Bool {
        for (key, value) in labels where hostLabels[key] != value { return false }
        if hostnames.isEmpty { return true }
        let name = hostname.lowercased()
        return hostnames.contains { fnmatch($0.lowercased(), name, 0) == 0 }
    }

    /// Whether the selector is empty (selects every host).
    public var selectsEveryHost: Bool { hostnames.isEmpty && labels.isEmpty }
}
