using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Analysis;

/// <param name="TextPair">the second text of a sentence pair (segment 1), or null</param>
/// <param name="AddSpecialTokens">false: the text's tokens alone (a rendered chat template already holds BOS)</param>
public sealed record AnalyzeOptions(string Text, string? ModelId = null, int? MaxTokens = null, string? TextPair = null,
    bool AddSpecialTokens = true);

public sealed record RowResult(float[] Scores, ScoredToken[] Top);

/// <summary>Tokenizes, runs the model on its thread, keeps the attention, and answers questions about it.</summary>
public sealed class AttentionService(ModelRegistry models, AnalysisCache cache, ModelThread modelThread)
{
    /// <summary>Without maxTokens an analysis takes the model's window, up to this many tokens.</summary>
    public const int DefaultMaxTokens = 32_768;

    /// <summary>A decoder analysis keeps its probabilities up to this size, else recomputes them (<see cref="AnalysisMemory"/>).</summary>
    public long KeepProbabilitiesBytes { get; init; } = AnalysisMemory.KeepProbabilitiesBytes;

    private long _nextId;

    public ModelRegistry Models => models;

    /// <summary>
    /// The longest analysis, whatever the model's window: every n² size of the analysis (a whole matrix, a flow's graph)
    /// stays far below int.MaxValue elements (32,768² = 2³⁰), and 32,768 tokens already take minutes on a laptop.
    /// </summary>
    private static InvalidRequestException TooManyTokens(string what, int count) =>
        new($"{what}: an analysis holds at most {DefaultMaxTokens:N0} tokens; got {count:N0}.");

    public async Task<StoredAnalysis> AnalyzeAsync(AnalyzeOptions options, CancellationToken cancellationToken,
        IProgress<AnalysisProgress>? progress = null)
    {
        if (string.IsNullOrEmpty(options.Text)) throw new InvalidRequestException("The text is empty: select some text to analyze.");
        using var lease = await models.AcquireAsync(options.ModelId ?? ModelRegistry.DefaultId, cancellationToken);
        var loaded = lease.Loaded;
        var window = loaded.Model.MaxPositions;
        if (options.MaxTokens > DefaultMaxTokens) throw TooManyTokens("maxTokens", options.MaxTokens.Value);
        var limit = Math.Min(options.MaxTokens ?? DefaultMaxTokens, window);
        var tokenizer = loaded.RequireTokenizer();
        if (!options.AddSpecialTokens && options.TextPair is not null)
            throw new InvalidRequestException("A text pair is joined by the tokenizer's special tokens: addSpecialTokens false needs one text.");
        var specials = !options.AddSpecialTokens ? 0 : options.TextPair is null ? tokenizer.SpecialTokenCount : tokenizer.PairSpecialTokenCount;
        if (limit <= specials)
            throw new InvalidRequestException($"maxTokens must be greater than {specials} (the model's special tokens); got {options.MaxTokens}.");

        return await modelThread.RunAsync(ct =>
        {
            var clock = Stopwatch.StartNew();
            var contentLimit = limit - specials;
            // One token past the limit tells whether the text was truncated, without tokenizing all of a huge text.
            var content = tokenizer.Tokenize(options.Text, contentLimit + 1);
            if (content.Count == 0) throw new InvalidRequestException("The text has no tokens (only whitespace or control characters).");
            if (options.TextPair is { } textPair)
                return AnalyzePair(loaded, content, tokenizer.Tokenize(textPair, contentLimit + 1), contentLimit, clock, ct, progress);
            var truncated = content.Count > contentLimit;
            if (truncated) content = content.Take(contentLimit).ToList();
            int? truncatedAt = truncated ? content[^1].End : null;
            return Run(loaded, options.AddSpecialTokens ? tokenizer.AddSpecialTokens(content) : content, truncatedAt, clock, ct, progress);
        }, cancellationToken);
    }

    /// <summary>Runs raw token ids as given: no special tokens added, offsets [0,0) (the CLI's --ids).</summary>
    public async Task<StoredAnalysis> AnalyzeIdsAsync(IReadOnlyList<long> ids, string? modelId, CancellationToken cancellationToken,
        IReadOnlyList<long>? tokenTypeIds = null)
    {
        if (ids.Count == 0) throw new InvalidRequestException("No token ids given.");
        if (tokenTypeIds is not null && tokenTypeIds.Count != ids.Count)
            throw new InvalidRequestException($"{tokenTypeIds.Count} token type ids for {ids.Count} token ids: give one per token.");
        using var lease = await models.AcquireAsync(modelId ?? ModelRegistry.DefaultId, cancellationToken);
        var loaded = lease.Loaded;
        var tokenizer = loaded.Tokenizer;
        if (ids.Count > DefaultMaxTokens) throw TooManyTokens("ids", ids.Count);
        if (ids.Count > loaded.Model.MaxPositions)
            throw new InvalidRequestException($"{ids.Count} ids exceed the model's window of {loaded.Model.MaxPositions} tokens.");
        var tokens = new List<Token>(ids.Count);
        foreach (var id in ids)
        {
            if (id < 0 || id >= loaded.Model.VocabularySize)
                throw new InvalidRequestException($"Token id {id} is outside the vocabulary (0..{loaded.Model.VocabularySize - 1}).");
            tokens.Add(new Token((int)id, tokenizer?.IdToToken((int)id) ?? id.ToString(), 0, 0, tokenizer?.IsSpecial((int)id) ?? false)
            {
                Readable = tokenizer?.ReadableToken((int)id),
            });
        }
        return await modelThread.RunAsync(ct => Run(loaded, tokens, null, Stopwatch.StartNew(), ct, null, tokenTypeIds), cancellationToken);
    }

    private StoredAnalysis Run(LoadedModel loaded, IReadOnlyList<Token> tokens, int? truncatedAt, Stopwatch clock,
        CancellationToken cancellationToken, IProgress<AnalysisProgress>? progress, IReadOnlyList<long>? tokenTypeIds = null)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var model = loaded.Model;
        var n = tokens.Count;
        var keep = KeepProbabilitiesBytes;
        // Other loaded models share the budget: idle ones make room when this analysis needs it.
        if (AnalysisMemory.NeededBytes(model, n, keep) + models.LoadedBytesOtherThan(model) > cache.CapacityBytes)
            models.UnloadIdleOtherThan(model);
        var capacity = cache.CapacityBytes - models.LoadedBytesOtherThan(model);
        AnalysisMemory.EnsureFits(model, n, capacity, keep);
        var ids = tokens.Select(t => (long)t.Id).ToArray();
        tokenTypeIds ??= tokens.Any(t => t.TypeId != 0) ? tokens.Select(t => (long)t.TypeId).ToArray() : null;
        var stored = AnalysisMemory.KeepsProbabilities(model, n, keep);
        // Small analyses keep their probabilities and take well under a second: only the recomputed path reuses a prefix.
        var reuse = stored ? null : PrefixReuse.Find(cache, model, tokens, tokenTypeIds);
        try
        {
            // Older analyses make room for this one: the budget covers the weights, the forward and what it keeps. The
            // earlier analysis is the most recent (its lease made it so); if even it had to go, this one must not
            // count on memory the budget no longer has, and runs in full.
            // An analysis that extends the earlier one shares its kept rows (KeptRows): those need no new memory.
            var shared = reuse?.Start.SharedBytes(n) ?? 0;
            cache.Trim(capacity - (AnalysisMemory.NeededBytes(model, n, keep) - shared));
            if (reuse is { } r && !cache.Contains(r.Lease.Analysis.Id))
            {
                r.Lease.Dispose();
                reuse = null;
            }
            // A long analysis's peak should not stand on what earlier requests left (answers, replaced analyses).
            if (!stored && AnalysisMemory.NeededBytes(model, n, keep) - model.WeightBytes >= CollectBeforeBytes)
                Platform.HeapSettings.CollectAndTrim();
            var input = new ForwardInput([ids], tokenTypeIds is null ? null : [tokenTypeIds.ToArray()]);
            var (attention, metrics, hidden) = stored
                ? RunStored(model, input, n, cancellationToken)
                : RunRecomputable(model, input, tokens, progress, cancellationToken, reuse?.Start);
            // The forward's temporaries under malloc's mmap threshold were reused from the heap, layer after layer; what
            // the heap kept of them goes back now, not only when the analysis is released.
            if (!stored) Platform.HeapSettings.ReturnFreedMemory();
            if (FirstNonFiniteLayer(attention, metrics, hidden) is { } layer)
            {
                attention.Dispose();
                throw new ModelFormatException($"{loaded.Info.Id}: the model produced NaN or infinite values from layer {layer} on " +
                    "(its weights or config hold non-finite or extreme numbers), so it has no attention to show.");
            }
            return Store(loaded, tokens, truncatedAt, clock, attention, metrics, hidden, reuse?.Start.Length ?? 0);
        }
        catch (OperationCanceledException)
        {
            // What the cancelled forward built is disposed by now: hand its freed heap pages back.
            Platform.HeapSettings.ReturnFreedMemory();
            throw;
        }
        finally
        {
            reuse?.Lease.Dispose();
        }
    }

    /// <summary>An analysis needing this much beyond the weights starts from a collection (tens of ms; it runs seconds):
    /// the SmolLM2 shape's 8k scenario peaked at 1,958–1,987 MB with it, 2,040–2,050 MB without (interleaved runs).</summary>
    internal const long CollectBeforeBytes = 256L << 20;

    private StoredAnalysis Store(LoadedModel loaded, IReadOnlyList<Token> tokens, int? truncatedAt, Stopwatch clock,
        IAttentionSource attention, HeadMetric[]? metrics, float[] hidden, int reusedTokens)
    {
        var model = loaded.Model;
        var analysis = new StoredAnalysis
        {
            Id = $"a{Interlocked.Increment(ref _nextId)}",
            Model = new ModelSummary(loaded.Info.Id, model.Architecture, model.Layers, model.Heads, model.Causal),
            Tokens = tokens,
            Truncated = truncatedAt is not null,
            TruncatedAt = truncatedAt,
            Attention = attention,
            Metrics = metrics,
            LastHiddenState = hidden,
            HiddenSize = model.HiddenSize,
            Window = model.MaxPositions,
            ElapsedMs = clock.Elapsed.TotalMilliseconds,
            ReusedTokens = reusedTokens,
            ForwardModel = model,
        };
        cache.Add(analysis, cache.CapacityBytes - model.WeightBytes - models.LoadedBytesOtherThan(model));
        return analysis;
    }

    /// <summary>
    /// The first layer whose attention is not finite (a NaN weight or an overflow): every probability of a stored
    /// analysis (a sum of probabilities is finite unless one is NaN), every head's metrics of a recomputed one (their
    /// sums carry any NaN of the rows); the final hidden state counts as the last layer. Null: all finite.
    /// </summary>
    private static int? FirstNonFiniteLayer(IAttentionSource attention, HeadMetric[]? metrics, float[] hidden)
    {
        if (attention is AttentionTensor stored)
        {
            for (var layer = 0; layer < stored.Layers; layer++)
                if (stored.CheckedFinite?[layer] != true && !float.IsFinite(TensorPrimitives.Sum(stored.Layer(layer)))) return layer;
        }
        else if (metrics?.FirstOrDefault(m => !double.IsFinite(m.Entropy) || !double.IsFinite(m.MeanDistance)) is { } bad)
            return bad.Layer;
        return float.IsFinite(TensorPrimitives.Sum(hidden)) ? null : attention.Layers - 1;
    }

    /// <summary>Every probability, copied out of the forward into one pooled buffer.</summary>
    private static (IAttentionSource, HeadMetric[]?, float[]) RunStored(ITransformerModel model, ForwardInput input, int n,
        CancellationToken cancellationToken)
    {
        var attention = new AttentionTensor(model.Layers, model.Heads, n);
        try
        {
            ForwardResult result;
            var arena = AttentionCore.WriteProbabilitiesInto(attention.Buffer, model.Layers, (long)model.Heads * n * n);
            using (arena) result = model.Forward(input, cancellationToken);
            attention.CheckedFinite = arena.Finite;
            using var _ = result;
            // Each contiguous() is a new tensor handle on the layer's storage: disposed here, or the storage (33 MB a
            // layer at 1,024 tokens) waits for the finalizer, and RSS stayed at its peak until some later collection.
            for (var layer = 0; layer < model.Layers; layer++)
                if (!AttentionCore.WritesInto(result.Attentions[layer], attention.Layer(layer)))
                {
                    // The kernel's finite report is of its slot, not of this copy.
                    arena.Finite[layer] = false;
                    using var rows = result.Attentions[layer].contiguous();
                    MemoryMarshal.Cast<byte, float>(rows.bytes).CopyTo(attention.Layer(layer));
                }
            using var hidden = result.LastHiddenState.contiguous();
            return (attention, null, MemoryMarshal.Cast<byte, float>(hidden.bytes).ToArray());
        }
        catch
        {
            attention.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A blocked forward that keeps the recomputable state, the overviews and the metrics' sums; from
    /// <paramref name="start"/>, only the tokens after the earlier analysis's prefix run.
    /// </summary>
    private (IAttentionSource, HeadMetric[]?, float[]) RunRecomputable(ITransformerModel model, ForwardInput input,
        IReadOnlyList<Token> tokens, IProgress<AnalysisProgress>? progress, CancellationToken cancellationToken, PrefixStart? start = null)
    {
        using var capture = new AttentionCapture(model.Layers, model.Heads, tokens, model.Causal, progress, start);
        using var result = model.Forward(input with { Observer = capture, Prefix = start?.KeyValues }, cancellationToken);
        using var hiddenRows = result.LastHiddenState.contiguous();
        var rows = MemoryMarshal.Cast<byte, float>(hiddenRows.bytes);
        float[] hidden;
        if (start is null) hidden = rows.ToArray();
        else
        {
            // A causal model's final hidden states of the prefix rows are the earlier analysis's.
            var prefix = start.Length * model.HiddenSize;
            hidden = new float[prefix + rows.Length];
            start.EarlierHidden.AsSpan(0, prefix).CopyTo(hidden);
            rows.CopyTo(hidden.AsSpan(prefix));
        }
        var (attention, metrics) = capture.Build(modelThread);
        return (attention, metrics, hidden);
    }

    /// <summary>
    /// A sentence pair, truncated longest-first as Hugging Face does by default; tokens of the second text carry
    /// TypeId 1 and offsets into that text. truncatedAt is the UTF-16 offset where the first text's analyzed part ends.
    /// </summary>
    private StoredAnalysis AnalyzePair(LoadedModel loaded, IReadOnlyList<Token> first, IReadOnlyList<Token> second, int contentLimit,
        Stopwatch clock, CancellationToken cancellationToken, IProgress<AnalysisProgress>? progress)
    {
        if (second.Count == 0) throw new InvalidRequestException("The second text has no tokens.");
        var (a, b) = (first.Count, second.Count);
        while (a + b > contentLimit)
            if (a > b) a--; else b--;
        if (a == 0 || b == 0) throw new InvalidRequestException("maxTokens leaves no room for both texts of the pair.");
        int? truncatedAt = a < first.Count ? first[a - 1].End : b < second.Count ? first[^1].End : null;
        var tokens = loaded.RequireTokenizer().AddSpecialTokens(first.Take(a).ToList(), second.Take(b).ToList());
        return Run(loaded, tokens, truncatedAt, clock, cancellationToken, progress);
    }

    /// <summary>Forgets an analysis (see <see cref="AnalysisCache.Remove"/>); false when it was not stored.</summary>
    public bool Release(string analysisId) => cache.Remove(analysisId);

    public StoredAnalysis.Lease Acquire(string analysisId) =>
        cache.Acquire(analysisId)
            ?? throw new InvalidRequestException($"Unknown analysisId '{analysisId}' (it may have been evicted: analyze again).");

    public RowResult Row(string analysisId, int layer, int head, int token, string direction, int? topK)
    {
        using var lease = Acquire(analysisId);
        var analysis = lease.Analysis;
        RequestChecks.LayerHead(analysis.Model.Layers, analysis.Model.Heads, layer, head, RequestChecks.MinusOneIsMean);
        var n = analysis.Tokens.Count;
        RequestChecks.Token(n, token);
        RequestChecks.AtLeast("topK", topK, 0);
        var scores = new float[n];
        if (RequestChecks.OneOf("direction", direction, "from", "to") == "from")
            analysis.Attention.Combined(layer, head, max: false, token, token + 1, 0, n, scores);
        else
            analysis.Attention.Combined(layer, head, max: false, 0, n, token, token + 1, scores);
        return new RowResult(scores, MatrixOps.TopK(scores, topK ?? 5));
    }
}
