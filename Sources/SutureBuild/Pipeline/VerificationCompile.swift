import Foundation

/// Recompiles an original unit the way the target was compiled: the recorded command line without the
/// wrapper's `-ffunction-sections -fdata-sections` (its `-g` is kept: it does not change code), in the
/// cache's pristine copy of the original build, into the work directory. `CompiledUnit.verificationObject`
/// explains why the target check needs it.
enum VerificationCompile {
    /// The arguments (real compiler first) compiling `unit` to `object`, moved from `tree` to `pristine`;
    /// dependency-file options are dropped so nothing is written into the pristine copy.
    static func arguments(for unit: CompiledUnit, treeObject: String, tree: String, pristine: String, object: String) -> [String]? {
        guard let compiler = unit.arguments.first else { return nil }
        let invocation = CompilerInvocation(arguments: Array(unit.arguments.dropFirst()))
        guard let output = invocation.outputs.first(where: { CompileLog.absolute($0.object, in: unit.directory) == treeObject }) else {
            return nil
        }
        var args = invocation.compileOnly(CompilerInvocation.Output(source: output.source, object: object))
        // The wrapper appended its flags after every argument of the compile: drop their last occurrence.
        if let i = args.indices.reversed().first(where: { $0 + 1 < args.count && args[$0] == CompilerWrapper.instrumentFlags[0] && args[$0 + 1] == CompilerWrapper.instrumentFlags[1] }) {
            args.removeSubrange(i...(i + 1))
        }
        var kept: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if ["-MF", "-MT", "-MQ"].contains(a) { i += 2; continue }
            if ["-MD", "-MMD", "-MP"].contains(a) || a.hasPrefix("-MF") || a.hasPrefix("-MT") || a.hasPrefix("-MQ") || a.hasPrefix("-Wp,-MD") || a.hasPrefix("-Wp,-MMD") {
                i += 1
                continue
            }
            kept.append(a)
            i += 1
        }
        return [compiler] + kept.map { rebase($0, from: tree, to: pristine) }
    }

    /// Every occurrence of the tree's path in `argument` replaced by the pristine copy's path.
    static func rebase(_ argument: String, from tree: String, to pristine: String) -> String {
        guard argument.contains(tree) else { return argument }
        return argument.replacingOccurrences(of: tree + "/", with: pristine + "/")
            .replacingOccurrences(of: tree, with: pristine, options: .anchored)
    }

    /// Compiles the verification object; returns its path, or nil when the record cannot be replayed (the
    /// differ then checks the instrumented object).
    /// - Throws: `BuildError` when the compiler fails.
    static func compile(_ unit: CompiledUnit, treeObject: String, tree: URL, pristine: URL, into object: URL, log: URL) throws(BuildError) -> String? {
        guard let args = arguments(for: unit, treeObject: treeObject, tree: tree.path, pristine: pristine.path, object: object.path) else {
            return nil
        }
        try? FileManager.default.createDirectory(at: object.deletingLastPathComponent(), withIntermediateDirectories: true)
        let directory = URL(fileURLWithPath: rebase(unit.directory, from: tree.path, to: pristine.path))
        if let handle = try? FileHandle(forWritingTo: log) {
            _ = try? handle.seekToEnd()
            handle.write(Data("# suture: verification object for \(unit.source): \(args.joined(separator: " "))\n".utf8))
            try? handle.close()
        }
        let outcome = try ToolRunner.run(args[0], Array(args.dropFirst()), in: directory, log: log)
        guard outcome.status == 0 else {
            throw BuildError("compiling \(unit.source) as the target was compiled (without the wrapper's flags) failed with status \(outcome.status) (log: \(log.path)); its last lines:\n" + ToolRunner.tail(log))
        }
        return object.path
    }
}
