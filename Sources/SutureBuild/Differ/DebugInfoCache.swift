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
        if let f = info.function(named: name), let file = f.declFile { return " at \(Self.relative(file, to: obj.directory)):\(f.declLine)" }
        if let v = info.variables[name]?.first ?? info.variables[base]?.first, let file = v.declFile {
            return " at \(Self.relative(file, to: obj.directory)):\(v.declLine)"
        }
        return ""
    }

    /// A path relative to the tree root `directory` when inside it, else as is.
    static func relative(_ path: String, to directory: String) -> String {
        let root = directory.hasSuffix("/") ? directory : directory + "/"
        return !directory.isEmpty && path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
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
