using System.Globalization;

namespace AttentionViz.Backend.Tokenization;

/// <summary>
/// The character classes of HF's BERT text handling (tokenization_bert.py, and tokenizers' BertNormalizer and
/// BertPreTokenizer, which use the same sets): shared by the vocab.txt tokenizer and the tokenizer.json pipeline.
/// What stays apart on purpose is the whitespace and clean-text rule: the vocab.txt tokenizer reproduces Python's
/// BertTokenizer (str.split also splits on U+2028/U+2029, str.lower's Final_Sigma), tokenizer.json's BertNormalizer
/// follows the Rust tokenizers crate (char::is_whitespace, no Final_Sigma), and the two libraries disagree there.
/// </summary>
internal static class BertCharacterClasses
{
    /// <summary>
    /// HF's _is_punctuation: every printable non-alphanumeric ASCII character (so $, +, ^, ` count, though Unicode
    /// calls them symbols), and the Unicode punctuation categories P* elsewhere.
    /// </summary>
    public static bool IsPunctuation(int cp)
    {
        if (cp < 128) return cp > ' ' && cp != 0x7F && !char.IsAsciiLetterOrDigit((char)cp);
        return CharUnicodeInfo.GetUnicodeCategory(cp) is UnicodeCategory.ConnectorPunctuation
            or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>HF's _is_chinese_char: the CJK Unified Ideographs blocks (not Hangul, kana or CJK punctuation).</summary>
    public static bool IsChineseChar(int cp) =>
        cp is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF)
            or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B820 and <= 0x2CEAF)
            or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}
