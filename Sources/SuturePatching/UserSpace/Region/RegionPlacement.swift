#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Region placement: where in the address space the patch region goes.
extension EngineSession {
    /// Picks a page-aligned address for `size` bytes such that every byte of the region is within
    /// ±2 GiB (rel32 reach) of every byte of the target object, in a hole of `maps` with a one-page gap on
    /// both sides. Prefers holes below the object (the brk heap grows upward right after a non-PIE
    /// executable), nearest first.
    func chooseRegionAddress(maps: [ProcMapping], target: TargetObject, size: UInt64,
                             excluded: [(UInt64, UInt64)]) -> UInt64? {
        let page: UInt64 = 4096
        let reach: UInt64 = (1 << 31) - 1
        let minText = ProcFiles.text("/proc/sys/vm/mmap_min_addr")?.sutureTrim("\n ") ?? ""
        let minAddr = max(UInt64(minText) ?? 65536, 65536)
        // Window for the region start: [high - reach, low + reach - size].
        let lowLimit = target.high > reach ? target.high - reach : 0
        let highLimit = target.low + reach - size
        let sorted = maps.sorted { $0.start < $1.start }
        var holes: [(UInt64, UInt64)] = []
        var prevEnd = minAddr
        for m in sorted {
            if m.start > prevEnd { holes.append((prevEnd, m.start)) }
            prevEnd = max(prevEnd, m.end)
        }
        holes.append((prevEnd, 0x7fff_ffff_f000))
        let heapEnd = sorted.first(where: { $0.path == "[heap]" })?.end
        var best: (addr: UInt64, distance: UInt64)?
        for (hs, he) in holes {
            let start = hs + page, end = he >= page ? he - page : 0
            guard end > start, end - start >= size else { continue }
            var candidates: [UInt64] = []
            // Top of the hole (closest to an object above it) and bottom (closest to an object below).
            candidates.append((end - size) & ~(page - 1))
            if hs != heapEnd { candidates.append((start + page - 1) & ~(page - 1)) }
            for c in candidates {
                guard c >= start, c + size <= end, c >= lowLimit, c <= highLimit else { continue }
                if excluded.contains(where: { c < $0.1 && c + size > $0.0 }) { continue }
                let distance = c + size <= target.low ? target.low - (c + size) : (c >= target.high ? c - target.high : 0)
                // Slightly prefer below-the-object placements.
                let weighted = c < target.low ? distance : distance + (1 << 30)
                if best == nil || weighted < best!.distance { best = (c, weighted) }
            }
        }
        return best?.addr
    }
}
