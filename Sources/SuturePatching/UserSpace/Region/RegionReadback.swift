#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// A patch region found in a process by readback (no stop).
public struct UserPatchRegion: Sendable, Hashable {
    /// Patch uuid from the mapping name.
    public var uuid: String
    /// First address of the region (the header).
    public var address: UInt64
    /// One past the last mapped byte of the region.
    public var end: UInt64
    /// The decoded header, nil when unreadable or invalid.
    public var header: PatchRegionHeader?
    /// For an ACTIVE header: whether every replaced function's entry still holds the detour bytes the
    /// header records (read with process_vm_readv; nil when not checked). A debugger or another tool that
    /// wrote the original bytes back leaves an ACTIVE header whose code is no longer reached.
    public var entriesIntact: Bool? = nil

    /// The state to report: the header's (`active`, `prepared`, `inconsistent`), or `detached` when the
    /// header says ACTIVE but an entry no longer holds its detour; nil without a readable header.
    public var effectiveState: PatchRegionMarker.State? {
        guard let header else { return nil }
        if header.state == .active && entriesIntact == false { return .detached }
        return header.state.markerState
    }
}

/// Readback: regions and headers found in a process without stopping it.
extension UserPatchEngine {
    /// The regions of `pid` in `maps`, headers read with process_vm_readv.
    static func regions(pid: Int32, maps: [ProcMapping]) -> [UserPatchRegion] {
        regions(in: LiveTracee(pid: pid), maps: maps)
    }

    /// The Suture regions among `maps` (one per marker uuid, spanning all its mappings, in maps order),
    /// each with its decoded header and, for an ACTIVE header, whether every entry still holds its detour.
    static func regions(in tracee: some Tracee, maps: [ProcMapping]) -> [UserPatchRegion] {
        var byUUID: [String: (start: UInt64, end: UInt64)] = [:]
        var order: [String] = []
        for m in maps {
            guard let uuid = PatchRegionMarker.patchID(fromMapsPathname: m.path) else { continue }
            if let r = byUUID[uuid] {
                byUUID[uuid] = (min(r.start, m.start), max(r.end, m.end))
            } else {
                byUUID[uuid] = (m.start, m.end)
                order.append(uuid)
            }
        }
        return order.map { uuid in
            let r = byUUID[uuid]!
            let header = readHeader(tracee, at: r.start)
            var region = UserPatchRegion(uuid: uuid, address: r.start, end: r.end, header: header)
            if let header, header.state == .active {
                region.entriesIntact = header.functions.allSatisfy {
                    tracee.readMemory(at: $0.site, count: $0.detour.count) == $0.detour
                }
            }
            return region
        }
    }

    /// The region header at `address` (its size read from the fixed part first), nil when unreadable or
    /// invalid.
    static func readHeader(_ tracee: some Tracee, at address: UInt64) -> PatchRegionHeader? {
        guard let fixed = tracee.readMemory(at: address, count: PatchRegionHeader.fixedSize) else {
            return nil
        }
        var size = 0
        for i in 0..<4 { size |= Int(fixed[48 + i]) << (8 * i) }
        guard size >= PatchRegionHeader.fixedSize, size <= 1 << 20,
              let all = tracee.readMemory(at: address, count: size) else { return nil }
        return PatchRegionHeader.decode(all)
    }
}
