/// The name of Suture's per-patch marker mapping (docs/markers.md).
///
/// The user-space engine creates the memory that holds a patch's code, data and header with
/// `memfd_create("suture:<uuid>", MFD_CLOEXEC)` inside the target process. The kernel shows every mapping of
/// that memfd in `/proc/PID/maps` as `/memfd:suture:<uuid> (deleted)`, so a scan of maps alone tells which
/// patches are live in which process, with no state kept outside the process.
public enum UserPatchMarkerName {
    /// The `memfd_create` name prefix.
    public static let memfdPrefix = "suture:"
    /// The pathname prefix in `/proc/PID/maps`.
    public static let mapsPrefix = "/memfd:suture:"
    /// The longest patch id accepted (the memfd name limit is 249 bytes; a uuid is 36).
    public static let maxIDLength = 64

    /// The name to pass to `memfd_create(2)` for patch `id`.
    ///
    /// - Precondition: `isValidID(id)`.
    public static func memfdName(for id: String) -> String {
        precondition(isValidID(id), "invalid patch id for a marker: \(id)")
        return memfdPrefix + id
    }

    /// A patch id usable in a marker: 1…64 characters from `[0-9A-Za-z._-]` (a uuid such as
    /// `5f0c2c1e-9a8b-4c1d-8e2f-0a1b2c3d4e5f` in practice). Other names under `suture:` are not markers.
    public static func isValidID(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard !utf8.isEmpty, utf8.count <= maxIDLength else { return false }
        return utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == 0x2D || c == 0x2E || c == 0x5F
        }
    }

    /// The patch id of a maps pathname (` (deleted)` already removed or not), or nil when it is not a marker.
    public static func patchID(fromMapsPathname pathname: String) -> String? {
        guard pathname.hasPrefix(mapsPrefix) else { return nil }
        var id = pathname.dropFirst(mapsPrefix.count)
        if id.hasSuffix(" (deleted)") { id = id.dropLast(" (deleted)".count) }
        return isValidID(String(id)) ? String(id) : nil
    }
}
