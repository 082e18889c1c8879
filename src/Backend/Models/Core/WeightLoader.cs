using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Models.Core;

/// <summary>Named tensors from a checkpoint (one safetensors file, shards, or an opted-in pickle).</summary>
public interface IWeightSource : IDisposable
{
    /// <summary>A name for messages (a path).</summary>
    string Description { get; }

    IReadOnlyCollection<string> Names { get; }
    long[] Shape(string name);

    /// <summary>The tensor as a contiguous float32 CPU tensor (F16/BF16 converted exactly). The caller disposes it.</summary>
    Tensor ReadFloat32(string name);
}

/// <summary>
/// Copies a checkpoint into modules whose parameter names are the checkpoint's keys: a key-by-key copy with a strict
/// check of names and shapes. Task-wrapper prefixes (bert., transformer., model., …) are accepted; tensors the model
/// does not need (heads such as cls.* or a tied lm_head) are left over and reported by <see cref="Finish"/>.
/// One tensor is converted at a time, so loading needs the model plus one tensor, not two copies of the checkpoint.
/// </summary>
public sealed class WeightLoader(IWeightSource source)
{
    private readonly List<string> _missing = [];
    private readonly List<string> _wrongShape = [];
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>
    /// Loads every parameter of <paramref name="module"/>, looking each name up bare or under the one wrapper prefix
    /// the checkpoint uses. <paramref name="transform"/> (by parameter name) rearranges a tensor before the shape check.
    /// </summary>
    public void LoadModule(nn.Module module, IEnumerable<string> wrapperPrefixes, Func<string, Tensor, Tensor>? transform = null)
    {
        var parameters = module.named_parameters().ToList();
        if (parameters.Count == 0) return;
        var prefix = ChoosePrefix(parameters.Select(p => p.name), wrapperPrefixes);
        foreach (var (name, parameter) in parameters)
            Load(parameter, prefix + name, transform is null ? null : t => transform(name, t));
    }

    /// <summary>Loads one parameter from an exact key, recording a missing key or a wrong shape.</summary>
    public void Load(Parameter parameter, string key, Func<Tensor, Tensor>? transform = null)
    {
        if (!source.Names.Contains(key)) { _missing.Add(key); return; }
        var stored = source.Shape(key);
        if (stored.Aggregate(1L, (a, d) => a * d) != parameter.numel())                   // before reading: no huge allocations
        {
            _wrongShape.Add($"{key}: checkpoint [{string.Join(", ", stored)}], model expects [{string.Join(", ", parameter.shape)}]");
            return;
        }
        using var noGrad = no_grad();
        using var loaded = source.ReadFloat32(key);
        using var value = transform is null ? loaded.alias() : transform(loaded);
        if (!value.shape.SequenceEqual(parameter.shape))
        {
            _wrongShape.Add($"{key}: checkpoint [{string.Join(", ", source.Shape(key))}], model expects [{string.Join(", ", parameter.shape)}]");
            return;
        }
        parameter.copy_(value);
        _used.Add(key);
    }

    /// <summary>Throws if anything was missing or misshapen; otherwise returns the checkpoint keys that were not used.</summary>
    public IReadOnlyList<string> Finish()
    {
        if (_missing.Count > 0 || _wrongShape.Count > 0)
        {
            var problems = _missing.Select(m => $"missing {m}").Concat(_wrongShape.Select(w => $"wrong shape {w}")).Take(12);
            var total = _missing.Count + _wrongShape.Count;
            throw new ModelLoadException($"{source.Description} does not match the model: {string.Join("; ", problems)}"
                + (total > 12 ? $" (and {total - 12} more)" : ""));
        }
        return source.Names.Where(n => !_used.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).ToList();
    }

    /// <summary>The prefix under which the checkpoint stores the module's parameters: "" or one of the wrapper prefixes.</summary>
    private string ChoosePrefix(IEnumerable<string> parameterNames, IEnumerable<string> wrapperPrefixes)
    {
        var probe = parameterNames.First();
        if (source.Names.Contains(probe)) return "";
        foreach (var prefix in wrapperPrefixes)
            if (source.Names.Contains(prefix + probe)) return prefix;
        return "";
    }

    /// <summary>Summarises unused keys for the log (stderr).</summary>
    public static string DescribeUnused(IReadOnlyList<string> unused) =>
        $"ignoring {unused.Count} tensor(s) the attention view does not need " +
            $"({string.Join(", ", unused.Take(6))}{(unused.Count > 6 ? ", …" : "")})";
}
