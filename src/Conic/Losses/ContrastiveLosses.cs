using Conic.Distributed;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Losses;

/// <summary>
/// The losses of the systems ConIC is compared with. Pure functions; every input is L2-normalised inside, so
/// callers may pass raw embeddings.
/// </summary>
public static class ContrastiveLosses
{
    /// <summary>
    /// InfoNCE with one positive and shared negatives (MoCo, He et al. 2019): cross-entropy of
    /// [q·k₊, q·n₁, …, q·n_K] / T with the positive as the target.
    /// </summary>
    /// <param name="queries">[B, D]</param>
    /// <param name="positiveKeys">[B, D], the positive of each query.</param>
    /// <param name="negatives">[K, D], shared by all queries (a queue or a memory bank sample).</param>
    /// <returns>Scalar: mean over the B queries.</returns>
    public static Tensor InfoNce(Tensor queries, Tensor positiveKeys, Tensor negatives, double temperature)
    {
        using var scope = NewDisposeScope();
        var q = F.normalize(queries, dim: 1);
        var positive = q.mul(F.normalize(positiveKeys, dim: 1)).sum(1, keepdim: true);
        var negative = q.matmul(F.normalize(negatives, dim: 1).t());
        var logits = cat(new[] { positive, negative }, 1).div_(Kept(temperature));
        var targets = zeros(queries.shape[0], dtype: ScalarType.Int64, device: queries.device);
        return F.cross_entropy(logits, targets).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// NT-Xent (SimCLR, Chen et al. 2020): the 2B views of a batch; each view's positive is the other view of its
    /// image, its negatives the other 2B − 2 views; cosine similarity / T, cross-entropy averaged over the 2B views.
    /// </summary>
    /// <param name="view1">[B, D]</param>
    /// <param name="view2">[B, D]</param>
    public static Tensor NtXent(Tensor view1, Tensor view2, double temperature)
    {
        using var scope = NewDisposeScope();
        long batch = view1.shape[0];
        var z = F.normalize(cat(new[] { view1, view2 }, 0), dim: 1);
        var similarity = z.matmul(z.t()).div_(Kept(temperature));
        // A view is never its own negative: its self-similarity is removed from the softmax.
        similarity = similarity.masked_fill(eye(2 * batch, dtype: ScalarType.Bool, device: z.device), Kept(double.NegativeInfinity));
        var targets = cat(new[] { arange(Kept(batch), Kept(2 * batch), Kept(1)), arange(Kept(0), Kept(batch), Kept(1)) }, 0).to(z.device);
        return F.cross_entropy(similarity, targets).MoveToOuterDisposeScope();
    }

    /// <summary>BYOL's regression loss (Grill et al. 2020): 2 − 2 cos(p, t), averaged over the batch. [B, D], [B, D].</summary>
    public static Tensor NormalizedMse(Tensor predictions, Tensor targets)
    {
        using var scope = NewDisposeScope();
        var cosine = F.normalize(predictions, dim: 1).mul(F.normalize(targets, dim: 1)).sum(1);
        return cosine.mul(Kept(-2)).add_(Kept(2), Kept(1)).mean().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// SwAV's equal-partition codes (Caron et al. 2020): Sinkhorn-Knopp on exp(scores / ε) so that every prototype
    /// gets the same share of the batch. Rows of the result sum to 1 (one code per sample); columns to B / K.
    /// </summary>
    /// <param name="scores">[B, K] prototype scores (no gradient flows through the codes).</param>
    /// <param name="processes">In a data-parallel run, this rank's B rows are part of the global batch, over which
    /// the prototypes' shares are balanced (sums over the batch become sums over all ranks).</param>
    public static Tensor SinkhornKnopp(Tensor scores, double epsilon = 0.05, int iterations = 3, ProcessGroup? processes = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        processes ??= ProcessGroup.Single;
        Tensor SumOverBatch(Tensor local) { processes.AllReduce(local); return local; }
        long batch = scores.shape[0] * processes.Size, prototypes = scores.shape[1];
        // Subtracting the max keeps exp finite; Sinkhorn's normalisations cancel the constant (the same on every rank).
        var maximum = Collectives.MaximumAcross(processes, scores.max());
        var q = scores.div(Kept(epsilon)).sub(maximum.div(Kept(epsilon))).exp_().t(); // [K, B]
        q = q.div_(SumOverBatch(q.sum()));
        for (int i = 0; i < iterations; i++)
        {
            q = q.div_(SumOverBatch(q.sum(1, keepdim: true))).div_(Kept(prototypes));
            q = q.div_(q.sum(0, keepdim: true)).div_(Kept(batch));
        }
        return q.mul_(Kept(batch)).t().contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// SwAV's swapped prediction for one (code, view) pair: cross-entropy between the codes of one view and the
    /// softmax of another view's prototype scores / T, averaged over the batch. [B, K], [B, K].
    /// </summary>
    public static Tensor SwappedPrediction(Tensor codes, Tensor scores, double temperature)
    {
        using var scope = NewDisposeScope();
        return codes.mul(F.log_softmax(scores.div(Kept(temperature)), dim: 1)).sum(1).mean().neg().MoveToOuterDisposeScope();
    }
}
