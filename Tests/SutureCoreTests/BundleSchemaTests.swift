import Foundation
import SutureCore
import SutureTestSupport
import Testing
import Yams

/// `schema/bundle.schema.json` against the examples, the fixtures, the bad corpus and the Swift model.
@Suite struct BundleSchemaTests {
    static let schema = TestSupport.packageRoot.appendingPathComponent("schema/bundle.schema.json")

    /// Every `patch.yaml` under `examples/` and `Tests/Fixtures/bundles/`.
    static func goodFiles() -> [URL] {
        var out: [URL] = []
        for base in ["examples", "Tests/Fixtures/bundles"] {
            let root = TestSupport.packageRoot.appendingPathComponent(base)
            guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in e where url.lastPathComponent == "patch.yaml" { out.append(url) }
        }
        return out.sorted { $0.path < $1.path }
    }

    /// Converts a YAML node to a JSON-compatible value with YAML's resolved scalar types.
    static func json(_ node: Node) -> Any {
        switch node {
        case .scalar(let s):
            switch node.tag.description.replacingOccurrences(of: "tag:yaml.org,2002:", with: "") {
            case "int": return Int(s.string) ?? UInt64(s.string).map { NSNumber(value: $0) } ?? s.string
            case "bool": return ["true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"].contains(s.string)
            case "null": return NSNull()
            case "float": return Double(s.string) ?? s.string
            default: return s.string
            }
        case .mapping(let m):
            var out: [String: Any] = [:]
            for (k, v) in m { out[k.string ?? "\(k)"] = json(v) }
            return out
        case .sequence(let s): return s.map(json)
        case .alias: return NSNull()
        }
    }

    /// Validates each YAML file (converted to JSON) with python3's jsonschema (Draft 2020-12); returns the
    /// error messages per file, in order.
    static func validate(_ files: [URL]) throws -> [[String]] {
        let tmp = try TestSupport.temporaryDirectory("bundle-schema")
        defer { try? FileManager.default.removeItem(at: tmp) }
        var jsonFiles: [String] = []
        for (i, file) in files.enumerated() {
            let text = try String(contentsOf: file, encoding: .utf8)
            let node = try #require(try Yams.compose(yaml: text))
            let out = tmp.appendingPathComponent("\(i).json")
            try JSONSerialization.data(withJSONObject: json(node), options: [.sortedKeys]).write(to: out)
            jsonFiles.append(out.path)
        }
        let script = """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            jsonschema.Draft202012Validator.check_schema(schema)
            v = jsonschema.Draft202012Validator(schema)
            print(json.dumps([[e.message for e in v.iter_errors(json.load(open(f)))] for f in sys.argv[2:]]))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, Self.schema.path] + jsonFiles
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "python3 jsonschema failed (run scripts/setup)")
        return try JSONDecoder().decode([[String]].self, from: data)
    }

    @Test func examplesAndFixturesValidate() throws {
        let files = Self.goodFiles()
        #expect(files.count >= 2)
        let results = try Self.validate(files)
        #expect(results.count == files.count)
        for (file, errors) in zip(files, results) {
            #expect(errors.isEmpty, "\(file.path): \(errors)")
            // And our reader accepts the same files.
            #expect(throws: Never.self) { try BundleReader.read(directory: file.deletingLastPathComponent()) }
        }
    }

    /// The schema is not vacuous: bad-corpus cases whose defect is in patch.yaml's structure fail it too.
    @Test func schemaRejectsStructuralDefects() throws {
        let cases = ["bad-uuid", "unknown-key", "wrong-type", "format-too-new", "empty-entities", "bad-kind",
                     "absolute-payload", "path-escape", "relative-user-target", "kernel-without-module-name", "kernel-entity-with-functions"]
        let files = cases.map { TestSupport.fixtures.appendingPathComponent("bad-bundles/\($0)/patch.yaml") }
        let results = try Self.validate(files)
        for (name, errors) in zip(cases, results) {
            #expect(!errors.isEmpty, "\(name) passed the schema")
        }
    }

    /// Key paths (`entities[].functions[].symbol`) of a JSON value.
    static func keyPaths(_ value: Any, prefix: String = "") -> Set<String> {
        var out = Set<String>()
        if let dict = value as? [String: Any] {
            for (k, v) in dict {
                let path = prefix.isEmpty ? k : "\(prefix).\(k)"
                out.insert(path)
                out.formUnion(keyPaths(v, prefix: path))
            }
        } else if let array = value as? [Any] {
            for v in array { out.formUnion(keyPaths(v, prefix: prefix + "[]")) }
        }
        return out
    }

    /// Property paths the schema declares, following `$ref`, `items` and every subschema keyword.
    static func schemaPaths(_ node: Any, root: [String: Any], prefix: String = "", depth: Int = 0) -> Set<String> {
        guard depth < 32, let schema = node as? [String: Any] else { return [] }
        var out = Set<String>()
        if let ref = schema["$ref"] as? String, ref.hasPrefix("#/$defs/"),
           let defs = root["$defs"] as? [String: Any], let target = defs[String(ref.dropFirst(8))] {
            out.formUnion(schemaPaths(target, root: root, prefix: prefix, depth: depth + 1))
        }
        if let properties = schema["properties"] as? [String: Any] {
            for (k, v) in properties {
                let path = prefix.isEmpty ? k : "\(prefix).\(k)"
                out.insert(path)
                out.formUnion(schemaPaths(v, root: root, prefix: path, depth: depth + 1))
            }
        }
        if let items = schema["items"] {
            out.formUnion(schemaPaths(items, root: root, prefix: prefix + "[]", depth: depth + 1))
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            for sub in schema[key] as? [Any] ?? [] {
                out.formUnion(schemaPaths(sub, root: root, prefix: prefix, depth: depth + 1))
            }
        }
        for key in ["then", "else"] {
            if let sub = schema[key] { out.formUnion(schemaPaths(sub, root: root, prefix: prefix, depth: depth + 1)) }
        }
        return out
    }

    @Test func schemaPropertiesEqualModelCodingKeys() throws {
        // Every optional field set, so every coding key appears in the encoding.
        let full = BundleMetadata(
            name: "n", version: "1", release: "1", uuid: "0d3c6a5e-4b1f-4c9a-9e2d-7f1a2b3c4d5e", kind: .user,
            description: "d", target: BundleTarget(package: "p", version: "1", arch: "x86_64"),
            entities: [BundleEntity(targetPath: "/t", targetBuildID: "ab", payload: "p.o",
                                    payloadSHA256: String(repeating: "0", count: 64), moduleName: "m",
                                    replace: true,
                                    functions: [FunctionPatch(symbol: "f", offset: 1, size: 2, expectedBytes: "90",
                                                              replacement: "g")],
                                    imports: ["x"], targetSymbols: [TargetSymbol(symbol: "v", offset: 3)],
                                    targetLinkBase: 0x400000)],
            patches: [BundleSourcePatch(file: "a.patch", sha256: String(repeating: "0", count: 64))])
        let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(full))
        let modelKeys = Self.keyPaths(encoded)
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: Self.schema)) as? [String: Any])
        let schemaKeys = Self.schemaPaths(schema, root: schema)
        #expect(modelKeys == schemaKeys,
                "only in model: \(modelKeys.subtracting(schemaKeys).sorted()); only in schema: \(schemaKeys.subtracting(modelKeys).sorted())")
        #expect(modelKeys.contains("entities[].functions[].expected_bytes"))
        // Every object in the schema refuses unknown keys.
        func closed(_ node: Any) -> Bool {
            if let d = node as? [String: Any] {
                if d["type"] as? String == "object" && d["additionalProperties"] as? Bool != false { return false }
                return d.values.allSatisfy(closed)
            }
            if let a = node as? [Any] { return a.allSatisfy(closed) }
            return true
        }
        #expect(closed(schema))
    }
}
