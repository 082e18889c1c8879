using System.Text;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>
/// A normalized (or pre-tokenized) piece of text in which every UTF-16 unit remembers the span [Start, End) of the
/// ORIGINAL text it came from (HF's NormalizedString alignments, in UTF-16 units). The units of one original code point
/// that expands to several (NFD, a byte-level mapping of a multi-byte character) all carry that code point's span.
/// </summary>
internal sealed class AlignedText
{
    public string Text { get; }
    public int[] Start { get; }
    public int[] End { get; }

    /// <summary>The original offset where this piece begins, even when it is empty (HF's offsets_original().0).</summary>
    public int OriginalStart { get; }

    public AlignedText(string text, int[] start, int[] end, int originalStart)
    {
        Text = text;
        Start = start;
        End = end;
        OriginalStart = originalStart;
    }

    public int Length => Text.Length;

    /// <summary>The identity alignment of original[offset, offset+length).</summary>
    public static AlignedText FromOriginal(string original, int offset, int length)
    {
        var start = new int[length];
        var end = new int[length];
        for (int i = 0; i < length; i++)
        {
            int o = offset + i;
            // A surrogate pair's two units both span the whole code point.
            if (char.IsHighSurrogate(original[o]) && o + 1 < offset + length && char.IsLowSurrogate(original[o + 1]))
            {
                start[i] = start[i + 1] = o;
                end[i] = end[i + 1] = o + 2;
                i++;
                continue;
            }
            start[i] = o;
            end[i] = o + 1;
        }
        return new AlignedText(original.Substring(offset, length), start, end, offset);
    }

    public AlignedText Slice(int from, int to)
    {
        if (from == 0 && to == Length) return this;
        return new AlignedText(Text[from..to], Start[from..to], End[from..to], from < Length ? Start[from] : EndOffset);
    }

    private int EndOffset => Length > 0 ? End[^1] : OriginalStart;

    /// <summary>The original span of units [from, to).</summary>
    public (int Start, int End) OriginalSpan(int from, int to)
    {
        if (from >= to) return (from < Length ? Start[from] : EndOffset, from < Length ? Start[from] : EndOffset);
        int s = int.MaxValue, e = int.MinValue;
        for (int i = from; i < to; i++)
        {
            if (Start[i] < s) s = Start[i];
            if (End[i] > e) e = End[i];
        }
        return (s, e);
    }

    /// <summary>Builds a new aligned text unit by unit.</summary>
    public sealed class Builder(int capacity, int originalStart)
    {
        private readonly StringBuilder _text = new(capacity);
        private readonly List<int> _start = new(capacity);
        private readonly List<int> _end = new(capacity);

        public int Length => _text.Length;

        public void Append(char c, int start, int end)
        {
            _text.Append(c);
            _start.Add(start);
            _end.Add(end);
        }

        public void Append(ReadOnlySpan<char> s, int start, int end)
        {
            foreach (char c in s) Append(c, start, end);
        }

        public void AppendFrom(AlignedText source, int from, int to)
        {
            for (int i = from; i < to; i++) Append(source.Text[i], source.Start[i], source.End[i]);
        }

        public AlignedText Build() => new(_text.ToString(), [.. _start], [.. _end], _start.Count > 0 ? _start[0] : originalStart);
    }
}
