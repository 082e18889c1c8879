namespace AttentionViz.Backend.Analysis;

/// <summary>Analyses by id, least recently used evicted first, bounded by the bytes their attention tensors hold.</summary>
public sealed class AnalysisCache(long capacityBytes, int maxEntries = 64)
{
    private readonly LinkedList<StoredAnalysis> _order = new();
    private readonly Dictionary<string, LinkedListNode<StoredAnalysis>> _byId = new();
    private readonly Lock _lock = new();
    private long _bytes;

    public long CapacityBytes => capacityBytes;

    /// <summary>Stores an analysis, evicting the least recently used ones beyond <paramref name="maxBytes"/> (default: the capacity).</summary>
    public void Add(StoredAnalysis analysis, long? maxBytes = null)
    {
        lock (_lock)
        {
            _byId[analysis.Id] = _order.AddFirst(analysis);
            _bytes += analysis.Attention.SizeInBytes;
            // Keep at least the newest analysis, whatever its size.
            EvictBeyond(Math.Min(maxBytes ?? capacityBytes, capacityBytes), keep: 1);
        }
    }

    /// <summary>Evicts least recently used analyses until the rest hold at most <paramref name="maxBytes"/>.</summary>
    public void Trim(long maxBytes)
    {
        lock (_lock) EvictBeyond(maxBytes, keep: 0);
    }

    private void EvictBeyond(long maxBytes, int keep)
    {
        while (_order.Count > keep && (_bytes > maxBytes || _order.Count > maxEntries))
        {
            var oldest = _order.Last!.Value;
            _order.RemoveLast();
            _byId.Remove(oldest.Id);
            _bytes -= oldest.Attention.SizeInBytes;
            oldest.Release();
        }
    }

    /// <summary>What the stored analyses hold.</summary>
    public long Bytes
    {
        get { lock (_lock) return _bytes; }
    }

    /// <summary>
    /// Drops an analysis the client no longer shows; its buffers go back to the pool once no request holds a lease, so
    /// the next analysis reuses them instead of touching fresh memory. False when the id is unknown or already evicted.
    /// </summary>
    public bool Remove(string id)
    {
        lock (_lock)
        {
            if (!_byId.Remove(id, out var node)) return false;
            _order.Remove(node);
            _bytes -= node.Value.Attention.SizeInBytes;
            node.Value.Release();
            return true;
        }
    }

    /// <summary>The analysis with a lease that keeps its buffers alive until disposed, or null when unknown or evicted.</summary>
    public StoredAnalysis.Lease? Acquire(string id)
    {
        lock (_lock)
        {
            if (!_byId.TryGetValue(id, out var node)) return null;
            _order.Remove(node);
            _order.AddFirst(node);
            return node.Value.TryAcquire();
        }
    }

    /// <summary>The stored analyses, most recently used first (a snapshot: any may be evicted after).</summary>
    public IReadOnlyList<StoredAnalysis> Recent()
    {
        lock (_lock) return [.. _order];
    }

    public bool Contains(string id)
    {
        lock (_lock) return _byId.ContainsKey(id);
    }

    public int Count
    {
        get { lock (_lock) return _order.Count; }
    }
}
