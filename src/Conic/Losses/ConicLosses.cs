using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

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
    /// is training image i. Both the embeddings and the classifier rows are L2-normalised here.
    /// </summary>
    /// <param name="embeddings">[V, D], any norm (V = views in the batch).</param>
    /// <param name="classWeights">[N, D], the learned classifier, one row per training image.</param>
    /// <param name="targets">[V] int64, the image index of each view.</param>
    /// <returns>Scalar: mean over the V views.</returns>
    public static Tensor InstanceClassification(Tensor embeddings, Tensor classWeights, Tensor targets, double temperature)
    {
        using var scope = NewDisposeScope();
        var logits = F.normalize(embeddings, dim: 1).matmul(F.normalize(classWeights, dim: 1).t()).div_(temperature);
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
        return difference.pow(2).sum(1).mean().MoveToOuterDisposeScope();
    }
}
