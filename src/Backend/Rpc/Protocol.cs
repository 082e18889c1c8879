using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Rpc;

// The JSON-RPC surface, documented in docs/protocol.md. Names are camelCase on the wire.

public static class ProtocolInfo
{
    public const string ProtocolVersion = "1.0";
    public static string ServerVersion => typeof(ProtocolInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}

public sealed record InitializeParams(string? ClientName = null, string? ClientVersion = null, bool? AllowPickle = null);
public sealed record InitializeResult(string ServerVersion, string ProtocolVersion, string DefaultModel);

public sealed record ModelsListParams(string[]? Paths = null);

/// <param name="Family">the family's name for people (Gemma 3, Phi-3, …); empty with an error</param>
/// <param name="KeyValueHeads">heads of keys and values (fewer than heads with grouped-query attention); 0 when unknown (a broken entry)</param>
/// <param name="Window">the most tokens the model takes (its positions); 0 when unknown</param>
/// <param name="SlidingWindow">the sliding window of the model's windowed layers, or null when every layer sees all earlier tokens</param>
/// <param name="Note">how the checkpoint is read when that is not obvious (a multimodal Gemma 3's images are not analysed)</param>
public sealed record ModelListEntry(string Id, string Name, string Architecture, int Layers, int Heads, string Source, string? Path, long? SizeBytes,
    string? Error, string Family, int KeyValueHeads, int Window, int? SlidingWindow, string? Note)
{
    public static ModelListEntry From(ModelCatalogEntry info) =>
        new(info.Id, info.Name, info.Architecture, info.Layers, info.Heads, info.Source, info.Path, info.SizeBytes, info.Error,
            info.Family, info.KeyValueHeads, info.Window, info.SlidingWindow, info.Note);
}

/// <param name="WorkDoneToken">LSP's work-done token: when given, the server reports `$/progress` under it (layer k of L)</param>
/// <param name="AddSpecialTokens">false: the text's tokens alone, none added around them (a chat template's rendering
/// that already holds BOS and the role markers); default true</param>
public sealed record AnalyzeParams(string? Text, string? ModelId = null, int? MaxTokens = null, string? TextPair = null,
    string? WorkDoneToken = null, bool AddSpecialTokens = true);
/// <param name="TypeId">segment: 0, or 1 for the second text of a pair (whose offsets point into that text)</param>
/// <param name="Display">the text as shown, markers dropped and invisible characters escaped; with
/// <paramref name="Continuation"/> (WordPiece ##) and <paramref name="LeadingSpace"/> (Ġ, ▁): Tokenization/TokenDisplay.cs</param>
public sealed record TokenDto(int Id, string Text, int Start, int End, bool Special, int TypeId, string Display,
    bool Continuation, bool LeadingSpace)
{
    public static TokenDto From(Token token)
    {
        var (display, continuation, leadingSpace) = TokenDisplay.ForClient(token);
        return new(token.Id, token.Text, token.Start, token.End, token.Special, token.TypeId,
            display, continuation, leadingSpace);
    }
}
/// <param name="MemoryBytes">what the stored analysis holds (queries, keys, normalisers, overviews, or probabilities)</param>
/// <param name="Window">the model's window: the most tokens an analysis can take</param>
/// <param name="ReusedTokens">leading tokens taken from a recent analysis of the same causal model instead of run again (0: none)</param>
public sealed record AnalyzeResult(string AnalysisId, ModelSummary Model, TokenDto[] Tokens, bool Truncated, int? TruncatedAt,
    double ElapsedMs, long MemoryBytes, int Window, int ReusedTokens);

public sealed record ReleaseParams(string? AnalysisId);
public sealed record ReleaseResult(bool Released);
/// <param name="RowRange">[start, end) of the rows (query tokens) to fetch at full resolution; null: all</param>
/// <param name="ColRange">[start, end) of the columns (key tokens); null: all</param>
public sealed record MatrixParams(string? AnalysisId, int Layer, int Head, int? MaxSize = null, int[]? RowRange = null,
    int[]? ColRange = null);
/// <param name="RowRange">the rows served, [start, end), before pooling</param>
/// <param name="ColRange">the columns served, [start, end), before pooling</param>
public sealed record MatrixDto(int Rows, int Cols, int Layer, int Head, bool Pooled, int PoolFactor, ReadOnlyMemory<byte> Data,
    int[] RowRange, int[] ColRange);

/// <summary>LSP's `$/progress` notification, server to client: a long analyze reports under its workDoneToken.</summary>
public sealed record ProgressParams(string Token, WorkDoneProgress Value);
/// <param name="Kind">"begin", "report" or "end"</param>
/// <param name="Percentage">0–100</param>
public sealed record WorkDoneProgress(string Kind, string? Title = null, string? Message = null, int? Percentage = null,
    bool? Cancellable = null);

public sealed record RowParams(string? AnalysisId, int Layer, int Head, int Token, string? Direction = "from", int? TopK = null);
public sealed record TopEntry(int Token, float Score);
public sealed record RowDto(float[] Scores, TopEntry[] Top);
