using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>A model token within a piece: id and the piece's units [Start, End) it covers.</summary>
internal readonly record struct PieceToken(int Id, int Start, int End);

/// <summary>A tokenizer.json "model": turns one pre-tokenized piece into tokens.</summary>
internal abstract class TokenModel
{
    public abstract Dictionary<string, int> Vocab { get; }

    public abstract void Tokenize(string piece, List<PieceToken> output);

    public static TokenModel Parse(JsonElement json)
    {
        string type = json.TryGetProperty("type", out var t) ? t.GetString()! : Infer(json);
        return type switch
        {
            "BPE" => BpeModel.FromJson(json),
            "WordPiece" => WordPieceModel.FromJson(json),
            "Unigram" => UnigramModel.FromJson(json),
            _ => throw new ModelFormatException($"Unsupported tokenizer.json model type \"{type}\"."),
        };
    }

    // Old tokenizer.json files omit the model's type: infer it the way HF's untagged deserialization does.
    private static string Infer(JsonElement json) =>
        json.TryGetProperty("merges", out _) ? "BPE"
        : json.TryGetProperty("vocab", out var v) && v.ValueKind == JsonValueKind.Array ? "Unigram"
        : json.TryGetProperty("max_input_chars_per_word", out _) ? "WordPiece"
        : throw new ModelFormatException("tokenizer.json model has no \"type\" and is not recognizable.");
}

/// <summary>
/// HF's BPE (merges by rank with a priority queue, as tokenizers' word.rs), with byte_fallback, fuse_unk, ignore_merges,
/// continuing_subword_prefix and end_of_word_suffix. Written here: Microsoft.ML.Tokenizers' BpeTokenizer has no
/// tokenizer.json reader, no ignore_merges and no per-byte offsets for byte-fallback tokens.
/// </summary>
internal sealed class BpeModel : TokenModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly string? _prefix, _suffix;
    private readonly int? _unkId;
    private readonly bool _byteFallback, _fuseUnk, _ignoreMerges;
    private readonly int[] _byteIds;
    private readonly ConcurrentDictionary<string, PieceToken[]> _cache = new(StringComparer.Ordinal);
    private const int MaxCachedLength = 256, MaxCacheEntries = 200_000;

    public override Dictionary<string, int> Vocab => _vocab;

    public BpeModel(Dictionary<string, int> vocab, IEnumerable<(string Left, string Right)> merges, string? unkToken,
        string? continuingSubwordPrefix, string? endOfWordSuffix, bool byteFallback, bool fuseUnk, bool ignoreMerges)
    {
        _vocab = vocab;
        _lookup = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _prefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        _suffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        _byteFallback = byteFallback;
        _fuseUnk = fuseUnk;
        _ignoreMerges = ignoreMerges;
        if (unkToken is not null)
            _unkId = vocab.TryGetValue(unkToken, out int u) ? u
                : throw new ModelFormatException($"The BPE unk_token \"{unkToken}\" is not in the vocabulary.");
        _merges = [];
        int rank = 0;
        foreach (var (left, right) in merges)
        {
            if (!vocab.TryGetValue(left, out int a) || !vocab.TryGetValue(right, out int b))
                throw new ModelFormatException($"BPE merge \"{left} {right}\" refers to a token that is not in the vocabulary.");
            string merged = left + (_prefix is not null && right.StartsWith(_prefix, StringComparison.Ordinal) ? right[_prefix.Length..] : right);
            if (!vocab.TryGetValue(merged, out int id))
                throw new ModelFormatException($"BPE merge \"{left} {right}\" makes \"{merged}\", which is not in the vocabulary.");
            _merges.TryAdd(Key(a, b), (rank, id));
            rank++;
        }
        _byteIds = new int[256];
        for (int i = 0; i < 256; i++) _byteIds[i] = vocab.TryGetValue($"<0x{i:X2}>", out int id) ? id : -1;
        // When no token has "▁" after another character, no merge can cross the start of a "▁" run: a long piece (a model
        // without pre-tokenizer sees the whole text as one) can then be cut there and its words merged (and cached) alone.
        _cutBeforeMetaspace = _prefix is null && _suffix is null && vocab.Keys.Any(k => k.Contains('\u2581')) &&
            !vocab.Keys.Any(k => k.AsSpan().TrimStart('\u2581').Contains('\u2581'));
    }

    private readonly bool _cutBeforeMetaspace;

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    public static BpeModel FromJson(JsonElement json)
    {
        var vocab = Json.Vocab(json.GetProperty("vocab"));
        var merges = new List<(string, string)>();
        if (json.TryGetProperty("merges", out var m))
        {
            foreach (var merge in m.EnumerateArray())
            {
                if (merge.ValueKind == JsonValueKind.Array)
                {
                    merges.Add((merge[0].GetString()!, merge[1].GetString()!));
                    continue;
                }
                string s = merge.GetString()!;
                int space = s.IndexOf(' ', 1); // "a b"; a merge of " " itself is impossible in this form
                if (space < 0) throw new ModelFormatException($"BPE merge \"{s}\" is not of the form \"a b\".");
                merges.Add((s[..space], s[(space + 1)..]));
            }
        }
        if (json.TryGetProperty("dropout", out var d) && d.ValueKind == JsonValueKind.Number && d.GetDouble() > 0)
            throw new ModelFormatException("BPE dropout is not supported (it makes tokenization random).");
        return new BpeModel(vocab, merges, Json.OptionalString(json, "unk_token"),
            Json.OptionalString(json, "continuing_subword_prefix"), Json.OptionalString(json, "end_of_word_suffix"),
            Json.Bool(json, "byte_fallback", false), Json.Bool(json, "fuse_unk", false), Json.Bool(json, "ignore_merges", false));
    }

    public override void Tokenize(string piece, List<PieceToken> output)
    {
        if (piece.Length == 0) return;
        if (_cutBeforeMetaspace && piece.Length > 32 && !(_ignoreMerges && _lookup.TryGetValue(piece, out _)))
        {
            int start = 0;
            for (int i = 1; i <= piece.Length; i++)
            {
                if (i < piece.Length && !(piece[i] == '\u2581' && piece[i - 1] != '\u2581')) continue;
                int mark = output.Count;
                TokenizeWord(piece[start..i], output);
                if (start > 0)
                    for (int k = mark; k < output.Count; k++) output[k] = output[k] with
                    {
                        Start = output[k].Start + start,
                        End = output[k].End + start
                    };
                start = i;
            }
            return;
        }
        TokenizeWord(piece, output);
    }

    private void TokenizeWord(string piece, List<PieceToken> output)
    {
        if (piece.Length <= MaxCachedLength && _cache.TryGetValue(piece, out var cached))
        {
            output.AddRange(cached);
            return;
        }
        var tokens = Compute(piece);
        if (piece.Length <= MaxCachedLength)
        {
            if (_cache.Count > MaxCacheEntries) _cache.Clear();
            _cache.TryAdd(piece, tokens);
        }
        output.AddRange(tokens);
    }

    private PieceToken[] Compute(string piece)
    {
        if (_ignoreMerges && _lookup.TryGetValue(piece, out int whole)) return [new PieceToken(whole, 0, piece.Length)];

        // Symbols as a doubly linked list over arrays.
        var ids = new List<int>(piece.Length);
        var starts = new List<int>(piece.Length);
        var ends = new List<int>(piece.Length);
        Span<byte> utf8 = stackalloc byte[4];
        bool lastWasUnk = false;
        for (int i = 0; i < piece.Length;)
        {
            int n = Normalizer.CodePointLength(piece, i);
            bool first = i == 0, last = i + n == piece.Length;
            int id = LookupChar(piece.AsSpan(i, n), first, last);
            if (id >= 0)
            {
                ids.Add(id); starts.Add(i); ends.Add(i + n);
                lastWasUnk = false;
            }
            else if (_byteFallback && ByteIds(piece.AsSpan(i, n), utf8) is { } byteIds)
            {
                foreach (int b in byteIds) { ids.Add(b); starts.Add(i); ends.Add(i + n); }
                lastWasUnk = false;
            }
            else if (_unkId is int unk)
            {
                if (_fuseUnk && lastWasUnk) ends[^1] = i + n;
                else { ids.Add(unk); starts.Add(i); ends.Add(i + n); }
                lastWasUnk = true;
            }
            i += n;
        }

        int count = ids.Count;
        if (count <= 1) return count == 0 ? [] : [new PieceToken(ids[0], starts[0], ends[0])];
        var prev = new int[count];
        var next = new int[count];
        var alive = new bool[count];
        var sym = ids.ToArray();
        var sStart = starts.ToArray();
        var sEnd = ends.ToArray();
        for (int i = 0; i < count; i++) { prev[i] = i - 1; next[i] = i + 1 < count ? i + 1 : -1; alive[i] = true; }

        var queue = new PriorityQueue<(int Pos, int NewId), (int Rank, int Pos)>(count);
        for (int i = 0; i + 1 < count; i++)
            if (_merges.TryGetValue(Key(sym[i], sym[i + 1]), out var mg)) queue.Enqueue((i, mg.NewId), (mg.Rank, i));

        while (queue.TryDequeue(out var top, out var pri))
        {
            int pos = top.Pos;
            if (!alive[pos]) continue;
            int right = next[pos];
            if (right < 0) continue;
            if (!_merges.TryGetValue(Key(sym[pos], sym[right]), out var cur) || cur.NewId != top.NewId) continue;
            sym[pos] = cur.NewId;
            sEnd[pos] = sEnd[right];
            alive[right] = false;
            next[pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = pos;
            if (prev[pos] >= 0 && _merges.TryGetValue(Key(sym[prev[pos]], sym[pos]), out var l))
                queue.Enqueue((prev[pos], l.NewId), (l.Rank, prev[pos]));
            if (next[pos] >= 0 && _merges.TryGetValue(Key(sym[pos], sym[next[pos]]), out var r))
                queue.Enqueue((pos, r.NewId), (r.Rank, pos));
        }

        var result = new List<PieceToken>(count);
        for (int i = 0; i >= 0; i = next[i]) result.Add(new PieceToken(sym[i], sStart[i], sEnd[i]));
        return [.. result];
    }

    private int LookupChar(ReadOnlySpan<char> c, bool first, bool last)
    {
        if (_prefix is null && _suffix is null) return _lookup.TryGetValue(c, out int id) ? id : -1;
        string s = (first || _prefix is null ? "" : _prefix) + c.ToString() + (last && _suffix is not null ? _suffix : "");
        return _vocab.TryGetValue(s, out int v) ? v : -1;
    }

    private int[]? ByteIds(ReadOnlySpan<char> c, Span<byte> utf8)
    {
        Rune r = Rune.DecodeFromUtf16(c, out var rune, out _) == System.Buffers.OperationStatus.Done ? rune : Rune.ReplacementChar;
        int len = r.EncodeToUtf8(utf8);
        var result = new int[len];
        for (int k = 0; k < len; k++)
        {
            result[k] = _byteIds[utf8[k]];
            if (result[k] < 0) return null;
        }
        return result;
    }
}

/// <summary>HF's WordPiece model (the algorithm is <see cref="WordPiece"/>, shared with the vocab.txt tokenizer); a word
/// that fails is one unk token. Written here because it must work on pieces with their own unit offsets (the library
/// re-normalizes its input).</summary>
internal sealed class WordPieceModel(Dictionary<string, int> vocab, string unkToken, string prefix, int maxChars) : TokenModel
{
    private readonly WordPiece _wordPiece = new(vocab, prefix, maxChars);
    private readonly int _unkId = vocab.TryGetValue(unkToken, out int u) ? u
        : throw new ModelFormatException($"The WordPiece unk_token \"{unkToken}\" is not in the vocabulary.");

    public override Dictionary<string, int> Vocab => vocab;

    public static WordPieceModel FromJson(JsonElement json) => new(Json.Vocab(json.GetProperty("vocab")),
        Json.OptionalString(json, "unk_token") ?? "[UNK]", Json.OptionalString(json, "continuing_subword_prefix") ?? "##",
        json.TryGetProperty("max_input_chars_per_word", out var m) && m.ValueKind == JsonValueKind.Number ? m.GetInt32() : 100);

    public override void Tokenize(string piece, List<PieceToken> output)
    {
        if (piece.Length == 0) return;
        var pieces = new List<WordPieceMatch>();
        if (!_wordPiece.Split(piece, pieces))
        {
            output.Add(new PieceToken(_unkId, 0, piece.Length));
            return;
        }
        foreach (var (id, start, end) in pieces) output.Add(new PieceToken(id, start, end));
    }
}

/// <summary>HF's Unigram model: Viterbi over the vocabulary's log-probabilities; unknown characters score
/// min_score − 10 and consecutive unknowns fuse; byte_fallback spells unknowns as &lt;0xXX&gt; tokens. Written here:
/// Microsoft.ML.Tokenizers has no tokenizer.json Unigram reader.</summary>
internal sealed class UnigramModel : TokenModel
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly double[] _scores;
    private readonly int _unkId, _maxLength;
    private readonly double _unkScore;
    private readonly bool _byteFallback;
    private readonly int[] _byteIds = new int[256];

    public override Dictionary<string, int> Vocab => _vocab;

    private UnigramModel(List<(string Piece, double Score)> pieces, int? unkId, bool byteFallback)
    {
        _vocab = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        _scores = new double[pieces.Count];
        double min = double.MaxValue;
        for (int i = 0; i < pieces.Count; i++)
        {
            _vocab.TryAdd(pieces[i].Piece, i);
            _scores[i] = pieces[i].Score;
            min = Math.Min(min, pieces[i].Score);
            _maxLength = Math.Max(_maxLength, pieces[i].Piece.Length);
        }
        _lookup = _vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        _unkId = unkId ?? throw new ModelFormatException("Unigram models without unk_id are not supported.");
        _unkScore = min - 10.0;
        _byteFallback = byteFallback;
        for (int i = 0; i < 256; i++) _byteIds[i] = _vocab.TryGetValue($"<0x{i:X2}>", out int id) ? id : -1;
    }

    public static UnigramModel FromJson(JsonElement json)
    {
        var pieces = new List<(string, double)>();
        foreach (var entry in json.GetProperty("vocab").EnumerateArray())
            pieces.Add((entry[0].GetString()!, entry[1].GetDouble()));
        int? unk = json.TryGetProperty("unk_id", out var u) && u.ValueKind == JsonValueKind.Number ? u.GetInt32() : null;
        return new UnigramModel(pieces, unk, Json.Bool(json, "byte_fallback", false));
    }

    public override void Tokenize(string piece, List<PieceToken> output)
    {
        int n = piece.Length;
        if (n == 0) return;
        // HF's lattice, node by node in its insertion order (start ascending, then length ascending, the unknown-character
        // node last), each node taking the best node that ends where it begins (first one on ties), the comparison made on
        // predecessor score + node score as HF does (rounding included).
        var nodeStart = new List<int>(n * 2);
        var nodeEnd = new List<int>(n * 2);
        var nodeId = new List<int>(n * 2);
        var nodeScore = new List<double>(n * 2);
        var endsAt = new List<int>?[n + 1];
        for (int i = 0; i < n; i++)
        {
            if (i > 0 && char.IsLowSurrogate(piece[i]) && char.IsHighSurrogate(piece[i - 1])) continue;
            bool single = false;
            int charLen = Normalizer.CodePointLength(piece, i);
            for (int len = 1; len <= _maxLength && i + len <= n; len++)
            {
                if (len < n - i && char.IsLowSurrogate(piece[i + len]) && char.IsHighSurrogate(piece[i + len - 1])) continue;
                if (!_lookup.TryGetValue(piece.AsSpan(i, len), out int id)) continue;
                if (len == charLen) single = true;
                Add(i, i + len, id, _scores[id]);
            }
            if (!single) Add(i, i + charLen, _unkId, _unkScore);
        }
        var backtrace = new double[nodeId.Count];
        var prevNode = new int[nodeId.Count];
        for (int k = 0; k < nodeId.Count; k++)
        {
            // Nodes are in start order, so every node ending at this one's start already has its score.
            int start = nodeStart[k];
            if (start == 0) { backtrace[k] = nodeScore[k]; prevNode[k] = -1; continue; }
            int best = -1;
            double bestScore = 0;
            foreach (int l in endsAt[start] ?? [])
            {
                double score = backtrace[l] + nodeScore[k];
                if (best < 0 || score > bestScore) { best = l; bestScore = score; }
            }
            prevNode[k] = best;
            backtrace[k] = best < 0 ? double.NegativeInfinity : bestScore;
        }
        int last = -1;
        double lastScore = 0;
        foreach (int l in endsAt[n] ?? [])
            if (last < 0 || backtrace[l] > lastScore) { last = l; lastScore = backtrace[l]; }
        var path = new List<PieceToken>();
        for (int k = last; k >= 0; k = prevNode[k]) path.Add(new PieceToken(nodeId[k], nodeStart[k], nodeEnd[k]));
        path.Reverse();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var t in path)
        {
            if (t.Id == _unkId && _byteFallback && !_vocab.ContainsKey(piece[t.Start..t.End]))
            {
                // Every character of the unknown run becomes its bytes (each byte token spans its character).
                bool all = true;
                var bytes = new List<PieceToken>();
                for (int i = t.Start; i < t.End && all;)
                {
                    int cl = Normalizer.CodePointLength(piece, i);
                    Rune r = Rune.TryGetRuneAt(piece, i, out var rune) ? rune : Rune.ReplacementChar;
                    int len = r.EncodeToUtf8(utf8);
                    for (int k = 0; k < len; k++)
                    {
                        if (_byteIds[utf8[k]] < 0) { all = false; break; }
                        bytes.Add(new PieceToken(_byteIds[utf8[k]], i, i + cl));
                    }
                    i += cl;
                }
                if (all) { output.AddRange(bytes); continue; }
            }
            if (t.Id == _unkId && output.Count > 0 && output[^1].Id == _unkId && output[^1].End == t.Start)
                output[^1] = output[^1] with { End = t.End };
            else output.Add(t);
        }

        void Add(int start, int end, int id, double score)
        {
            nodeStart.Add(start);
            nodeEnd.Add(end);
            nodeId.Add(id);
            nodeScore.Add(score);
            (endsAt[end] ??= []).Add(nodeId.Count - 1);
        }
    }
}

internal static class Json
{
    public static string Type(JsonElement json, string what) =>
        json.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()!
            : throw new ModelFormatException($"tokenizer.json {what} has no \"type\".");

    public static bool Bool(JsonElement json, string name, bool fallback) =>
        json.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public static bool? OptionalBool(JsonElement json, string name) =>
        json.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : null;

    public static string? OptionalString(JsonElement json, string name) =>
        json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static Dictionary<string, int> Vocab(JsonElement json)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in json.EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();
        return vocab;
    }
}
