import Foundation

// The interface between the object differ (this directory) and the `suture build` pipeline
// (Sources/SutureBuild/Pipeline). See docs/build.md, "How the differ decides".

/// One translation unit compiled by the build wrapper.
public struct CompiledUnit: Sendable, Hashable, Codable {
    /// Path of the source file relative to the tree root (`src/inet_net_pton.c`).
    public var source: String
    /// Absolute path of the object file produced.
    public var object: String
    /// The full compiler argv as run (after the wrapper added its flags).
    public var arguments: [String]
    /// Working directory of the compile.
    public var directory: String
    /// For an original unit: the same source compiled without the wrapper's flags (as the target was), which
    /// the target check compares against the target's bytes. `-ffunction-sections` changes how the assembler
    /// relaxes branches (a `jmp rel32` in one `.text` can become `jmp rel8` in a function's own section), so
    /// the instrumented object does not always reproduce a target built without it. Nil: check `object`.
    public var verificationObject: String?

    /// Creates a unit record.
    public init(source: String, object: String, arguments: [String], directory: String, verificationObject: String? = nil) {
        self.source = source
        self.object = object
        self.arguments = arguments
        self.directory = directory
        self.verificationObject = verificationObject
    }
}

/// What to diff and against which target.
///
/// `original` and `patched` hold the units the patch changed (same `source` in both lists; a unit only in
/// `patched` is a new unit). `target` is the ELF as it runs; `symbols` an ELF with a `.symtab` and the
/// target's build-id (the target itself when it is not stripped).
public struct SynthesisRequest: Sendable {
    /// Changed units, original build.
    public var original: [CompiledUnit]
    /// The same units, patched build.
    public var patched: [CompiledUnit]
    /// Path of the ELF as it runs (executable or shared library).
    public var target: String
    /// ELF with `.symtab` and the target's build-id (may equal `target`).
    public var symbols: String
    /// Where the payload object and scratch files go (created if missing).
    public var workDirectory: String

    /// Creates a request.
    public init(original: [CompiledUnit], patched: [CompiledUnit], target: String, symbols: String,
                workDirectory: String) {
        self.original = original
        self.patched = patched
        self.target = target
        self.symbols = symbols
        self.workDirectory = workDirectory
    }
}

/// What the differ produced for one target.
public struct SynthesisResult: Sendable, Codable {
    /// Path of the payload: an x86-64 `ET_REL` object in the work directory.
    public var payload: String
    /// Changed functions present in the target, each replaced by a payload function.
    public var functions: [ReplacedFunction]
    /// Payload-only functions (new static helpers, `.cold`/`.part` parts of replaced functions, …).
    public var newFunctions: [String]
    /// Functions whose code differs only by `__LINE__`-like constants: NOT replaced.
    public var lineNumberOnly: [String]
    /// Replaced function → changed functions inlined into it (from `DW_TAG_inlined_subroutine`).
    public var inlinedCauses: [String: [String]]
    /// Data objects living in the patch (new variables, new string literals are not listed).
    public var newData: [String]
    /// Payload undefined symbols bound to target addresses (the bundle's `target_symbols`).
    public var targetSymbols: [TargetSymbolReference]
    /// Undefined symbols left to run-time resolution (libc, …): the bundle's `imports`.
    public var imports: [String]

    /// Creates a result.
    public init(payload: String, functions: [ReplacedFunction], newFunctions: [String], lineNumberOnly: [String],
                inlinedCauses: [String: [String]], newData: [String], targetSymbols: [TargetSymbolReference],
                imports: [String]) {
        self.payload = payload
        self.functions = functions
        self.newFunctions = newFunctions
        self.lineNumberOnly = lineNumberOnly
        self.inlinedCauses = inlinedCauses
        self.newData = newData
        self.targetSymbols = targetSymbols
        self.imports = imports
    }
}

/// One target function the payload replaces.
public struct ReplacedFunction: Sendable, Codable, Hashable {
    /// Name in the target (`inet_net_pton_ipv6`).
    public var symbol: String
    /// Source unit (disambiguates same-named `static` functions).
    public var unit: String
    /// Entry address in the target minus its link base (`patch.yaml` `offset`).
    public var offset: UInt64
    /// `st_size` in the target.
    public var size: UInt64
    /// The payload's symbol that replaces it.
    public var replacement: String

    /// Creates a record.
    public init(symbol: String, unit: String, offset: UInt64, size: UInt64, replacement: String) {
        self.symbol = symbol
        self.unit = unit
        self.offset = offset
        self.size = size
        self.replacement = replacement
    }
}

/// A payload undefined symbol bound to an address in the target.
public struct TargetSymbolReference: Sendable, Codable, Hashable {
    /// Undefined symbol name in the payload (unique; a local's name is qualified by its unit).
    public var payloadSymbol: String
    /// Name in the target's `.symtab` (for a reused string literal: a description such as `"<string>"`).
    public var targetSymbol: String
    /// Address in the target minus link base (`patch.yaml` `target_symbols.offset`).
    public var offset: UInt64

    /// Creates a record.
    public init(payloadSymbol: String, targetSymbol: String, offset: UInt64) {
        self.payloadSymbol = payloadSymbol
        self.targetSymbol = targetSymbol
        self.offset = offset
    }
}

/// One clear error from `suture build`; `description` is what the CLI prints.
public struct BuildError: Error, Sendable, CustomStringConvertible {
    /// The message: what was refused or failed, naming the symbol, unit, type or file:line.
    public var message: String

    /// Creates an error.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}

/// Turns original/patched object pairs into a payload for one target ELF.
public enum PatchSynthesizer {
    /// Diffs original vs patched objects, checks the original objects against the target's bytes (every
    /// function of a changed unit found in the target must match, relocation fields masked; a mismatch is an
    /// error naming the first differing function), refuses what cannot be patched (naming the symbol, type
    /// and `file:line`), and writes the payload into `request.workDirectory`.
    ///
    /// - Returns: nil when none of the changed functions is in this target (e.g. a library of the tree
    ///   that the target does not contain).
    /// - Throws: `BuildError` for unreadable inputs, a target that the original build does not reproduce,
    ///   and every refusal listed in docs/build.md.
    public static func synthesize(_ request: SynthesisRequest) throws(BuildError) -> SynthesisResult? {
        try PatchSynthesisRun(request: request).run()
    }
}
