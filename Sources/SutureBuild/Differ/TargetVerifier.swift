import SutureELF

/// Checks that an original object reproduces the target: every function of it that the target defines
/// (by name, locals within the unit's `STT_FILE` group) has the target's size and bytes, relocation fields
/// masked. Linker relaxations rewrite instruction bytes next to some relocation fields
/// (`GOTPCRELX`/`REX_GOTPCRELX`: `mov` → `lea`, `call *` → `addr32 call`; TLS sequences), so those bytes are
/// masked too.
enum TargetVerifier {
    /// - Returns: whether any function of the object is in the target (false: the unit is not linked into it).
    /// - Throws: `BuildError` naming the first function that differs.
    static func verify(_ o: RelocatableObject, against target: TargetImage, debug: DebugInfoCache) throws(BuildError) -> Bool {
        // A unit of another program or library of the tree (no file symbol of that name): not this target's.
        guard target.hasFile(for: o.unit) else { return false }
        var found = 0
        for f in o.functions.sorted(by: { ($0.sectionIndex, $0.value) < ($1.sectionIndex, $1.value) }) {
            let local = f.binding == ELFSymbol.bindLocal
            guard let t = try target.lookup(f.name, unit: o.unit, local: local) else { continue }
            found += 1
            if t.size != f.size {
                throw BuildError("the rebuild does not reproduce the target: function \(f.name) (unit \(o.unit)\(debug.location(of: f.name, in: o))) is \(f.size) bytes in the rebuild and \(t.size) in \(target.path); wrong base tree or flags?")
            }
            var mine = o.bytes(of: f)
            var theirs = try target.bytes(at: t.value, count: Int(f.size))
            for r in o.relocations(of: f) {
                let at = Int(r.offset - f.value)
                var start = at, end = at + relocationWidth(r.type)
                switch r.type {
                case 41, 42, 9: start = max(0, at - 3)                   // GOTPCRELX relaxations rewrite the opcode
                case 19, 20, 21, 22, 23, 34, 35, 36: start = max(0, at - 4); end = at + 12   // TLS model relaxations
                default: break
                }
                for i in start..<min(end, mine.count) { mine[i] = 0; theirs[i] = 0 }
            }
            if let d = mine.indices.first(where: { mine[$0] != theirs[$0] }) {
                throw BuildError("the rebuild does not reproduce the target: function \(f.name) (unit \(o.unit)\(debug.location(of: f.name, in: o))) differs at +0x\(String(d, radix: 16)); wrong base tree or flags?")
            }
        }
        return found > 0
    }
}
