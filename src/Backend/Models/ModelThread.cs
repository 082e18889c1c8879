using System.Collections.Concurrent;

namespace AttentionViz.Backend.Models;

/// <summary>
/// One dedicated thread runs all model work. libtorch's OpenMP keeps a worker team per calling thread; hopping between
/// thread-pool threads costs a new team and gives latency outliers.
/// </summary>
public sealed class ModelThread : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly Thread _thread;

    public ModelThread()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "model" };
        _thread.Start();
    }

    private void Run()
    {
        foreach (var item in _work.GetConsumingEnumerable()) item();
    }

    public Task<T> RunAsync<T>(Func<CancellationToken, T> work, CancellationToken cancellationToken)
    {
        var completion = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        // A request cancelled while it waits in the queue answers at once; a running one stops at the next layer.
        var registration = cancellationToken.Register(() => completion.TrySetCanceled(cancellationToken));
        _work.Add(() =>
        {
            try
            {
                if (completion.Task.IsCompleted) return;
                cancellationToken.ThrowIfCancellationRequested();
                completion.TrySetResult(work(cancellationToken));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                completion.TrySetCanceled(cancellationToken);
            }
            catch (Exception e)
            {
                completion.TrySetException(e);
            }
            finally
            {
                registration.Dispose();
            }
        }, CancellationToken.None);
        return completion.Task;
    }

    /// <summary>True on the model thread itself.</summary>
    public bool IsCurrent => Thread.CurrentThread == _thread;

    /// <summary>Runs <paramref name="work"/> on the model thread and waits for it; inline when already there.</summary>
    public T Run<T>(Func<T> work) =>
        Thread.CurrentThread == _thread ? work() : RunAsync(_ => work(), CancellationToken.None).GetAwaiter().GetResult();

    public void Dispose()
    {
        _work.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(5));
        _work.Dispose();
    }
}
