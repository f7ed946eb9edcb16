/// Suture's per-patch marker mapping and the life cycle of the region it names (docs/markers.md).
///
/// The user-space engine creates the memory that holds a patch's code, data and header with
/// `memfd_create("suture:<uuid>", MFD_CLOEXEC)` inside the target process. The kernel shows every mapping of
/// that memfd in `/proc/PID/maps` as `/memfd:suture:<uuid> (deleted)`, so a scan of maps alone tells which
/// patches are live in which process, with no state kept outside the process. The region's header
/// (`PatchRegionHeader` in SuturePatching) records its ``State``.
public enum PatchRegionMarker {
    /// The `memfd_create` name prefix.
    public static let memfdPrefix = "suture:"
    /// The pathname prefix in `/proc/PID/maps` (`/memfd:` + the memfd name), as a static string for
    /// byte-level scans.
    public static let mapsPrefixStatic: StaticString = "/memfd:suture:"
    /// The pathname prefix in `/proc/PID/maps` (`/memfd:` + the memfd name).
    public static let mapsPrefix = mapsPrefixStatic.description
    /// The longest patch id accepted (the memfd name limit is 249 bytes; a uuid is 36).
    public static let maxIDLength = 64

    /// The state of a patch region, as read back from its header and entries.
    ///
    /// The raw values are the lower-case names used in JSON (`live.json`, `suture status --json`) and
    /// messages.
    public enum State: String, Codable, Sendable, Hashable, CaseIterable {
        /// Code loaded, no detour written: inert (an activation that never committed; safe to unmap).
        case prepared
        /// Detours written: the patch code is reached.
        case active
        /// Header ACTIVE but an entry no longer holds its detour (another tool restored the original
        /// bytes): the patch code is not reached.
        case detached
        /// A rollback failed part-way; the process needs an operator (restart).
        case inconsistent

        /// Whether the patch counts as live in the process: every state but `prepared` and `detached`.
        /// `inconsistent` counts as live: code of the patch may run.
        public var isLive: Bool { self != .prepared && self != .detached }
    }

    /// The name to pass to `memfd_create(2)` for patch `id`.
    ///
    /// - Precondition: `isValidID(id)`.
    public static func memfdName(for id: String) -> String {
        precondition(isValidID(id), "invalid patch id for a marker: \(id)")
        return memfdPrefix + id
    }

    /// The maps pathname of patch `id`'s marker, without the ` (deleted)` suffix: `/memfd:suture:<id>`.
    public static func mapsPathname(for id: String) -> String {
        mapsPrefix + id
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
