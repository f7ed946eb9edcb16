/// SysCare command lines that Suture spells differently or does not need, mapped to what to run instead.
///
/// Checked before argument parsing so that a SysCare user typing `suture rescan` or `suture list` gets a
/// pointer to the Suture command rather than "Unexpected argument". Only words that are not Suture
/// commands are listed (`suture status` and `suture apply` exist, with declarative meanings).
enum SysCareVerbs {
    /// The `suture patch …` verbs SysCare has at its top level (`syscare list` → `suture patch list`).
    static let patchVerbs: Set<String> = ["list", "info", "target", "check", "remove", "active", "deactive",
                                          "activate", "deactivate", "accept", "save", "restore"]

    /// Why a SysCare verb has no Suture equivalent, and what to use instead.
    static let missing: [String: String] = [
        "rescan": "Suture has no daemon holding a cached patch list: every command reads the store "
            + "(/var/lib/suture/store) and the manifests afresh, so there is nothing to rescan. "
            + "`suture patch list` shows every patch; `suture apply` converges to the manifests.",
        "reboot": "Suture has no `reboot` (SysCare removed its kexec reboot in 2023). Accepted patches "
            + "(`suture patch accept`, or `state: accepted` in a manifest) are re-applied at boot by "
            + "`suture reconcile --boot`.",
    ]

    /// The message for `arguments` (without the program name), or nil when they are not such a SysCare
    /// command line.
    static func pointer(for arguments: [String]) -> String? {
        guard let first = arguments.first else { return nil }
        if first == "patch" {
            guard arguments.count > 1, let why = missing[arguments[1]] else { return nil }
            return "`suture patch \(arguments[1])` does not exist. " + why
        }
        if let why = missing[first] { return "`suture \(first)` does not exist. " + why }
        if patchVerbs.contains(first) {
            let rest = arguments.dropFirst().joined(separator: " ")
            return "`suture \(first)` does not exist: SysCare's patch verbs are under `suture patch`; run "
                + "`suture patch \(first)\(rest.isEmpty ? "" : " " + rest)` (see `suture patch --help`)."
        }
        return nil
    }
}
