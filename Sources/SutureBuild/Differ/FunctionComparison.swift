import SutureELF

/// How a patched function compares with its original.
enum FunctionComparison: Equatable {
    /// Same bytes outside relocation fields and the same relocations (type, symbolic target, addend).
    case same
    /// Different; `reason` says where (for logs and tests).
    case changed(reason: String)
    /// Same size and relocations; the bytes differ only at these offsets.
    case bytesOnly(offsets: [Int])
}

enum SymbolComparer {
    /// Compares function (or data) `o` of `original` with `p` of `patched`, relocations compared symbolically.
    static func compare(_ original: RelocatableObject, _ o: ELFSymbol, _ patched: RelocatableObject, _ p: ELFSymbol)
        -> FunctionComparison {
        if o.size != p.size { return .changed(reason: "size \(o.size) -> \(p.size)") }
        var ob = original.bytes(of: o), pb = patched.bytes(of: p)
        if original.sections[Int(o.sectionIndex)].isNoBits { ob = [UInt8](repeating: 0, count: Int(o.size)) }
        if patched.sections[Int(p.sectionIndex)].isNoBits { pb = [UInt8](repeating: 0, count: Int(p.size)) }
        let orel = original.relocations(of: o), prel = patched.relocations(of: p)
        if orel.count != prel.count { return .changed(reason: "relocation count \(orel.count) -> \(prel.count)") }
        var ovisit = Set<Int>(), pvisit = Set<Int>()
        for (a, b) in zip(orel, prel) {
            let ao = a.offset - o.value, bo = b.offset - p.value
            if ao != bo || a.type != b.type {
                return .changed(reason: "relocation at +0x\(String(ao, radix: 16)) differs in place or type")
            }
            let (ra, aa) = original.referent(a, visiting: &ovisit)
            let (rb, ab) = patched.referent(b, visiting: &pvisit)
            if ra != rb || aa != ab {
                return .changed(reason: "relocation at +0x\(String(ao, radix: 16)): \(ra)\(aa >= 0 ? "+" : "")\(aa) -> \(rb)\(ab >= 0 ? "+" : "")\(ab)")
            }
            mask(&ob, at: Int(ao), type: a.type)
            mask(&pb, at: Int(bo), type: b.type)
        }
        if ob.count != pb.count { return .changed(reason: "contents unreadable") }
        let diffs = ob.indices.filter { ob[$0] != pb[$0] }
        return diffs.isEmpty ? .same : .bytesOnly(offsets: diffs)
    }

    /// Whether the differing bytes are all inside little-endian immediates whose original value is a line
    /// number in `lines` and whose patched value is that line plus `delta` (see docs/build.md).
    static func onlyLineNumbers(original: [UInt8], patched: [UInt8], offsets: [Int], delta: Int64,
                                lines: ClosedRange<Int64>) -> Bool {
        guard delta != 0 else { return false }
        var covered = Set<Int>()
        for d in offsets where !covered.contains(d) {
            var explained = false
            // Try 4-, 2- and 1-byte immediates that contain offset d.
            search: for width in [4, 2, 1] {
                for start in max(0, d - width + 1)...d where start + width <= original.count {
                    let ov = le(original, start, width), pv = le(patched, start, width)
                    if lines.contains(ov) && pv == ov + delta {
                        for i in start..<(start + width) { covered.insert(i) }
                        explained = true
                        break search
                    }
                }
            }
            if !explained { return false }
        }
        return true
    }

    private static func le(_ b: [UInt8], _ start: Int, _ width: Int) -> Int64 {
        var v: Int64 = 0
        for i in (0..<width).reversed() { v = v << 8 | Int64(b[start + i]) }
        return v
    }
}
