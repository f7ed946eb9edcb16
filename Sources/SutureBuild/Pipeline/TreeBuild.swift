import Foundation

/// Runs the user's build command in a tree under the compiler wrapper and collects its compiles.
public struct TreeBuild: Sendable {
    /// The shell command (`/bin/sh -c`), run in the tree root.
    public var command: String
    /// Parallel jobs: exported as `MAKEFLAGS=-jN` (unless `MAKEFLAGS` is set) and
    /// `CMAKE_BUILD_PARALLEL_LEVEL=N`.
    public var jobs: Int
    /// The wrapper directory (`CompilerWrapper.install`).
    public var wrapperDirectory: URL
    /// name → real compiler, as installed.
    public var compilers: [String: String]
    /// The environment the build starts from (the caller's).
    public var baseEnvironment: [String: String]

    /// Creates a build description.
    public init(command: String, jobs: Int, wrapperDirectory: URL, compilers: [String: String],
                baseEnvironment: [String: String] = ProcessInfo.processInfo.environment) {
        self.command = command
        self.jobs = jobs
        self.wrapperDirectory = wrapperDirectory
        self.compilers = compilers
        self.baseEnvironment = baseEnvironment
    }

    /// The environment of a build: the wrapper first on `PATH`, `CC`/`CXX` pointing at it (a `CC` naming
    /// a wrapped compiler is redirected to its wrapper; unset means `cc`/`c++`), the record directory and
    /// the wrapper mode.
    public func environment(records: URL, mode: String, prefix: URL?) -> [String: String] {
        var env = baseEnvironment
        env["PATH"] = wrapperDirectory.path + ":" + (baseEnvironment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        func wrapped(_ variable: String, _ fallback: String) -> String {
            if let value = baseEnvironment[variable], !value.isEmpty {
                let words = value.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
                let name = (words[0] as NSString).lastPathComponent
                if compilers[name] != nil {
                    return ([wrapperDirectory.appendingPathComponent(name).path] + words.dropFirst()).joined(separator: " ")
                }
                return value
            }
            return wrapperDirectory.appendingPathComponent(compilers[fallback] != nil ? fallback : "gcc").path
        }
        env["CC"] = wrapped("CC", "cc")
        env["CXX"] = wrapped("CXX", "c++")
        env[CompilerWrapper.logVariable] = records.path
        env[CompilerWrapper.modeVariable] = mode
        if let prefix { env[CompilerWrapper.prefixVariable] = prefix.path } else { env[CompilerWrapper.prefixVariable] = nil }
        if env["MAKEFLAGS"] == nil { env["MAKEFLAGS"] = "-j\(jobs)" }
        env["CMAKE_BUILD_PARALLEL_LEVEL"] = "\(jobs)"
        return env
    }

    /// Runs the command in `tree` (wrapper `mode` `instrument` or `plain`), its output in `log`, and returns
    /// the compiles it ran (objects that exist afterwards), sources relative to `tree`.
    /// - Parameter what: how the failure message names this build ("the original build").
    /// - Throws: `BuildError` with the exit status and the log's last lines when the command fails.
    public func run(in tree: URL, mode: String = "instrument", records: URL, log: URL, what: String) throws(BuildError) -> [CompiledUnit] {
        try? FileManager.default.removeItem(at: records)
        do {
            try FileManager.default.createDirectory(at: records, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: log.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("$ \(command)\n# in \(tree.path), wrapper mode \(mode)\n".utf8).write(to: log)
        } catch {
            throw BuildError("cannot prepare \(records.path): \(error.localizedDescription)")
        }
        let env = environment(records: records, mode: mode, prefix: mode == "plain" ? tree : nil)
        let outcome = try ToolRunner.run("/bin/sh", ["-c", command], in: tree, environment: env, log: log)
        guard outcome.status == 0 else {
            throw BuildError("\(what) failed: `\(command)` exited with status \(outcome.status) (log: \(log.path)); its last lines:\n" +
                             ToolRunner.tail(log))
        }
        var compiles: [CompilerWrapper.Record] = []
        var derived: Set<[String]> = []
        for record in try CompilerWrapper.readRecords(in: records) {
            let invocation = CompilerInvocation(arguments: Array(record.arguments.dropFirst()))
            guard invocation.compilesAndLinks else {
                compiles.append(record)
                continue
            }
            // A compile-and-link leaves no object: compile each of its sources alone, as it was compiled.
            for output in invocation.outputs {
                let sourcePath = CompileLog.absolute(output.source, in: record.directory)
                guard FileManager.default.fileExists(atPath: sourcePath) else { continue }   // a configure check
                let arguments = [record.arguments[0]] + invocation.compileOnly(output)
                guard derived.insert([record.directory] + arguments).inserted else { continue }
                let object = URL(fileURLWithPath: CompileLog.absolute(output.object, in: record.directory))
                try? FileManager.default.createDirectory(at: object.deletingLastPathComponent(), withIntermediateDirectories: true)
                let note = "# suture: object for \(output.source) of a compile-and-link: \(arguments.joined(separator: " "))\n"
                if let handle = try? FileHandle(forWritingTo: log) {
                    _ = try? handle.seekToEnd()
                    handle.write(Data(note.utf8))
                    try? handle.close()
                }
                let outcome = try ToolRunner.run(arguments[0], Array(arguments.dropFirst()), in: URL(fileURLWithPath: record.directory),
                                                 environment: env, log: log)
                guard outcome.status == 0 else {
                    throw BuildError("\(what): compiling \(output.source) of a compile-and-link to an object failed (status \(outcome.status), log: \(log.path)); its last lines:\n" + ToolRunner.tail(log))
                }
                compiles.append(CompilerWrapper.Record(directory: record.directory, arguments: arguments, time: record.time))
            }
        }
        return CompileLog.units(from: compiles, root: tree.path)
    }
}
