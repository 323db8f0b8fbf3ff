using Conic.Augmentation;
using Conic.Data;
using static TorchSharp.torch;

namespace Conic.Training;

/// <summary>
/// A batch ready for a training step: the augmented views on the training device and the instance indices. Owns its
/// tensors (made outside any dispose scope, possibly on another thread) until disposed.
/// </summary>
sealed class PreparedBatch : IDisposable
{
    PreparedBatch(Tensor[] views, Tensor indices, Tensor? labels)
    {
        Views = views;
        Indices = indices;
        Labels = labels;
    }

    public Tensor[] Views { get; }
    public Tensor Indices { get; }
    /// <summary>The images' classes, for methods that train on labels; else null.</summary>
    public Tensor? Labels { get; }

    /// <summary>
    /// The views of images <paramref name="datasetIndices"/> (see <see cref="BatchAugmenter.Views"/>); <paramref name="instances"/>
    /// are the classifier's indices; with <paramref name="withLabels"/>, the images' labels too; <paramref name="share"/>: which
    /// rows of a data-parallel global batch they are.
    /// </summary>
    public static PreparedBatch Make(BatchAugmenter augmenter, ImageDataset data, int[] datasetIndices, int[] instances, Device device, Generator generator,
                                     bool withLabels = false, BatchShare? share = null)
    {
        using var scope = NewDisposeScope();
        var views = augmenter.Views(data, datasetIndices, device, generator, share);
        var indices = tensor(instances.Select(i => (long)i).ToArray()).to(device);
        var labels = withLabels ? tensor(datasetIndices.Select(i => (long)data.Labels![i]).ToArray()).to(device).DetachFromDisposeScope() : null;
        return new PreparedBatch(views.Select(v => v.DetachFromDisposeScope()).ToArray(), indices.DetachFromDisposeScope(), labels);
    }

    /// <summary>
    /// Prepares batch i + 1 on a worker thread while batch i is consumed. Preparation is strictly sequential (each
    /// continues the previous), so a shared random generator is used in the same order as without prefetching.
    /// </summary>
    public static IEnumerable<PreparedBatch> Prefetch(IEnumerable<int[]> batches, Func<int[], PreparedBatch> prepare)
    {
        Task<PreparedBatch>? pending = null;
        try
        {
            foreach (var batch in batches)
            {
                var previous = pending;
                pending = previous == null
                    ? Task.Run(() => prepare(batch))
                    : previous.ContinueWith(_ => prepare(batch), TaskContinuationOptions.ExecuteSynchronously);
                if (previous != null) yield return previous.GetAwaiter().GetResult();
            }
            if (pending != null)
            {
                var last = pending;
                pending = null;
                yield return last.GetAwaiter().GetResult();
            }
        }
        finally
        {
            // Abandoned mid-epoch (an exception in the step): wait for the batch in flight and free it.
            if (pending != null)
            {
                try { pending.GetAwaiter().GetResult().Dispose(); }
                catch (Exception) { /* the step's exception is the one to report */ }
            }
        }
    }

    public void Dispose()
    {
        foreach (var view in Views) view.Dispose();
        Indices.Dispose();
        Labels?.Dispose();
    }
}
