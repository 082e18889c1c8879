using AttentionViz.Backend.Analysis;
using AttentionViz.Backend.Export;
using AttentionViz.Backend.Rendering;
using AttentionViz.Backend.Storage;
using StreamJsonRpc;

namespace AttentionViz.Backend.Rpc;

public sealed record RenderPngParams(
    string? AnalysisId, int Layer = -1, int Head = -1, bool Grid = false, int? CellSize = null, int? Size = null,
    int? MaxSize = null, string? ColorMap = null, string? Theme = null, float? ScaleMax = null, string? Path = null,
    bool HideSpecial = false, bool WordLevel = false);

/// <summary><c>png</c> is omitted when the image was written to <c>path</c>.</summary>
public sealed record RenderPngResult(ReadOnlyMemory<byte>? Png, int Width, int Height, string? Path = null, long? Bytes = null);

/// <param name="HideSpecial">csv and json: leave out special tokens and renormalise the rows, as attention/view does</param>
/// <param name="WordLevel">csv and json: merge subword tokens into words, as attention/view does</param>
public sealed record ExportParams(
    string? AnalysisId, string? Format, int? Layer = null, int? Head = null, string? Path = null, bool HideSpecial = false,
    bool WordLevel = false);
public sealed record ExportResult(string Path, long Bytes);

/// <summary>render/… and attention/export: images and files made from a stored analysis.</summary>
public sealed class RenderTarget(AttentionService service)
{
    [JsonRpcMethod("render/png", UseSingleObjectParameterDeserialization = true)]
    public Task<RenderPngResult> RenderPngAsync(RenderPngParams request, CancellationToken cancellationToken) => Task.Run(() =>
    {
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var path = request!.Path is null ? null : MatrixExport.CheckOutputPath(request.Path, ".png");
        var options = new RenderOptions(request.CellSize, request.Size, request.MaxSize, request.ColorMap, request.Theme, request.ScaleMax);
        using var lease = service.Acquire(id);
        cancellationToken.ThrowIfCancellationRequested();
        if (request.Grid && (request.Layer != -1 || request.Head != -1))
            throw new InvalidRequestException("grid shows every layer and head: leave layer and head out.");
        var view = new ViewOptions(request.HideSpecial, request.WordLevel);
        var image = request.Grid
            ? AttentionRenderer.Grid(lease.Analysis, options, view)
            : AttentionRenderer.Heatmap(lease.Analysis, request.Layer, request.Head, options, view);
        if (path is null) return new RenderPngResult(image.Png, image.Width, image.Height);
        AtomicFile.Write(path, stream => stream.Write(image.Png));
        return new RenderPngResult(null, image.Width, image.Height, path, image.Png.Length);
    }, cancellationToken);

    [JsonRpcMethod("attention/export", UseSingleObjectParameterDeserialization = true)]
    public Task<ExportResult> ExportAsync(ExportParams request, CancellationToken cancellationToken) => Task.Run(() =>
    {
        var id = RequestChecks.AnalysisId(request?.AnalysisId);
        var path = MatrixExport.CheckOutputPath(request!.Path);
        using var lease = service.Acquire(id);
        var (layer, head) = (request.Layer ?? -1, request.Head ?? -1);
        var view = new ViewOptions(request.HideSpecial, request.WordLevel);
        switch (RequestChecks.OneOf("format", request.Format, "csv", "json", "safetensors"))
        {
            case "csv": MatrixExport.WriteCsv(lease.Analysis, layer, head, path, view); break;
            case "json": MatrixExport.WriteJson(lease.Analysis, layer, head, path, view); break;
            case "safetensors":
                if (request.Layer is not null || request.Head is not null)
                    throw new InvalidRequestException("safetensors holds the whole analysis (every layer and head): leave layer and head out.");
                AnalysisExport.WriteSafetensors(lease.Analysis, path);
                break;
        }
        return new ExportResult(path, new FileInfo(path).Length);
    }, cancellationToken);
}
