import Foundation

/// What a compiler command line does, read from its argv the way gcc and clang read it.
///
/// Used on the compile records of the build wrapper (`CompilerWrapper`): which arguments are source files,
/// which object file each one produces, and whether the invocation compiles to an object at all (`-c`
/// without `-E`, `-S`, `-M`, `-MM` or `-fsyntax-only`). Response files (`@file`) are not expanded.
public struct CompilerInvocation: Sendable, Hashable {
    /// One source file and the object compiled from it.
    public struct Output: Sendable, Hashable {
        /// The source path as written on the command line (relative to the working directory or absolute).
        public var source: String
        /// The object path as gcc writes it: `-o FILE`, else the source's base name with `.o`, in the
        /// working directory. Relative to the working directory unless absolute.
        public var object: String

        /// Memberwise initializer.
        public init(source: String, object: String) {
            self.source = source
            self.object = object
        }
    }

    /// True for `-c` compiles to an object file (not preprocess-only, assembly output or dependency-only
    /// runs, which have no object).
    public var compilesToObject: Bool
    /// True for a compile-and-link (`gcc server.c -o server`): sources, no `-c`, nothing that stops early.
    /// `outputs` then names the objects `compileOnly` writes.
    public var compilesAndLinks: Bool
    /// The arguments as given.
    public var arguments: [String]
    /// The sources and their objects (empty for a link-only or preprocess-only run).
    public var outputs: [Output]

    private var sources: [String]
    private var output: String?

    /// For a compile-and-link, the arguments compiling `output.source` alone to `output.object`: the
    /// other sources and `-o` removed, `-c -o OBJECT` appended (linker options are ignored by a `-c`
    /// compile).
    public func compileOnly(_ output: Output) -> [String] {
        var result: [String] = []
        var i = 0
        var skippedSources = sources.filter { $0 != output.source }
        while i < arguments.count {
            let a = arguments[i]
            if a == "-o" {
                i += 2
                continue
            }
            if a.hasPrefix("-o"), a.count > 2 {
                i += 1
                continue
            }
            if Self.optionsWithSeparateValue.contains(a) || a == "-x" {
                result.append(a)
                if i + 1 < arguments.count { result.append(arguments[i + 1]) }
                i += 2
                continue
            }
            if let k = skippedSources.firstIndex(of: a), !a.hasPrefix("-") {
                skippedSources.remove(at: k)
                i += 1
                continue
            }
            result.append(a)
            i += 1
        }
        return result + ["-c", "-o", output.object]
    }

    /// Options whose value is the next argument (`-o out.o`, `-I dir`, `-MF deps.d`, …), for gcc and clang.
    static let optionsWithSeparateValue: Set<String> = [
        "-o", "-x", "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-iquote", "-idirafter", "-iprefix",
        "-iwithprefix", "-iwithprefixbefore", "-isysroot", "-imultilib", "-MF", "-MT", "-MQ", "-Xlinker",
        "-Xassembler", "-Xpreprocessor", "-Xclang", "-aux-info", "--param", "-L", "-A", "-T", "-u", "-z", "-e",
        "-target", "--target", "-arch", "-dumpbase", "-dumpdir", "-dumpbase-ext", "--sysroot", "-l",
        "-gcc-toolchain", "--gcc-toolchain", "-specs", "-isystem-after", "-cxx-isystem", "-ivfsoverlay",
    ]

    /// Extensions gcc compiles or assembles (`gcc -x` languages inferred from the file name).
    static let sourceExtensions: Set<String> = [
        "c", "i", "cc", "cp", "cxx", "cpp", "c++", "C", "CPP", "ii", "s", "S", "sx", "m", "mi", "mm", "M", "mii",
        "f", "for", "ftn", "F", "FOR", "fpp", "FPP", "FTN", "f90", "f95", "f03", "f08", "F90", "F95", "F03", "F08",
        "go", "d", "adb", "ads",
    ]

    /// Options that stop before an object is written.
    static let noObjectOptions: Set<String> = ["-E", "-S", "-M", "-MM", "-fsyntax-only", "--preprocess", "--assemble"]

    /// Reads `arguments` (argv without the compiler itself).
    public init(arguments: [String]) {
        var compile = false
        var stops = false
        var output: String?
        var sources: [String] = []
        var language: String?          // active `-x LANG` (nil or "none": infer from the name)
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "-c" || a == "--compile" {
                compile = true
            } else if Self.noObjectOptions.contains(a) {
                stops = true
            } else if a == "-o" {
                if i + 1 < arguments.count { output = arguments[i + 1] }
                i += 2
                continue
            } else if a.hasPrefix("-o"), a.count > 2 {
                output = String(a.dropFirst(2))
            } else if a == "-x" {
                if i + 1 < arguments.count { language = arguments[i + 1] }
                i += 2
                continue
            } else if a.hasPrefix("-x"), a.count > 2 {
                language = String(a.dropFirst(2))
            } else if Self.optionsWithSeparateValue.contains(a) {
                i += 2
                continue
            } else if a.hasPrefix("-") && a != "-" {
                // Any other option, its value joined (`-DX=1`, `-MFfile`, `-Wl,…`, `--sysroot=…`).
            } else if a.hasPrefix("@") {
                // A response file: not expanded.
            } else if let lang = language, lang != "none" {
                sources.append(a)
            } else if Self.sourceExtensions.contains((a as NSString).pathExtension) {
                sources.append(a)
            }
            i += 1
        }
        self.arguments = arguments
        compilesToObject = compile && !stops && !sources.isEmpty
        compilesAndLinks = !compile && !stops && !sources.isEmpty
        self.sources = sources
        self.output = output
        if compilesAndLinks {
            // Objects for the sources of a compile-and-link: `.suture-objects/<output>/<source>.o`, made
            // by `compileOnly`; the same names in every build of the tree.
            let linked = ((output ?? "a.out") as NSString).lastPathComponent
            outputs = sources.map { source in
                let name = source.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "..", with: "__")
                return Output(source: source, object: ".suture-objects/\(linked)/\(name).o")
            }
            return
        }
        guard compilesToObject else {
            outputs = []
            return
        }
        if let output, sources.count == 1 {
            outputs = [Output(source: sources[0], object: output)]
        } else {
            outputs = sources.map { source in
                let base = ((source as NSString).lastPathComponent as NSString).deletingPathExtension
                return Output(source: source, object: base + ".o")
            }
        }
    }
}
