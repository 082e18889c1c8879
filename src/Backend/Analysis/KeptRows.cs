using static TorchSharp.torch;

namespace AttentionViz.Backend.Analysis;

/// <summary>
/// The storage behind the kept state of a chain of causal analyses that each extend the last (the user types at the
/// end): queries, keys, log-sum-exp and values of every layer, one allocation per kind with room for more rows than
/// the first analysis has. A later analysis whose tokens start with all of the last one's writes only its new rows
/// after them and shares the rest, instead of copying ~1.1 GB at 8,192 tokens (SmolLM2 shape); rows no one wrote
/// are never touched, so the room costs address space, not memory. Each analysis reads the first rows of its own
/// length; the storage lives as long as any analysis of the chain (every view holds it).
/// </summary>
public sealed class KeptRows : IDisposable
{
    /// <summary>The kinds, in the order of <see cref="Whole"/>.</summary>
    public const int Queries = 0, Keys = 1, LogSumExp = 2, Values = 3;

    private readonly Tensor?[] _wholes = new Tensor?[4];
    private int _users = 1;

    /// <summary>Rows each kind can hold.</summary>
    public int Capacity { get; }

    /// <summary>Rows written so far, by the chain's last analysis; only an analysis of exactly this length can be extended.</summary>
    public int Filled { get; private set; }

    private KeptRows(int capacity) => Capacity = capacity;

    /// <summary>Room for <paramref name="tokens"/> rows and an eighth more (at least 256), which covers a sentence or a
    /// paragraph typed at the end.</summary>
    public static KeptRows For(int tokens) => new(tokens + Math.Max(256, tokens / 8));

    /// <summary>
    /// Takes this storage over for an analysis of <paramref name="tokens"/> tokens that extends the one of
    /// <paramref name="earlierTokens"/> (whose tokens it starts with): true when that one is the chain's last and the
    /// new rows fit. The new analysis then writes rows [earlierTokens, tokens) only; <see cref="GiveBack"/> if it fails.
    /// </summary>
    public bool TryExtend(int earlierTokens, int tokens)
    {
        lock (_wholes)
        {
            if (Filled != earlierTokens || tokens > Capacity || tokens <= earlierTokens) return false;
            Filled = tokens;
            return true;
        }
    }

    /// <summary>An extension that did not finish: the chain ends at <paramref name="earlierTokens"/> again.</summary>
    public void GiveBack(int earlierTokens, int tokens)
    {
        lock (_wholes)
            if (Filled == tokens) Filled = earlierTokens;
    }

    /// <summary>Marks the first analysis's rows written.</summary>
    public void Fill(int tokens) => Filled = tokens;

    /// <summary>
    /// Kind <paramref name="kind"/>'s storage: (layers, first, Capacity, …) for one layer's tensor shaped like
    /// <paramref name="perLayer"/> (its dimension 1 being rows), allocated at the first call.
    /// </summary>
    public Tensor Whole(int kind, int layers, Tensor perLayer)
    {
        lock (_wholes)
        {
            if (_wholes[kind] is { } whole) return whole;
            long[] shape = [layers, .. perLayer.shape];
            shape[2] = Capacity;
            return _wholes[kind] = empty(shape, dtype: float32).DetachFromDisposeScope();
        }
    }

    /// <summary>One more analysis (or capture) holds this storage; each calls <see cref="Dispose"/> once.</summary>
    public KeptRows Acquire()
    {
        lock (_wholes)
        {
            ObjectDisposedException.ThrowIf(_users == 0, this);
            _users++;
            return this;
        }
    }

    /// <summary>The last holder lets go of the wholes (each analysis's views then keep only what they read, until
    /// they go too).</summary>
    public void Dispose()
    {
        lock (_wholes)
        {
            if (_users == 0 || --_users > 0) return;
            for (var kind = 0; kind < _wholes.Length; kind++)
            {
                _wholes[kind]?.Dispose();
                _wholes[kind] = null;
            }
        }
    }
}
