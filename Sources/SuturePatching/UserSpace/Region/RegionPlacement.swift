#if canImport(Glibc)
import Glibc
#endif
import CLinuxShim
import SutureCore

/// Region placement: where in the address space the patch region goes. Pure: reads nothing itself.
enum RegionPlacement {
    /// Picks a page-aligned address for `size` bytes such that every byte of the region is within
    /// ±2 GiB (rel32 reach) of every byte of the target object, in a hole of `maps` with a one-page gap on
    /// both sides. Prefers holes below the object (the brk heap grows upward right after a non-PIE
    /// executable), nearest first.
    ///
    /// - Parameters:
    ///   - target: the object's lowest and highest mapped address (`low ..< high`).
    ///   - size: the region size in bytes (a multiple of the page size).
    ///   - excluded: ranges `[start, end)` not to use (taken concurrently by an earlier attempt).
    ///   - minAddress: the lowest address a mapping may start at (`vm.mmap_min_addr`, at least 64 KiB).
    /// - Returns: the region's start address, nil when no hole fits.
    static func chooseAddress(maps: [ProcMapping], target: (low: UInt64, high: UInt64), size: UInt64,
                              excluded: [(UInt64, UInt64)], minAddress minAddr: UInt64) -> UInt64? {
        let page: UInt64 = 4096
        let reach: UInt64 = (1 << 31) - 1
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

extension EngineSession {
    /// ``RegionPlacement/chooseAddress(maps:target:size:excluded:minAddress:)`` near `target`, with this
    /// host's `vm.mmap_min_addr`.
    func chooseRegionAddress(maps: [ProcMapping], target: TargetObject, size: UInt64,
                             excluded: [(UInt64, UInt64)]) -> UInt64? {
        let minText = ProcFiles.text("/proc/sys/vm/mmap_min_addr")?.sutureTrim("\n ") ?? ""
        return RegionPlacement.chooseAddress(maps: maps, target: (target.low, target.high), size: size,
                                             excluded: excluded, minAddress: max(UInt64(minText) ?? 65536, 65536))
    }
}
