/// What the entries of a region whose header says ACTIVE hold right now: decides whether activating the
/// patch again is a no-op, a reattach, or refused.
enum ActiveRegionEntries: Equatable {
    /// Every entry holds its detour: the patch is live (activation answers "already active").
    case intact
    /// Every entry holds its original bytes again (a debugger or another tool restored them): the region
    /// is intact but unreached ("detached"); the detours may be committed again, pointing at it.
    case restored
    /// Some entry holds neither: `function` is the first entry that does not hold its detour (nil when
    /// none could be named).
    case foreign(PatchRegionHeader.Function?)

    /// Reads every entry's detour bytes from `tracee` (process_vm_readv: no stop) and classifies them.
    static func classify(_ header: PatchRegionHeader, in tracee: some Tracee) -> ActiveRegionEntries {
        var intact = true, pristine = true
        var firstChanged: PatchRegionHeader.Function?
        for f in header.functions {
            let cur = tracee.readMemory(at: f.site, count: f.detour.count)
            if cur != f.detour {
                intact = false
                if firstChanged == nil { firstChanged = f }
            }
            if cur != Array(f.original.prefix(f.detour.count)) { pristine = false }
        }
        if intact { return .intact }
        return pristine ? .restored : .foreign(firstChanged)
    }
}
