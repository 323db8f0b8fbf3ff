namespace Conic.Data;

/// <summary>
/// Chooses which training images are instances (a seeded random subset, or all) and the order they are visited:
/// a fresh seeded shuffle each epoch, in full batches only (a tiny last batch would skew BatchNorm).
/// The order depends only on (seed, epoch), so a resumed run sees exactly the batches the original would have.
/// </summary>
public sealed class InstanceSampler
{
    readonly int _seed;

    public InstanceSampler(int datasetCount, int instances, int seed)
    {
        _seed = seed;
        int count = instances == 0 ? datasetCount : instances;
        if (count > datasetCount)
            throw new ConicException($"--instances: {instances} is more than the {datasetCount} training images");
        var all = Enumerable.Range(0, datasetCount).ToArray();
        if (count < datasetCount) new Random(seed).Shuffle(all);
        DatasetIndices = all[..count];
    }

    /// <summary>Instance i is the training image DatasetIndices[i].</summary>
    public int[] DatasetIndices { get; }
    public int Count => DatasetIndices.Length;

    public int BatchesPerEpoch(int batchSize) => Count / batchSize;

    /// <summary>The instance indices of each batch of <paramref name="epoch"/>.</summary>
    public IEnumerable<int[]> EpochBatches(int epoch, int batchSize)
    {
        if (Count < batchSize)
            throw new ConicException($"--batch-size: {batchSize} is larger than the {Count} instances");
        var order = Enumerable.Range(0, Count).ToArray();
        new Random(Runtime.Seeds.Derive(_seed, epoch, purpose: 1)).Shuffle(order);
        for (int b = 0; b + batchSize <= Count; b += batchSize)
            yield return order[b..(b + batchSize)];
    }
}
