using System.CommandLine;
using System.Text.Json;
using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Export;
using AttentionViz.Backend.Models;
using AttentionViz.Backend.Models.Core;
using AttentionViz.Backend.Platform;
using AttentionViz.Backend.Rpc;
using AttentionViz.Backend.Runtime;

namespace AttentionViz.Backend.Cli;

/// <summary>
/// The command line: serve (default), analyze, tokenize, render. Exit codes: 0 ok, 1 the model or a file could not be
/// used (or an internal error), 2 bad input, 130 cancelled.
/// </summary>
public static partial class CliApp
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (ProcessSetup.ReexecWithOpenMpSettings(args) is { } childExit) return childExit;

        var root = new RootCommand("AttentionViz backend: real transformer attention over JSON-RPC (serve) or from the command line.");
        root.Options.Add(AllowPickleOption);
        root.Subcommands.Add(ServeCommand());
        root.Subcommands.Add(AnalyzeCommand());
        root.Subcommands.Add(TokenizeCommand());
        root.Subcommands.Add(RenderCommand());
        root.SetAction((_, _) => Guard(ServeAsync));
        return await root.Parse(args).InvokeAsync();
    }

    private static Command ServeCommand()
    {
        var command = new Command("serve", "Serve JSON-RPC 2.0 with LSP framing on stdin/stdout (logs on stderr).");
        command.SetAction((_, _) => Guard(ServeAsync));
        return command;
    }

    private static async Task<int> ServeAsync()
    {
        var protocolOut = ProcessSetup.TakeStdoutForProtocol();
        using var backend = new BackendHost();
        Log.Info($"attentionviz-backend {ProtocolInfo.ServerVersion} serving JSON-RPC on stdio (threads: {TorchSetup.ThreadCount})");
        backend.Prewarm();
        var code = await backend.Server.RunAsync(Console.OpenStandardInput(), protocolOut);
        Log.Info($"exiting with code {code}");
        return code;
    }

    private static readonly Option<bool> AllowPickleOption = new("--allow-pickle")
    {
        Description = "Also load PyTorch pickle checkpoints (pytorch_model.bin) through a restricted unpickler. Off by default: prefer safetensors.",
        Recursive = true,
    };

    /// <summary>The services a command needs, with the user's pickle opt-in applied.</summary>
    private static BackendHost CreateHost(ParseResult result)
    {
        var host = new BackendHost();
        host.Registry.AllowPickle = result.GetValue(AllowPickleOption);
        if (host.Registry.AllowPickle) Console.Error.WriteLine("warning: --allow-pickle: " +
            "PyTorch pickle checkpoints load through a restricted unpickler.");
        return host;
    }

    private static readonly Option<string> ModelOption = new("--model")
    {
        Description = "\"default\" (embedded all-MiniLM-L6-v2) or a Hugging Face " +
        "model folder.", DefaultValueFactory = _ => ModelRegistry.DefaultId
    };
    private static readonly Option<string?> TextOption = new("--text") { Description = "The text to analyze." };
    private static readonly Option<FileInfo?> TextFileOption = new("--text-file") { Description = "A UTF-8 file holding the text." };
    private static readonly Option<string?> IdsOption = new("--ids")
    {
        Description = "Comma-separated token ids, fed as given (no special tokens added).",
    };
    private static readonly Option<int?> MaxTokensOption = new("--max-tokens")
    {
        Description = "Analyze at most this many tokens (special tokens included).",
    };
    private static readonly Option<bool> HideSpecialOption = new("--hide-special")
    {
        Description = "Leave out special tokens ([CLS], [SEP], BOS…) and renormalise each row.",
    };
    private static readonly Option<bool> WordLevelOption = new("--word-level")
    {
        Description = "Merge subword tokens into words (to a word: sum over its pieces; from a word: mean).",
    };

    /// <summary>The view options the user chose (render, and analyze's CSV export).</summary>
    private static ViewOptions ViewOf(ParseResult result) =>
        new(result.GetValue(HideSpecialOption), result.GetValue(WordLevelOption));

    /// <summary>
    /// The command's input analyzed: <c>--ids</c> as given (with <paramref name="tokenTypes"/>' segment ids, where the
    /// command has that option), else the text (<c>--text</c> or <c>--text-file</c>, paired with
    /// <paramref name="textPair"/>'s where the command has it), at most <c>--max-tokens</c> long.
    /// </summary>
    private static async Task<StoredAnalysis> AnalyzeInputAsync(ParseResult result, BackendHost backend,
        CancellationToken cancellationToken, Option<string?>? textPair = null, Option<string?>? tokenTypes = null)
    {
        var modelId = ModelId(result.GetValue(ModelOption));
        var pair = textPair is null ? null : result.GetValue(textPair);
        var types = tokenTypes is null ? null : result.GetValue(tokenTypes);
        if (result.GetValue(IdsOption) is { } idList)
        {
            if (result.GetValue(TextOption) is not null || result.GetValue(TextFileOption) is not null || pair is not null)
                throw new InvalidRequestException("Give either --ids or a text, not both.");
            return await backend.Service.AnalyzeIdsAsync(ParseIds(idList), modelId, cancellationToken,
                types is null ? null : ParseIds(types));
        }
        if (types is not null) throw new InvalidRequestException("--token-type-ids goes with --ids.");
        var options = new AnalyzeOptions(ReadText(result), modelId, result.GetValue(MaxTokensOption), pair);
        return await backend.Service.AnalyzeAsync(options, cancellationToken);
    }

    private static Command AnalyzeCommand()
    {
        var textPair = new Option<string?>("--text-pair")
        {
            Description = "A second text: " +
            "analyze the sentence pair the way the model's tokenizer builds it (segments 0 and 1)."
        };
        var tokenTypes = new Option<string?>("--token-type-ids")
        {
            Description = "With --ids: comma-separated segment ids, one per token (e.g. " +
            "0,0,0,1,1)."
        };
        var output = new Option<FileInfo?>("--out")
        {
            Description = "Write the analysis to FILE.safetensors or FILE.json, " +
            "or one matrix (--layer/--head, default the mean; --hide-special, --word-level) to FILE.csv, instead of printing a summary."
        };
        var heads = new Option<string?>("--heads")
        {
            Description = "With a .safetensors or .json --out: only these heads' attention, as comma-separated layer:head pairs " +
            "(e.g. 0:1,3:2), written as attentions [k, n, n] and attention_heads [k, 2].",
        };
        var noAttentions = new Option<bool>("--no-attentions")
        {
            Description = "With a .safetensors or .json --out: no attention, only the ids, offsets, special tokens and hidden states.",
        };
        var command = new Command("analyze", "Run the model on a text and print or save every layer's and head's attention.")
        {
            ModelOption, TextOption, TextFileOption, textPair, IdsOption, tokenTypes, output, heads, noAttentions, MaxTokensOption,
            LayerOption, HeadOption, HideSpecialOption, WordLevelOption,
        };
        command.SetAction((result, cancellationToken) => Guard(async () =>
        {
            var file = result.GetValue(output);
            var selection = SelectionOf(result.GetValue(heads), result.GetValue(noAttentions));
            if (file is null && selection is not null)
                throw new InvalidRequestException("--heads and --no-attentions choose what --out writes: give --out FILE.safetensors or FILE.json.");
            using var backend = CreateHost(result);
            if (file is null)
            {
                AnalysisSummary.Print(await AnalyzeInputAsync(result, backend, cancellationToken, textPair, tokenTypes), Console.Out);
                return 0;
            }
            // A relative --out is taken from the current folder (FileInfo.FullName), then held to attention/export's rule.
            var outPath = OutputPath.Check(file.FullName);
            var export = new ExportOptions(result.GetValue(LayerOption), result.GetValue(HeadOption), ViewOf(result), selection);
            // Refused before the model runs where the size is known already (--ids): a long forward is not wasted.
            using (var lease = await backend.Registry.AcquireAsync(ModelId(result.GetValue(ModelOption)), cancellationToken))
            {
                int? tokens = result.GetValue(IdsOption) is { } idList ? ParseIds(idList).Length : null;
                AnalysisExport.Check(outPath, export, lease.Model.Layers, lease.Model.Heads, tokens);
            }
            var analysis = await AnalyzeInputAsync(result, backend, cancellationToken, textPair, tokenTypes);
            AnalysisExport.Write(analysis, outPath, export, cancellationToken);
            Console.Error.WriteLine($"wrote {outPath} ({new FileInfo(outPath).Length} bytes)");
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// <c>--heads 0:1,3:2</c> or <c>--no-attentions</c> (not both); null when neither is given (every head). The model's
    /// ranges are checked once it is loaded.
    /// </summary>
    private static AttentionSelection? SelectionOf(string? heads, bool noAttentions)
    {
        if (heads is null) return noAttentions ? AttentionSelection.None : null;
        if (noAttentions) throw new InvalidRequestException("Give either --heads or --no-attentions, not both.");
        var pairs = new List<(int Layer, int Head)>();
        foreach (var entry in heads.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = entry.Split(':');
            if (parts.Length != 2 || !int.TryParse(parts[0], out var layer) || !int.TryParse(parts[1], out var head))
                throw new InvalidRequestException($"--heads takes layer:head pairs such as 0:1,3:2; '{entry}' is not one.");
            pairs.Add((layer, head));
        }
        return AttentionSelection.Of(pairs);
    }

    private static Command TokenizeCommand()
    {
        var jsonl = new Option<FileInfo?>("--jsonl")
        {
            Description = "A file with one JSON string per line: prints one {ids, tokens, offsets} object per line, in order.",
        };
        var noSpecial = new Option<bool>("--no-special-tokens")
        {
            Description = "Leave out the special tokens the model's tokenizer adds by default.",
        };
        var command = new Command("tokenize",
            "Print the model tokenizer's {ids, tokens, offsets} as JSON (UTF-16 offsets). Needs only the tokenizer files.")
        { ModelOption, TextOption, TextFileOption, jsonl, noSpecial };
        command.SetAction((result, cancellationToken) => Guard(async () =>
        {
            using var backend = CreateHost(result);
            var tokenizer = await backend.TokenizerAsync(ModelId(result.GetValue(ModelOption)), cancellationToken);
            var addSpecial = !result.GetValue(noSpecial);
            string Encode(string text)
            {
                var content = tokenizer.Tokenize(text);
                var tokens = addSpecial ? tokenizer.AddSpecialTokens(content) : content;
                return JsonSerializer.Serialize(new
                {
                    ids = tokens.Select(t => t.Id),
                    tokens = tokens.Select(t => t.Text),
                    offsets = tokens.Select(t => new[] { t.Start, t.End }),
                });
            }
            if (result.GetValue(jsonl) is { } file)
            {
                if (result.GetValue(TextOption) is not null || result.GetValue(TextFileOption) is not null)
                    throw new InvalidRequestException("Give either --jsonl or a text, not both.");
                if (!file.Exists) throw new InvalidRequestException($"JSONL file not found: {file.FullName}");
                var lineNumber = 0;
                foreach (var line in File.ReadLines(file.FullName))
                {
                    lineNumber++;
                    if (line.Length == 0) continue;
                    string? text;
                    try { text = JsonSerializer.Deserialize<string>(line); }
                    catch (JsonException e) { throw new InvalidRequestException($"{file.Name} line {lineNumber} is not a JSON string: {e.Message}"); }
                    if (text is null) throw new InvalidRequestException($"{file.Name} line {lineNumber} is null, not a JSON string.");
                    Console.Out.WriteLine(Encode(text));
                }
                return 0;
            }
            Console.Out.WriteLine(Encode(ReadText(result, allowEmpty: true)));
            return 0;
        }));
        return command;
    }

    private static string ModelId(string? model) =>
        model is null or ModelRegistry.DefaultId ? ModelRegistry.DefaultId : Path.GetFullPath(model);

    private static string ReadText(ParseResult result, bool allowEmpty = false)
    {
        var text = result.GetValue(TextOption);
        var file = result.GetValue(TextFileOption);
        if (text is not null && file is not null) throw new InvalidRequestException("Give either --text or --text-file, not both.");
        if (file is not null)
        {
            if (!file.Exists) throw new InvalidRequestException($"Text file not found: {file.FullName}");
            text = File.ReadAllText(file.FullName);
        }
        if (text is null) throw new InvalidRequestException("Give the input with --text, --text-file or --ids.");
        if (!allowEmpty && text.Length == 0) throw new InvalidRequestException("The text is empty.");
        return text;
    }

    private static long[] ParseIds(string list)
    {
        var parts = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return parts.Select(p => long.TryParse(p, out var id) ? id : throw new InvalidRequestException($"'{p}' in --ids is not an integer token id."))
            .ToArray();
    }

    /// <summary>
    /// Failures through the mapping the server uses too: one line <c>error: …</c> on stderr, never a stack, and the
    /// exit code of <see cref="ErrorMapping.ExitCode"/> (docs/protocol.md, "Command line").
    /// </summary>
    private static async Task<int> Guard(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e)
        {
            var failure = ErrorMapping.Describe(e);
            Console.Error.WriteLine($"error: {failure.Message.ReplaceLineEndings(" ")}");
            return ErrorMapping.ExitCode(failure.Code);
        }
    }
}
