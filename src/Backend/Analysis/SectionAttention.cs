using AttentionViz.Backend.Tokenization;

namespace AttentionViz.Backend.Analysis;

/// <summary>A named range [Start, End) of the analysed text, in UTF-16 code units.</summary>
public sealed record TextSection(string Name, int Start, int End);

/// <param name="FirstToken">the section's first token, or −1 when it holds none</param>
/// <param name="Mass">the mean over query tokens of the attention their rows give the section's tokens</param>
/// <param name="MassPerToken">Mass / TokenCount (long sections collect mass by size); null without tokens</param>
public sealed record SectionMass(string Name, int FirstToken, int LastToken, int TokenCount, double Mass, double? MassPerToken);

/// <summary>The query tokens: those whose first character lies in the query range (default: the last token).</summary>
public sealed record SectionQuery(int FirstToken, int LastToken, int TokenCount);

/// <param name="Matrix">[a][b]: the mean over section a's tokens of the attention their rows give section b's tokens</param>
/// <param name="Sink">the mean over query tokens of the attention on tokens in no section (BOS, template tokens, gaps)</param>
public sealed record SectionAttentionResult(SectionMass[] Sections, double[][] Matrix, double Sink, SectionQuery Query);

/// <summary>
/// Attention summed by section of the prompt (docs/protocol.md, attention/sections). A token belongs to the section
/// whose range holds its first character; tokens without characters (special tokens) belong to none. With
/// excludeSpecial each row is renormalised over its non-special keys first. Rows are read a block at a time through
/// the attention source, so a long analysis recomputes only the rows it needs.
/// </summary>
public static class SectionAttention
{
    /// <summary>The most sections a request may name: the section × section matrix is their square.</summary>
    public const int MaxSections = 1000;

    /// <summary>Rows read per step: a few MB whatever n.</summary>
    private const int BlockCells = 1 << 20;

    /// <summary>Each token's section index, −1 for none. Sections must not overlap.</summary>
    public static int[] Assign(IReadOnlyList<Token> tokens, IReadOnlyList<TextSection> sections)
    {
        if (sections.Count == 0) throw new InvalidRequestException("Give at least one section.");
        if (sections.Count > MaxSections)
            throw new InvalidRequestException($"{sections.Count} sections are too many: give at most {MaxSections}.");
        foreach (var s in sections)
        {
            if (string.IsNullOrEmpty(s?.Name)) throw new InvalidRequestException("Every section needs a name.");
            if (s.Start < 0 || s.End < s.Start)
                throw new InvalidRequestException($"Section '{s.Name}' has the range [{s.Start}, {s.End}): give 0 ≤ start ≤ end.");
        }
        var ordered = sections.Select((s, i) => (s, i)).OrderBy(x => x.s.Start).ToList();
        for (var k = 1; k < ordered.Count; k++)
            if (ordered[k].s.Start < ordered[k - 1].s.End)
                throw new InvalidRequestException($"Sections '{ordered[k - 1].s.Name}' and '{ordered[k].s.Name}' overlap.");
        var owner = new int[tokens.Count];
        for (var t = 0; t < tokens.Count; t++)
        {
            owner[t] = -1;
            var token = tokens[t];
            if (token.End <= token.Start) continue;
            foreach (var (s, i) in ordered)
                if (token.Start >= s.Start && token.Start < s.End)
                {
                    owner[t] = i;
                    break;
                }
        }
        return owner;
    }

    public static SectionAttentionResult Compute(IAttentionSource attention, IReadOnlyList<Token> tokens, IReadOnlyList<TextSection> sections,
        (int Start, int End)? query, int layer, int head, bool excludeSpecial, CancellationToken cancellationToken = default)
    {
        var n = attention.Tokens;
        if (tokens.Count != n) throw new ArgumentException("tokens do not match the attention's size", nameof(tokens));
        var owner = Assign(tokens, sections);
        var queryRows = query is { } q
            ? Enumerable.Range(0, n).Where(t => tokens[t].End > tokens[t].Start && tokens[t].Start >= q.Start && tokens[t].Start < q.End).ToArray()
            : [n - 1];
        if (queryRows.Length == 0) throw new InvalidRequestException($"The query range [{query!.Value.Start}, {query.Value.End}) holds no token.");
        var isQuery = new bool[n];
        foreach (var t in queryRows) isQuery[t] = true;
        var counts = new int[sections.Count];
        foreach (var s in owner)
            if (s >= 0) counts[s]++;

        var mass = new double[sections.Count];
        var matrix = Enumerable.Range(0, sections.Count).Select(_ => new double[sections.Count]).ToArray();
        double sink = 0;
        var rowSums = new double[sections.Count];
        var blockRows = Math.Max(1, BlockCells / Math.Max(1, n));
        var block = new float[(long)blockRows * n];
        for (var r0 = 0; r0 < n; r0 += blockRows)
        {
            var r1 = Math.Min(n, r0 + blockRows);
            if (!Enumerable.Range(r0, r1 - r0).Any(i => isQuery[i] || owner[i] >= 0)) continue;
            cancellationToken.ThrowIfCancellationRequested();
            attention.Combined(layer, head, max: false, r0, r1, 0, n, block);
            for (var i = r0; i < r1; i++)
            {
                if (!isQuery[i] && owner[i] < 0) continue;
                var row = block.AsSpan((i - r0) * n, n);
                Array.Clear(rowSums);
                double outside = 0, kept = 0;
                for (var j = 0; j < n; j++)
                {
                    if (excludeSpecial && tokens[j].Special) continue;
                    double p = row[j];
                    kept += p;
                    if (owner[j] >= 0) rowSums[owner[j]] += p;
                    else outside += p;
                }
                // Renormalised over the kept keys (a row that sees only special tokens gives nothing).
                var scale = excludeSpecial ? kept > 0 ? 1 / kept : 0 : 1;
                if (isQuery[i])
                {
                    for (var s = 0; s < mass.Length; s++) mass[s] += rowSums[s] * scale / queryRows.Length;
                    sink += outside * scale / queryRows.Length;
                }
                if (owner[i] is var a and >= 0)
                    for (var b = 0; b < mass.Length; b++) matrix[a][b] += rowSums[b] * scale / counts[a];
            }
        }
        var result = sections.Select((s, i) =>
        {
            var first = Array.IndexOf(owner, i);
            return new SectionMass(s.Name, first, first < 0 ? -1 : Array.LastIndexOf(owner, i), counts[i], mass[i],
                counts[i] > 0 ? mass[i] / counts[i] : null);
        }).ToArray();
        return new SectionAttentionResult(result, matrix, sink, new SectionQuery(queryRows[0], queryRows[^1], queryRows.Length));
    }
}
