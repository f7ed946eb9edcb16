import SutureELF

/// DWARF of the objects being diffed, read once per object (nil when an object has no usable DWARF).
final class DebugInfoCache {
    private var cache: [String: DWARFObjectInfo?] = [:]

    func info(_ obj: RelocatableObject) -> DWARFObjectInfo? {
        if let hit = cache[obj.path] { return hit }
        let info = try? DWARFObjectInfo(path: obj.path)
        cache[obj.path] = info
        return info
    }

    /// `file:line` of a function or variable declaration, for messages ("" when unknown).
    func location(of name: String, in obj: RelocatableObject) -> String {
        guard let info = info(obj) else { return "" }
        let base = SymbolKey.base(of: name)
        if let f = info.function(named: name), let file = f.declFile { return " at \(Self.short(file)):\(f.declLine)" }
        if let v = info.variables[name]?.first ?? info.variables[base]?.first, let file = v.declFile {
            return " at \(Self.short(file)):\(v.declLine)"
        }
        return ""
    }

    /// A path shortened to its last two components for messages.
    static func short(_ path: String) -> String {
        let parts = path.split(separator: "/")
        return parts.suffix(2).joined(separator: "/")
    }
}

extension DWARFObjectInfo {
    /// The concrete function for a symbol name (`parse.isra.0` → `parse`; C++ by linkage name).
    func function(named symbol: String) -> Function? {
        functions[symbol] ?? functions[SymbolKey.base(of: symbol)]
    }

    /// Names of the functions inlined into the function of symbol `symbol`.
    func inlinedCallees(of symbol: String) -> [String] {
        Array(function(named: symbol)?.inlined ?? [])
    }
}
