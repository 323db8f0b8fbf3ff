using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Losses;

/// <summary>
/// The two terms of ConIC (Meng et al., "Consistent Instance Classification for Unsupervised Representation
/// Learning"): every training image is its own class of a learned classifier, and the two views of an image are
/// pulled together. Pure functions: no state, no parameters of their own.
/// </summary>
public static class ConicLosses
{
    /// <summary>
    /// Instance classification: softmax cross-entropy of cos(z, w_i) / temperature over all N classes, where class i
    /// is training image i. Both the embeddings and the classifier rows are L2-normalised here. Computed over chunks
    /// of classes (<see cref="ChunkedInstanceClassification"/>), so memory grows with the chunk, not with N.
    /// </summary>
    /// <param name="embeddings">[V, D], any norm (V = views in the batch).</param>
    /// <param name="classWeights">[N, D], the learned classifier, one row per training image.</param>
    /// <param name="targets">[V] int64, the image index of each view.</param>
    /// <param name="chunkSize">Classes per chunk; 0 chooses <see cref="AutomaticChunkSize"/>.</param>
    /// <returns>Scalar: mean over the V views.</returns>
    public static Tensor InstanceClassification(Tensor embeddings, Tensor classWeights, Tensor targets, double temperature, long chunkSize = 0)
    {
        using var scope = NewDisposeScope();
        long chunk = chunkSize > 0 ? chunkSize : AutomaticChunkSize(embeddings.shape[0]);
        return ChunkedInstanceClassification.apply(F.normalize(embeddings, dim: 1), classWeights, targets, temperature, chunk)
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Classes per chunk for V views: a [V, chunk] block of about <see cref="ChunkLogits"/> floats, which stays in the
    /// CPU's cache between the matrix product that makes it and the softmax that reads it (bench/, docs/performance).
    /// </summary>
    public static long AutomaticChunkSize(long views) => Math.Max(64, ChunkLogits / Math.Max(1, views));

    /// <summary>Floats in one chunk of logits (2 MB): small enough to stay in the CPU's cache.</summary>
    public const long ChunkLogits = 1L << 19;

    /// <summary>
    /// The same loss computed the straightforward way, through the full [V, N] logits matrix: the reference the
    /// chunked computation is tested and benchmarked against.
    /// </summary>
    public static Tensor InstanceClassificationMaterialized(Tensor embeddings, Tensor classWeights, Tensor targets, double temperature)
    {
        using var scope = NewDisposeScope();
        var logits = F.normalize(embeddings, dim: 1).matmul(F.normalize(classWeights, dim: 1).t()).div_(Kept(temperature));
        return F.cross_entropy(logits, targets).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Instance classification with sampled negatives (a sampled softmax): each view is classified among the batch's
    /// own rows (always present) and K rows drawn uniformly from the other instances, whose logits are raised by
    /// log(others / K) so that they stand for all the others in the softmax's normaliser (Bengio and Senécal 2008).
    /// With every other instance drawn the offset is 0 and this is the full softmax.
    /// </summary>
    /// <param name="embeddings">[V, D], any norm.</param>
    /// <param name="rows">[B + K, D]: the batch's B classifier rows first, then the K sampled ones.</param>
    /// <param name="targets">[V] int64 in 0..B-1, the position of each view's row.</param>
    /// <param name="batchRows">B.</param>
    /// <param name="negativeLogOffset">log(others / K), added to the sampled rows' logits.</param>
    public static Tensor SampledInstanceClassification(Tensor embeddings, Tensor rows, Tensor targets, double temperature, long batchRows,
                                                       double negativeLogOffset)
    {
        using var scope = NewDisposeScope();
        var logits = F.normalize(embeddings, dim: 1).matmul(F.normalize(rows, dim: 1).t()).div_(Kept(temperature));
        if (negativeLogOffset != 0 && rows.shape[0] > batchRows) logits[.., (int)batchRows..].add_(Kept(negativeLogOffset), Kept(1));
        return F.cross_entropy(logits, targets).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Consistency: squared Euclidean distance between the L2-normalised embeddings of two views of the same images,
    /// ‖ẑ₁ − ẑ₂‖² = 2 − 2 cos(z₁, z₂), averaged over the batch.
    /// </summary>
    /// <param name="view1">[B, D]</param>
    /// <param name="view2">[B, D], row i is another view of the image of row i of <paramref name="view1"/>.</param>
    /// <returns>Scalar in [0, 4].</returns>
    public static Tensor Consistency(Tensor view1, Tensor view2)
    {
        using var scope = NewDisposeScope();
        var difference = F.normalize(view1, dim: 1).sub(F.normalize(view2, dim: 1));
        return difference.pow(Kept(2)).sum(1).mean().MoveToOuterDisposeScope();
    }
}
