import Foundation
import SutureCore

/// Several identifiers on one `suture patch` command line: each is resolved on its own, so one unknown
/// identifier is reported without hiding the others.
extension Context {
    /// Resolves `identifier` (as `resolve(_:)`) without exiting.
    /// - Returns: the bundle, or the reason it could not be resolved, as printed.
    func lookup(_ identifier: String) -> Result<ResolvedBundle, LookupFailure> {
        var isDir: ObjCBool = false
        if identifier.contains("/"), FileManager.default.fileExists(atPath: identifier, isDirectory: &isDir),
           isDir.boolValue {
            do { return .success(try BundleReader.read(directory: URL(fileURLWithPath: identifier))) } catch {
                return .failure(LookupFailure(text: "\(error)"))   // the bundle's diagnostics
            }
        }
        do { return .success(try PatchIdentifier.resolve(identifier, among: known)) } catch {
            return .failure(LookupFailure(text: "error: \(error)"))
        }
    }

    /// For verbs that only read (`info`, `target`, `status`, `check`): resolves every identifier, prints
    /// why on stderr for each one that does not resolve, and returns the others in order.
    /// - Returns: the resolved bundles with their identifiers, and how many identifiers failed.
    func resolveEach(_ identifiers: [String]) -> (found: [(id: String, bundle: ResolvedBundle)], failed: Int) {
        var found: [(id: String, bundle: ResolvedBundle)] = []
        var failed = 0
        for id in identifiers {
            switch lookup(id) {
            case let .success(bundle): found.append((id, bundle))
            case let .failure(failure):
                FileHandle.standardError.write(Data("\(failure.text)\n".utf8))
                failed += 1
            }
        }
        return (found, failed)
    }

    /// For verbs that change state (`apply`, `remove`, `accept`): every identifier must resolve before
    /// anything is changed. When one does not, prints each unknown one and each resolved one (with what
    /// it resolved to) and exits 1 without changing anything.
    func resolveAllOrNothing(_ identifiers: [String], verb: String) -> [ResolvedBundle] {
        var good: [String] = []
        var bad: [String] = []
        var bundles: [ResolvedBundle] = []
        for id in identifiers {
            switch lookup(id) {
            case let .success(bundle):
                bundles.append(bundle)
                good.append("  \(id): \(bundle.metadata.qualifiedName) (\(bundle.metadata.uuid))")
            case let .failure(failure):
                bad.append(failure.text)
            }
        }
        guard !bad.isEmpty else { return bundles }
        var text = bad.joined(separator: "\n") + "\n"
        text += "nothing was changed: `suture patch \(verb)` needs every identifier to resolve "
            + "(\(bad.count) of \(identifiers.count) did not)"
        if !good.isEmpty { text += "; resolved:\n" + good.joined(separator: "\n") }
        fail(text)
    }
}

/// Why an identifier did not resolve.
struct LookupFailure: Error {
    /// What to print: `error: no patch matches 'x' (known: …)`, or a bundle directory's diagnostics.
    var text: String
}
