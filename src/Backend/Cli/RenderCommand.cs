using System.CommandLine;
using AttentionViz.Backend.Export;
using AttentionViz.Backend.Rendering;
using AttentionViz.Backend.Storage;

namespace AttentionViz.Backend.Cli;

public static partial class CliApp
{
    private static readonly Option<int> LayerOption = new("--layer")
    {
        Description = "Layer to show or export; -1 (default) is the mean over layers.",
        DefaultValueFactory = _ => -1
    };
    private static readonly Option<int> HeadOption = new("--head")
    {
        Description = "Head to show or export; -1 (default) is the mean over heads.",
        DefaultValueFactory = _ => -1
    };

    /// <summary>`render`: the same PNG images as the render/png method, written to --out.</summary>
    private static Command RenderCommand()
    {
        var output = new Option<FileInfo>("--out") { Description = "The PNG file to write.", Required = true };
        var (layer, head) = (LayerOption, HeadOption);
        var grid = new Option<bool>("--grid") { Description = "Every layer × head as one image of thumbnails instead of one heatmap." };
        var size = new Option<int?>("--size") { Description = "Heatmap: the matrix side in pixels. Grid: each thumbnail's side." };
        var cellSize = new Option<int?>("--cell-size") { Description = "Heatmap: pixels per token." };
        var maxSize = new Option<int?>("--max-size") { Description = "Max-pool long inputs down to at most this many rows and columns." };
        var colorMap = new Option<string?>("--color-map") { Description = "viridis (default) or greys." };
        var theme = new Option<string?>("--theme") { Description = "light (default) or dark background." };
        var command = new Command("render",
            "Run the model on a text and draw its attention as a PNG heatmap (one layer/head) or a grid of every layer and head.")
        {
            ModelOption, TextOption, TextFileOption, IdsOption, output, layer, head, grid, size, cellSize, maxSize, colorMap, theme,
            MaxTokensOption, HideSpecialOption, WordLevelOption,
        };
        command.SetAction((result, cancellationToken) => Guard(async () =>
        {
            // FullName: a relative --out is taken from the current folder (the user typed it), then checked as render/png's path.
            var path = OutputPath.Check(result.GetValue(output)!.FullName, ".png");
            var options = new RenderOptions(result.GetValue(cellSize), result.GetValue(size), result.GetValue(maxSize),
                result.GetValue(colorMap), result.GetValue(theme));
            options.Validate();
            if (result.GetValue(grid) && (result.GetResult(layer) is { Implicit: false } || result.GetResult(head) is { Implicit: false }))
                throw new InvalidRequestException("--grid shows every layer and head: leave out --layer and --head.");
            using var backend = CreateHost(result);
            var analysis = await AnalyzeInputAsync(result, backend, cancellationToken);
            var view = ViewOf(result);
            var image = result.GetValue(grid)
                ? AttentionRenderer.Grid(analysis, options, view)
                : AttentionRenderer.Heatmap(analysis, result.GetValue(layer), result.GetValue(head), options, view);
            AtomicFile.Write(path, stream => stream.Write(image.Png));
            Console.Error.WriteLine($"wrote {path} ({image.Width}×{image.Height}, {image.Png.Length} bytes)");
            return 0;
        }));
        return command;
    }
}
