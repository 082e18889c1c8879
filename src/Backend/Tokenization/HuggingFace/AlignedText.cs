using System.Text;

namespace AttentionViz.Backend.Tokenization.HuggingFace;

/// <summary>
/// A normalized (or pre-tokenized) piece of text in which every UTF-16 unit remembers the span [Start, End) of the
/// ORIGINAL text it came from (HF's NormalizedString alignments, in UTF-16 units). The units of one original code point
/// that expands to several (NFD, a byte-level mapping of a multi-byte character) all carry that code point's span.
/// </summary>
internal sealed class AlignedText
{
    // A view [_offset, _offset + Length) over shared buffers, so that splitting copies nothing.
    private readonly string _text;
    private readonly int[] _start, _end;
    private readonly int _offset;
    private string? _slice;

    /// <summary>The normalized text of this piece.</summary>
    public string Text => _slice ??= _offset == 0 && Length == _text.Length ? _text : _text.Substring(_offset, Length);
    public ReadOnlySpan<char> Span => _text.AsSpan(_offset, Length);
    public ReadOnlySpan<int> Start => _start.AsSpan(_offset, Length);
    public ReadOnlySpan<int> End => _end.AsSpan(_offset, Length);

    /// <summary>The original offset where this piece begins, even when it is empty (HF's offsets_original().0).</summary>
    public int OriginalStart { get; }

    /// <summary>
    /// How long normalizers may make a text of <paramref name="length"/> units: 4 × as long plus 64. Real normalizers
    /// stay far below (NFKD, lower-casing, padding CJK with spaces: at most about 3×); a chain of Replace or Prepend
    /// steps that grows text without bound (the 8 GB in 30 s) is stopped here.
    /// </summary>
    public static int NormalizedLimit(int length) => (int)Math.Min(int.MaxValue, 4L * length + 64);

    /// <summary>The most units a normalizer may make of this text (<see cref="NormalizedLimit"/> of the original).</summary>
    public int MaxLength { get; }

    public AlignedText(string text, int[] start, int[] end, int originalStart, int maxLength = int.MaxValue)
        : this(text, start, end, 0, text.Length, originalStart, maxLength)
    {
    }

    private AlignedText(string text, int[] start, int[] end, int offset, int length, int originalStart, int maxLength)
    {
        _text = text;
        _start = start;
        _end = end;
        _offset = offset;
        Length = length;
        OriginalStart = originalStart;
        MaxLength = maxLength;
    }

    public int Length { get; }

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
        return new AlignedText(original.Substring(offset, length), start, end, offset, NormalizedLimit(length));
    }

    public AlignedText Slice(int from, int to)
    {
        if (from == 0 && to == Length) return this;
        return new AlignedText(_text, _start, _end, _offset + from, to - from, from < Length ? Start[from] : EndOffset, MaxLength);
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

    /// <summary>Builds a new aligned text unit by unit, refusing to grow past <paramref name="maxLength"/> units.</summary>
    public sealed class Builder(int capacity, int originalStart, int maxLength = int.MaxValue)
    {
        private readonly StringBuilder _text = new(capacity);
        private readonly List<int> _start = new(capacity);
        private readonly List<int> _end = new(capacity);

        public int Length => _text.Length;

        public void Append(char c, int start, int end)
        {
            if (_text.Length >= maxLength) throw TooLong(maxLength);
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
            var text = source.Span;
            var start = source.Start;
            var end = source.End;
            for (int i = from; i < to; i++) Append(text[i], start[i], end[i]);
        }

        public AlignedText Build() =>
            new(_text.ToString(), [.. _start], [.. _end], _start.Count > 0 ? _start[0] : originalStart, maxLength);

        private static ModelFormatException TooLong(int maxLength) => new(
            $"The tokenizer.json normalizer makes the text more than 4 times as long as it was, plus 64 characters " +
            $"(a text of {((long)maxLength - 64) / 4} characters would grow past {maxLength}). " +
            "A normalizer that multiplies text like this is not supported.");
    }
}
