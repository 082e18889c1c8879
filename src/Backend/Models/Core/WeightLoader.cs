using TorchSharp;
using static TorchSharp.torch;

namespace AttentionViz.Backend.Models.Core;

/// <summary>Named tensors from a checkpoint (safetensors file or files).</summary>
public interface IWeightSource
{
    IReadOnlyCollection<string> Names { get; }
    long[] Shape(string name);

    /// <summary>The tensor as a contiguous float32 CPU tensor (F16/BF16 converted exactly).</summary>
    Tensor ReadFloat32(string name);
}

/// <summary>
/// Copies a checkpoint into a module whose parameter names are the checkpoint's keys: a key-by-key copy with a strict
/// check of names and shapes. Task-wrapper prefixes (bert., transformer., model., …) are accepted; extra tensors that
/// the model does not need (heads such as cls.* or lm_head) are ignored and reported.
/// </summary>
public static class WeightLoader
{
    public static IReadOnlyList<string> Load(nn.Module module, IWeightSource source, string sourceName, IEnumerable<string> wrapperPrefixes,
        Func<string, Tensor, Tensor>? transform = null)
    {
        var parameters = module.named_parameters().ToList();
        var prefix = ChoosePrefix(parameters.Select(p => p.name), source.Names, wrapperPrefixes);
        var missing = new List<string>();
        var wrongShape = new List<string>();
        var used = new HashSet<string>();
        using (no_grad())
        {
            foreach (var (name, parameter) in parameters)
            {
                var key = prefix + name;
                if (!source.Names.Contains(key)) { missing.Add(key); continue; }
                var shape = source.Shape(key);
                var expected = parameter.shape;
                using var loaded = source.ReadFloat32(key);
                using var value = transform is null ? loaded.alias() : transform(name, loaded);
                if (!value.shape.SequenceEqual(expected))
                {
                    wrongShape.Add($"{key}: checkpoint [{string.Join(", ", shape)}], model expects [{string.Join(", ", expected)}]");
                    continue;
                }
                parameter.copy_(value);
                used.Add(key);
            }
        }
        if (missing.Count > 0 || wrongShape.Count > 0)
        {
            var problems = missing.Select(m => $"missing {m}").Concat(wrongShape.Select(w => $"wrong shape {w}")).Take(12);
            throw new ModelLoadException($"{sourceName} does not match the model: {string.Join("; ", problems)}"
                + (missing.Count + wrongShape.Count > 12 ? $" (and {missing.Count + wrongShape.Count - 12} more)" : ""));
        }
        return source.Names.Where(n => !used.Contains(n)).OrderBy(n => n, StringComparer.Ordinal).ToList();
    }

    /// <summary>The prefix under which the checkpoint stores the model's parameters: "" or one of the wrapper prefixes.</summary>
    private static string ChoosePrefix(IEnumerable<string> parameterNames, IReadOnlyCollection<string> checkpointNames, IEnumerable<string> wrapperPrefixes)
    {
        var probe = parameterNames.First();
        if (checkpointNames.Contains(probe)) return "";
        foreach (var prefix in wrapperPrefixes)
            if (checkpointNames.Contains(prefix + probe)) return prefix;
        return "";
    }
}
