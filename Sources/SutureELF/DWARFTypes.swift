internal import CLibDW
import Foundation

/// What the object differ needs from one object's DWARF (DWARF 4/5 as emitted by gcc `-g`): concrete
/// functions (declaration line, line range, inlined callees, the struct types they use), variables, and
/// the layout of every named struct/union/class.
///
/// Relocatable objects are read through libdwfl (`dwfl_report_offline`), which applies the `.rela.debug_*`
/// relocations and gives every section its own address, so line-table rows of different `-ffunction-sections`
/// functions do not overlap.
public final class DWARFObjectInfo {
    /// One concrete (out-of-line) function, or the merge of every concrete instance with the same name
    /// (a function and its `.isra`/`.constprop` clones).
    public struct Function: Sendable, Hashable {
        /// `DW_AT_name` (through `DW_AT_abstract_origin`/`DW_AT_specification`).
        public var name: String
        /// `DW_AT_linkage_name` (C++ mangled name), if any.
        public var linkageName: String?
        /// Source file of the declaration (absolute when the compile directory is known).
        public var declFile: String?
        /// `DW_AT_decl_line`.
        public var declLine: Int
        /// Smallest and largest line of the line-table rows inside the function's code.
        public var lineRange: ClosedRange<Int64>?
        /// Names of the functions inlined into it (`DW_TAG_inlined_subroutine`, nested ones included).
        public var inlined: Set<String>
        /// Names of the struct/union/class types its parameters, variables and return type use (through
        /// pointers, typedefs, arrays and members, transitively).
        public var usedTypes: Set<String>
    }

    /// A variable defined at file scope or a `static` local.
    public struct Variable: Sendable, Hashable {
        /// `DW_AT_name`.
        public var name: String
        /// Declaring function for a `static` local.
        public var function: String?
        /// Source file and line of the declaration.
        public var declFile: String?
        /// `DW_AT_decl_line`.
        public var declLine: Int
        /// Struct/union/class names its type uses.
        public var usedTypes: Set<String>
    }

    /// The layout of a named aggregate.
    public struct Layout: Sendable, Hashable {
        /// Type name (`struct conn`, `union u`, `class Foo`).
        public var name: String
        /// `DW_AT_byte_size`.
        public var size: UInt64
        /// Members in declaration order.
        public var members: [Member]
        /// Source file and line of the declaration.
        public var declFile: String?
        /// `DW_AT_decl_line`.
        public var declLine: Int
    }

    /// One member of an aggregate.
    public struct Member: Sendable, Hashable {
        /// `DW_AT_name` (empty for an anonymous member).
        public var name: String
        /// `DW_AT_data_member_location` (byte offset), or `DW_AT_data_bit_offset / 8`.
        public var offset: UInt64
        /// `DW_AT_data_bit_offset` or `DW_AT_bit_size` information for bit-fields (0 otherwise).
        public var bitOffset: UInt64
        /// A description of the member's type (`int`, `struct conn *`, `char[16]`).
        public var type: String
    }

    /// Concrete functions by `DW_AT_name` (and by linkage name when there is one).
    public private(set) var functions: [String: Function] = [:]
    /// File-scope variables and `static` locals by name (the first of several same-named static locals).
    public private(set) var variables: [String: [Variable]] = [:]
    /// Layouts by type name (`struct conn`); the first complete definition wins.
    public private(set) var layouts: [String: Layout] = [:]
    /// Declaration file and line of every defined function, concrete or not (`static inline` helpers that
    /// exist only where they were inlined).
    public private(set) var declarations: [String: (file: String?, line: Int)] = [:]

    /// Reads the DWARF of the object or executable at `path`.
    /// - Throws: `ELFObjectError` when libdwfl cannot open it or it has no DWARF.
    public init(path: String) throws(ELFObjectError) {
        let cb = UnsafeMutablePointer<Dwfl_Callbacks>.allocate(capacity: 1)
        defer { cb.deallocate() }
        cb.initialize(to: Dwfl_Callbacks(find_elf: nil, find_debuginfo: dwfl_standard_find_debuginfo,
                                         section_address: dwfl_offline_section_address, debuginfo_path: nil))
        guard let dwfl = dwfl_begin(cb) else { throw ELFObjectError("\(path): dwfl_begin failed") }
        defer { dwfl_end(dwfl) }
        dwfl_report_begin(dwfl)
        guard let module = dwfl_report_offline(dwfl, path, path, -1) else {
            throw ELFObjectError("\(path): cannot read DWARF: \(String(cString: dwfl_errmsg(-1)))")
        }
        dwfl_report_end(dwfl, nil, nil)
        var bias: Dwarf_Addr = 0
        guard let dwarf = dwfl_module_getdwarf(module, &bias) else {
            throw ELFObjectError("\(path): no DWARF debug information (compile with -g)")
        }
        var offset: Dwarf_Off = 0
        var next: Dwarf_Off = 0
        var headerSize = 0
        while dwarf_nextcu(dwarf, offset, &next, &headerSize, nil, nil, nil) == 0 {
            var cu = Dwarf_Die()
            if dwarf_offdie(dwarf, offset + Dwarf_Off(headerSize), &cu) != nil {
                readUnit(&cu)
            }
            offset = next
        }
    }

    // MARK: - Reading

    private struct LineRow { var address: UInt64; var line: Int64 }
    private var rows: [LineRow] = []
    private var compDir: String?
    private var typeUse: [UInt64: Set<String>] = [:]     // DIE offset → used aggregate names

    private func readUnit(_ cu: inout Dwarf_Die) {
        compDir = Self.string(&cu, 0x1b)
        rows = []
        var lines: OpaquePointer?
        var count = 0
        if dwarf_getsrclines(&cu, &lines, &count) == 0, let lines {
            for i in 0..<count {
                guard let l = dwarf_onesrcline(lines, i) else { continue }
                var a: Dwarf_Addr = 0
                var n: Int32 = 0
                if dwarf_lineaddr(l, &a) == 0 && dwarf_lineno(l, &n) == 0 && n > 0 {
                    rows.append(LineRow(address: a, line: Int64(n)))
                }
            }
        }
        rows.sort { $0.address < $1.address }
        walk(&cu, function: nil)
    }

    private func walk(_ parent: inout Dwarf_Die, function: String?) {
        var child = Dwarf_Die()
        guard dwarf_child(&parent, &child) == 0 else { return }
        repeat {
            let tag = dwarf_tag(&child)
            switch tag {
            case 0x2e: // subprogram
                readFunction(&child)
            case 0x13, 0x17, 0x02: // structure, union, class
                readLayout(&child)
                walk(&child, function: function)
            case 0x34: // variable
                if function == nil || dwarf_hasattr(&child, 0x02) != 0 { readVariable(&child, function: function) }
            case 0x39, 0x0b: // namespace, lexical block
                walk(&child, function: function)
            default:
                break
            }
            var sibling = Dwarf_Die()
            guard dwarf_siblingof(&child, &sibling) == 0 else { break }
            child = sibling
        } while true
    }

    private func readFunction(_ die: inout Dwarf_Die) {
        // Nested declarations (static locals, local types) matter even for declarations.
        var low: Dwarf_Addr = 0
        let concrete = dwarf_lowpc(&die, &low) == 0
        guard concrete, let name = Self.name(&die) else {
            if dwarf_hasattr(&die, 0x3c) == 0, let name = Self.name(&die) {
                // An abstract instance (inline-only or inlined somewhere): keep where it is declared.
                var declLine: Int32 = 0
                if dwarf_decl_line(&die, &declLine) == 0, declarations[name] == nil {
                    declarations[name] = (declFile(&die), Int(declLine))
                }
                walkLocals(&die, function: name)
            }
            return
        }
        var high: Dwarf_Addr = 0
        if dwarf_highpc(&die, &high) != 0 { high = low + 1 }
        var range: ClosedRange<Int64>?
        if let first = rows.firstIndex(where: { $0.address >= low && $0.address < high }) {
            var lo = Int64.max, hi = Int64.min
            var i = first
            while i < rows.count && rows[i].address < high {
                lo = min(lo, rows[i].line)
                hi = max(hi, rows[i].line)
                i += 1
            }
            range = lo...hi
        }
        var inlined = Set<String>()
        var used = Set<String>()
        if let t = Self.typeDie(&die) { var t = t; used.formUnion(aggregates(&t)) }
        collect(&die, inlined: &inlined, used: &used)
        walkLocals(&die, function: name)
        var declLine: Int32 = 0
        _ = dwarf_decl_line(&die, &declLine)
        let linkage = Self.stringIntegrate(&die, 0x6e)
        let f = Function(name: name, linkageName: linkage, declFile: declFile(&die), declLine: Int(declLine),
                         lineRange: range, inlined: inlined, usedTypes: used)
        if declarations[name] == nil || declarations[name]!.file == nil { declarations[name] = (f.declFile, f.declLine) }
        for key in [name, linkage].compactMap({ $0 }) {
            if var existing = functions[key] {
                existing.inlined.formUnion(f.inlined)
                existing.usedTypes.formUnion(f.usedTypes)
                if let r = f.lineRange {
                    existing.lineRange = existing.lineRange.map { min($0.lowerBound, r.lowerBound)...max($0.upperBound, r.upperBound) } ?? r
                }
                functions[key] = existing
            } else {
                functions[key] = f
            }
        }
    }

    private func walkLocals(_ die: inout Dwarf_Die, function: String?) {
        var child = Dwarf_Die()
        guard dwarf_child(&die, &child) == 0 else { return }
        repeat {
            let tag = dwarf_tag(&child)
            if tag == 0x34, dwarf_hasattr(&child, 0x02) != 0 { readVariable(&child, function: function) }
            if tag == 0x0b { walkLocals(&child, function: function) }
            if tag == 0x13 || tag == 0x17 || tag == 0x02 { readLayout(&child) }
            var sibling = Dwarf_Die()
            guard dwarf_siblingof(&child, &sibling) == 0 else { break }
            child = sibling
        } while true
    }

    /// Inlined callees and used types below a concrete function.
    private func collect(_ die: inout Dwarf_Die, inlined: inout Set<String>, used: inout Set<String>) {
        var child = Dwarf_Die()
        guard dwarf_child(&die, &child) == 0 else { return }
        repeat {
            let tag = dwarf_tag(&child)
            switch tag {
            case 0x1d: // inlined_subroutine
                if let n = Self.name(&child) { inlined.insert(n) }
                if let t = Self.typeDie(&child) { var t = t; used.formUnion(aggregates(&t)) }
                collect(&child, inlined: &inlined, used: &used)
            case 0x05, 0x34: // formal_parameter, variable
                if let t = Self.typeDie(&child) { var t = t; used.formUnion(aggregates(&t)) }
            case 0x0b, 0x4109, 0x48: // lexical block, GNU call site, call site
                collect(&child, inlined: &inlined, used: &used)
            default:
                break
            }
            var sibling = Dwarf_Die()
            guard dwarf_siblingof(&child, &sibling) == 0 else { break }
            child = sibling
        } while true
    }

    private func readVariable(_ die: inout Dwarf_Die, function: String?) {
        guard let name = Self.name(&die) else { return }
        var declLine: Int32 = 0
        _ = dwarf_decl_line(&die, &declLine)
        var used = Set<String>()
        if let t = Self.typeDie(&die) { var t = t; used = aggregates(&t) }
        variables[name, default: []].append(Variable(name: name, function: function, declFile: declFile(&die),
                                                     declLine: Int(declLine), usedTypes: used))
    }

    private func readLayout(_ die: inout Dwarf_Die) {
        guard dwarf_hasattr(&die, 0x3c) == 0, let name = Self.typeName(&die, depth: 0), !name.hasSuffix("<anon>") else { return }
        if layouts[name] != nil { return }
        var members: [Member] = []
        var child = Dwarf_Die()
        if dwarf_child(&die, &child) == 0 {
            repeat {
                if dwarf_tag(&child) == 0x0d {
                    var offset: UInt64 = 0, bit: UInt64 = 0
                    if let v = Self.unsigned(&child, 0x38) { offset = v }
                    if let v = Self.unsigned(&child, 0x6b) { offset = v / 8; bit = v }
                    if let v = Self.unsigned(&child, 0x0d) { bit = bit << 8 | v }
                    var typeText = "?"
                    if var t = Self.typeDie(&child) { typeText = Self.typeName(&t, depth: 0) ?? "?" }
                    members.append(Member(name: Self.name(&child) ?? "", offset: offset, bitOffset: bit, type: typeText))
                }
                var sibling = Dwarf_Die()
                guard dwarf_siblingof(&child, &sibling) == 0 else { break }
                child = sibling
            } while true
        }
        let size = UInt64(max(0, dwarf_bytesize(&die)))
        var declLine: Int32 = 0
        _ = dwarf_decl_line(&die, &declLine)
        layouts[name] = Layout(name: name, size: size, members: members, declFile: declFile(&die), declLine: Int(declLine))
    }

    /// Aggregate names a type uses, through pointers, typedefs, qualifiers, arrays and members.
    private func aggregates(_ die: inout Dwarf_Die) -> Set<String> {
        let key = dwarf_dieoffset(&die)
        if let cached = typeUse[key] { return cached }
        typeUse[key] = []   // cycle guard
        var out = Set<String>()
        let tag = dwarf_tag(&die)
        switch tag {
        case 0x13, 0x17, 0x02:
            if let n = Self.typeName(&die, depth: 0) { out.insert(n) }
            var child = Dwarf_Die()
            if dwarf_child(&die, &child) == 0 {
                repeat {
                    if dwarf_tag(&child) == 0x0d, var t = Self.typeDie(&child) { out.formUnion(aggregates(&t)) }
                    var sibling = Dwarf_Die()
                    guard dwarf_siblingof(&child, &sibling) == 0 else { break }
                    child = sibling
                } while true
            }
        case 0x0f, 0x26, 0x35, 0x16, 0x01, 0x37, 0x10, 0x42:
            if var t = Self.typeDie(&die) { out.formUnion(aggregates(&t)) }
        default:
            break
        }
        typeUse[key] = out
        return out
    }

    private func declFile(_ die: inout Dwarf_Die) -> String? {
        guard let f = dwarf_decl_file(&die) else { return nil }
        let path = String(cString: f)
        if path.hasPrefix("/") || compDir == nil { return path }
        return compDir! + "/" + path
    }

    // MARK: - Attribute helpers

    static func name(_ die: inout Dwarf_Die) -> String? {
        guard let n = dwarf_diename(&die) else { return nil }
        return String(cString: n)
    }

    static func string(_ die: inout Dwarf_Die, _ at: UInt32) -> String? {
        var attr = Dwarf_Attribute()
        guard dwarf_attr(&die, at, &attr) != nil, let s = dwarf_formstring(&attr) else { return nil }
        return String(cString: s)
    }

    static func stringIntegrate(_ die: inout Dwarf_Die, _ at: UInt32) -> String? {
        var attr = Dwarf_Attribute()
        guard dwarf_attr_integrate(&die, at, &attr) != nil, let s = dwarf_formstring(&attr) else { return nil }
        return String(cString: s)
    }

    static func unsigned(_ die: inout Dwarf_Die, _ at: UInt32) -> UInt64? {
        var attr = Dwarf_Attribute()
        var v: Dwarf_Word = 0
        guard dwarf_attr(&die, at, &attr) != nil, dwarf_formudata(&attr, &v) == 0 else { return nil }
        return v
    }

    static func typeDie(_ die: inout Dwarf_Die) -> Dwarf_Die? {
        var attr = Dwarf_Attribute()
        var result = Dwarf_Die()
        guard dwarf_attr_integrate(&die, 0x49, &attr) != nil, dwarf_formref_die(&attr, &result) != nil else { return nil }
        return result
    }

    /// A C-like description of a type (`struct conn *`, `const char[16]`).
    static func typeName(_ die: inout Dwarf_Die, depth: Int) -> String? {
        guard depth < 8 else { return "…" }
        let tag = dwarf_tag(&die)
        let base: String? = {
            guard var t = typeDie(&die) else { return "void" }
            return typeName(&t, depth: depth + 1)
        }()
        switch tag {
        case 0x13: return "struct " + (name(&die) ?? "<anon>")
        case 0x17: return "union " + (name(&die) ?? "<anon>")
        case 0x02: return "class " + (name(&die) ?? "<anon>")
        case 0x04: return "enum " + (name(&die) ?? "<anon>")
        case 0x24, 0x16: return name(&die)
        case 0x0f: return (base ?? "?") + " *"
        case 0x10, 0x42: return (base ?? "?") + " &"
        case 0x26: return "const " + (base ?? "?")
        case 0x35: return "volatile " + (base ?? "?")
        case 0x37: return (base ?? "?") + " restrict"
        case 0x01:
            var count: UInt64?
            var child = Dwarf_Die()
            if dwarf_child(&die, &child) == 0 {
                if let c = unsigned(&child, 0x37) { count = c } else if let u = unsigned(&child, 0x2f) { count = u + 1 }
            }
            return (base ?? "?") + "[\(count.map(String.init) ?? "")]"
        case 0x15: return "function"
        default: return name(&die)
        }
    }
}

extension DWARFObjectInfo {
    /// The source text of function `name` as written: from its declaration line to the brace that closes
    /// its body (C-like brace matching that skips comments, strings and character literals); nil when the
    /// source file cannot be read.
    public func functionSource(_ name: String) -> String? {
        guard let d = declarations[name], let file = d.file, d.line > 0,
              let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard d.line <= lines.count else { return nil }
        var out = ""
        var depth = 0
        var opened = false
        var inBlockComment = false
        for line in lines[(d.line - 1)...] {
            out += line + "\n"
            var i = line.startIndex
            var quote: Character?
            while i < line.endIndex {
                let c = line[i]
                let next = line.index(after: i)
                if inBlockComment {
                    if c == "*" && next < line.endIndex && line[next] == "/" { inBlockComment = false; i = line.index(after: next); continue }
                } else if let q = quote {
                    if c == "\\" { i = next < line.endIndex ? line.index(after: next) : next; continue }
                    if c == q { quote = nil }
                } else if c == "/" && next < line.endIndex && line[next] == "/" {
                    break
                } else if c == "/" && next < line.endIndex && line[next] == "*" {
                    inBlockComment = true; i = line.index(after: next); continue
                } else if c == "\"" || c == "'" {
                    quote = c
                } else if c == "{" {
                    depth += 1; opened = true
                } else if c == "}" {
                    depth -= 1
                    if opened && depth == 0 { return out }
                }
                i = next
            }
        }
        return opened ? out : nil
    }
}
