using System.Reflection;
using System.Text.RegularExpressions;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Rpc;
using AttentionViz.Backend.Tests.Support;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>
/// The C# records are the protocol's one source: the committed TypeScript (extension/src/shared/generated) is what
/// the generator writes from them today, and docs/protocol.md documents every method and every param field.
/// </summary>
[TestClass]
public sealed partial class GeneratedProtocolTests
{
    private static string GeneratedFolder => Path.Combine(Fixtures.RepoRoot, "extension", "src", "shared", "generated");

    [TestMethod]
    public void CommittedTypeScriptIsWhatTheGeneratorWrites()
    {
        var fresh = Directory.CreateTempSubdirectory("avz-protocol-");
        try
        {
            Assert.AreEqual(0, ProtocolTypeScript.Write(fresh.FullName));
            var written = fresh.GetFiles().Select(f => f.Name).Order().ToList();
            string[] files = [ProtocolTypeScript.ProtocolFile, ProtocolTypeScript.ViridisFile];
            CollectionAssert.AreEqual(files, written);
            foreach (var name in written)
            {
                var committed = Path.Combine(GeneratedFolder, name);
                Assert.IsTrue(File.Exists(committed), $"{committed} is missing: run ./build.sh");
                var generated = Path.Combine(fresh.FullName, name);
                var (expected, actual) = (File.ReadAllLines(generated), File.ReadAllLines(committed));
                var line = Enumerable.Range(0, Math.Max(expected.Length, actual.Length))
                    .FirstOrDefault(i => expected.ElementAtOrDefault(i) != actual.ElementAtOrDefault(i), -1);
                Assert.AreEqual(-1, line, $"extension/src/shared/generated/{name} is stale from line {line + 1} on " +
                    $"(generated: \"{expected.ElementAtOrDefault(line)}\", " +
                    $"committed: \"{actual.ElementAtOrDefault(line)}\"): run ./build.sh and commit the result");
                Assert.AreEqual(File.ReadAllText(generated), File.ReadAllText(committed), $"{name}: line ends");
            }
        }
        finally
        {
            fresh.Delete(recursive: true);
        }
    }

    [TestMethod]
    public void TheSurfaceIsFoundByReflection()
    {
        var methods = ProtocolTypeScript.Methods().ToDictionary(m => m.WireName);
        Assert.IsGreaterThanOrEqualTo(17, methods.Count);
        Assert.AreEqual(typeof(AnalyzeParams), methods["attention/analyze"].Params);
        Assert.AreEqual(typeof(AnalyzeResult), methods["attention/analyze"].Result, "Task<T> is unwrapped");
        Assert.AreEqual(typeof(ModelListEntry[]), methods["models/list"].Result);
        Assert.IsTrue(methods["initialize"].ParamsOptional);
        Assert.IsFalse(methods["attention/row"].ParamsOptional);
        Assert.IsNull(methods["exit"].Params);
        Assert.IsTrue(methods["exit"].Notification, "a void handler is a notification");
        Assert.IsFalse(methods["shutdown"].Notification, "shutdown answers (null)");
        Assert.IsFalse(methods["attention/release"].Notification);
        Assert.AreEqual("export", methods["attention/export"].Key, "the main area needs no prefix");
        Assert.AreEqual("modelsList", methods["models/list"].Key);
    }

    [TestMethod]
    public void TheGeneratedTypesFollowTheWireRules()
    {
        var ts = ProtocolTypeScript.Generate()[ProtocolTypeScript.ProtocolFile];
        StringAssert.Contains(ts, "  truncatedAt?: number;\n", "a nullable result field is left out when null");
        StringAssert.Contains(ts, "  raw: (number | null)[];\n", "double?[] keeps its nulls");
        StringAssert.Contains(ts, "  png?: string;\n", "ReadOnlyMemory<byte>? is optional base64");
        StringAssert.Contains(ts, "  text: string;\n  modelId?: string;\n", "a param with a default is optional");
        StringAssert.Contains(ts, "export interface MetricsParams {\n  analysisId: string;\n}", "no default: required");
        StringAssert.Contains(ts, "  ModelFileInvalid: -32002,\n");
        StringAssert.Contains(ts, "  RequestCanceled: -32800,\n");
        StringAssert.Contains(ts, "  /** segment: 0, or 1 for the second text", "a <param> documents its field");
    }

    [TestMethod]
    public void NotificationsHaveTheirOwnMapWithoutAResult()
    {
        var ts = ProtocolTypeScript.Generate()[ProtocolTypeScript.ProtocolFile];
        StringAssert.Contains(ts, "export interface NotificationMap {\n  'exit': { params: void };\n}\n");
        var requests = ts[ts.IndexOf("export interface RequestMap {", StringComparison.Ordinal)..];
        requests = requests[..requests.IndexOf("}\n", StringComparison.Ordinal)];
        StringAssert.Contains(requests, "  'shutdown': { params: void; result: unknown };\n");
        Assert.DoesNotContain("'exit'", requests, "exit is never answered: no request");
    }

    [TestMethod]
    public void TheMetricNamesAreTheBackendsList()
    {
        var ts = ProtocolTypeScript.Generate()[ProtocolTypeScript.ProtocolFile];
        var names = string.Concat(HeadMetrics.Names.Select(n => $"  '{n}',\n"));
        StringAssert.Contains(ts, $"export const METRIC_NAMES = [\n{names}] as const;\n");
        StringAssert.Contains(ts, "export type MetricName = (typeof METRIC_NAMES)[number];\n");
    }

    /// <summary>
    /// Every method has a signature in docs/protocol.md, `method {a, b?}` or a table row `| `method` | `{a?}` |`
    /// (`none` without params), naming exactly the record's fields; a field the docs call optional is optional.
    /// </summary>
    [TestMethod]
    public void DocsDocumentEveryMethodAndParamField()
    {
        var docs = File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "docs", "protocol.md"));
        var documented = new Dictionary<string, string>();
        foreach (Match m in InlineSignature().Matches(docs))
            documented.TryAdd(m.Groups["method"].Value, m.Groups["params"].Value);
        foreach (Match m in TableSignature().Matches(docs))
            documented.TryAdd(m.Groups["method"].Value, m.Groups["params"].Success ? m.Groups["params"].Value : "");

        var methods = ProtocolTypeScript.Methods();
        foreach (var method in methods)
        {
            var wire = method.WireName;
            Assert.IsTrue(documented.TryGetValue(wire, out var list), $"docs/protocol.md does not document {wire}");
            var fields = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .ToDictionary(f => f.TrimEnd('?'), f => f.EndsWith('?'));
            var record = method.Params?.GetProperties(BindingFlags.Public | BindingFlags.Instance) ?? [];
            var optional = OptionalParams(method.Params);
            foreach (var property in record)
            {
                var name = char.ToLowerInvariant(property.Name[0]) + property.Name[1..];
                Assert.IsTrue(fields.Remove(name, out var docsOptional), $"docs/protocol.md: {wire} lacks '{name}'");
                if (docsOptional) Assert.Contains(property.Name, optional, $"docs/protocol.md: {wire} needs '{name}'");
            }
            Assert.IsEmpty(fields, $"docs/protocol.md: {wire} has no params {string.Join(", ", fields.Keys)}");
        }
        var unknown = documented.Keys.Except(methods.Select(m => m.WireName)).ToList();
        Assert.IsEmpty(unknown, $"docs/protocol.md documents methods nobody serves: {string.Join(", ", unknown)}");
    }

    private static HashSet<string> OptionalParams(Type? record) =>
        record?.GetConstructors().SelectMany(c => c.GetParameters()).Where(p => p.HasDefaultValue)
            .Select(p => p.Name!).ToHashSet() ?? [];

    [GeneratedRegex(@"`(?<method>[a-z]+(?:/[a-zA-Z]+)?) \{(?<params>[^}]*)\}`")]
    private static partial Regex InlineSignature();

    [GeneratedRegex(@"^\| `(?<method>[a-z]+(?:/[a-zA-Z]+)?)`[^|]*\| (?:`\{(?<params>[^}]*)\}`|none) \|",
        RegexOptions.Multiline)]
    private static partial Regex TableSignature();
}
