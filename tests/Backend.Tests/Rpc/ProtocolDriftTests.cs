using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Rpc;
using AttentionViz.Backend.Tests.Support;
using StreamJsonRpc;

namespace AttentionViz.Backend.Tests.Rpc;

/// <summary>
/// The extension's TypeScript side of the protocol (extension/src/shared/generated/protocol.ts, which protocol.ts
/// re-exports) must not drift from the C# side: every method it calls is served, and the fields of each message match
/// the C# records' camelCase names. A cross-check of the generator, read back as a client would.
/// </summary>
[TestClass]
public sealed partial class ProtocolDriftTests
{
    private static string ProtocolTs =>
        File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "extension", "src", "shared", "generated", "protocol.ts"));

    private static IEnumerable<string> ServedMethods() =>
        typeof(BackendServer).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<JsonRpcMethodAttribute>()?.Name)
            .OfType<string>();

    [TestMethod]
    public void EveryMethodTheExtensionCallsIsServed()
    {
        var methods = Regex.Match(ProtocolTs, @"export const Methods = \{(?<body>[^}]*)\}").Groups["body"].Value;
        var called = Regex.Matches(methods, @":\s*'(?<name>[^']+)'").Select(m => m.Groups["name"].Value).ToList();
        Assert.IsGreaterThanOrEqualTo(5, called.Count, "could not read Methods from protocol.ts");
        var served = ServedMethods().ToHashSet();
        foreach (var method in called) Assert.Contains(method, served, $"protocol.ts calls '{method}', which the backend does not serve");
    }

    [TestMethod]
    [DataRow("InitializeParams", typeof(InitializeParams))]
    [DataRow("InitializeResult", typeof(InitializeResult))]
    [DataRow("ModelListEntry", typeof(ModelListEntry))]
    [DataRow("ModelsListParams", typeof(ModelsListParams))]
    [DataRow("AnalyzeParams", typeof(AnalyzeParams))]
    [DataRow("AnalyzeResult", typeof(AnalyzeResult))]
    [DataRow("TokenDto", typeof(TokenDto))]
    [DataRow("ModelSummary", typeof(ModelSummary))]
    [DataRow("MatrixParams", typeof(MatrixParams))]
    [DataRow("MatrixDto", typeof(MatrixDto))]
    [DataRow("RowParams", typeof(RowParams))]
    [DataRow("RowDto", typeof(RowDto))]
    [DataRow("HeadMetric", typeof(HeadMetric))]
    [DataRow("MetricsParams", typeof(MetricsParams))]
    [DataRow("MetricsDto", typeof(MetricsDto))]
    [DataRow("ModularityParams", typeof(ModularityParams))]
    [DataRow("ModularityDto", typeof(ModularityDto))]
    [DataRow("ModularityAllParams", typeof(ModularityAllParams))]
    [DataRow("ModularityAllDto", typeof(ModularityAllDto))]
    [DataRow("ViewUnit", typeof(ViewUnit))]
    [DataRow("ViewParams", typeof(ViewParams))]
    [DataRow("ViewDto", typeof(ViewDto))]
    [DataRow("RolloutParams", typeof(RolloutParams))]
    [DataRow("FlowParams", typeof(FlowParams))]
    [DataRow("FlowDto", typeof(FlowDto))]
    [DataRow("HistogramParams", typeof(HistogramParams))]
    [DataRow("HistogramDto", typeof(HistogramDto))]
    [DataRow("ReleaseParams", typeof(ReleaseParams))]
    [DataRow("ReleaseResult", typeof(ReleaseResult))]
    [DataRow("RenderPngParams", typeof(RenderPngParams))]
    [DataRow("RenderPngResult", typeof(RenderPngResult))]
    [DataRow("ExportParams", typeof(ExportParams))]
    [DataRow("ExportResult", typeof(ExportResult))]
    public void TypeScriptFieldsMatchTheCSharpRecord(string tsInterface, Type record)
    {
        var body = Regex.Match(ProtocolTs, $@"export interface {tsInterface}\s*\{{(?<body>(?:[^{{}}]|\{{[^{{}}]*\}})*)\}}").Groups["body"].Value;
        Assert.IsFalse(string.IsNullOrWhiteSpace(body), $"interface {tsInterface} not found in protocol.ts");
        var withoutComments = Regex.Replace(body, @"/\*.*?\*/|//[^\n]*", "", RegexOptions.Singleline);
        var withoutNested = Regex.Replace(withoutComments, @"\{[^{}]*\}", "");
        var tsFields = Regex.Matches(withoutNested, @"(?<name>[A-Za-z_][A-Za-z0-9_]*)\??\s*:").Select(m => m.Groups["name"].Value).ToHashSet();
        var csFields = record.GetProperties().Select(p => JsonNamingPolicy.CamelCase.ConvertName(p.Name)).ToHashSet();
        var onlyTs = tsFields.Except(csFields).ToList();
        var onlyCs = csFields.Except(tsFields).ToList();
        Assert.IsEmpty(onlyTs, $"{tsInterface}: fields only in TypeScript: {string.Join(", ", onlyTs)}");
        Assert.IsEmpty(onlyCs, $"{tsInterface}: fields only in C# {record.Name}: {string.Join(", ", onlyCs)}");
    }
}
