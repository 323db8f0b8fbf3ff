namespace Conic.Data;

/// <summary>
/// Chooses which training images are instances (a seeded random subset, or all) and the order they are visited:
/// a fresh seeded shuffle each epoch, in full batches only (a tiny last batch would skew BatchNorm).
/// With a window (PIC's sliding-window idea), an epoch is one pass over a window of <c>window</c> consecutive
/// instances, and the window slides so that it sweeps all instances once over the run: each instance is visited in
/// a few consecutive epochs, so its classifier row is fresh when it is trained, and many more distinct images are
/// seen than a fixed subset of the window's size would show.
/// The order depends only on (seed, epoch), so a resumed run sees exactly the batches the original would have.
/// </summary>
public sealed class InstanceSampler
{
    readonly int _seed, _window, _epochs;

    /// <param name="window">Instances per epoch; 0 = all instances every epoch.</param>
    /// <param name="epochs">The run's length, over which the window sweeps the instances once.</param>
    public InstanceSampler(int datasetCount, int instances, int seed, int window = 0, int epochs = 1)
    {
        _seed = seed;
        int count = instances == 0 ? datasetCount : instances;
        if (count > datasetCount)
            throw new ConicException($"--instances: {instances} is more than the {datasetCount} training images");
        var all = Enumerable.Range(0, datasetCount).ToArray();
        // A window over an unshuffled image folder would hold one class at a time.
        if (count < datasetCount || window > 0) new Random(seed).Shuffle(all);
        DatasetIndices = all[..count];
        if (window > count) throw new ConicException($"--instance-window: {window} is more than the {count} instances");
        _window = window == 0 ? count : window;
        _epochs = epochs;
    }

    /// <summary>Instance i is the training image DatasetIndices[i].</summary>
    public int[] DatasetIndices { get; }
    /// <summary>How many instances (training images used as classes).</summary>
    public int Count => DatasetIndices.Length;

    /// <summary>Full batches of <paramref name="batchSize"/> in an epoch (a partial last batch is dropped).</summary>
    public int BatchesPerEpoch(int batchSize) => _window / batchSize;

    /// <summary>The instance indices of each batch of <paramref name="epoch"/> (1-based).</summary>
    /// <param name="progress">How far a run without a planned number of epochs (a time budget) has come, 0 to 1: the
    /// window then starts that far along the instances; null places it by <paramref name="epoch"/> of the planned epochs.</param>
    public IEnumerable<int[]> EpochBatches(int epoch, int batchSize, double? progress = null)
    {
        if (_window < batchSize)
            throw new ConicException($"--batch-size: {batchSize} is larger than the {_window} instances per epoch");
        // Epoch 1's window starts at the first instance, the last epoch's ends at the last one.
        int start = progress is double done ? (int)Math.Round(Math.Clamp(done, 0, 1) * (Count - _window))
            : _epochs > 1 ? (int)((long)(epoch - 1) * (Count - _window) / (_epochs - 1)) : 0;
        var order = Enumerable.Range(start, _window).ToArray();
        new Random(Runtime.Seeds.Derive(_seed, epoch, purpose: 1)).Shuffle(order);
        for (int b = 0; b + batchSize <= _window; b += batchSize)
            yield return order[b..(b + batchSize)];
    }
}
