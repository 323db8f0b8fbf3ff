using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Methods;

/// <summary>
/// Momentum SGD on a matrix of which each step uses only some rows (an N-way classifier trained with sampled
/// negatives). Rows a step does not use are neither read nor written; when a row is used again, the steps it missed
/// are applied first, as dense momentum SGD would have applied them with a zero gradient: the row moves on by its
/// decaying momentum and the momentum shrinks by β per missed step. This is the correction of the weight update for
/// rows outside the batch that PIC (Cao et al. 2020) calls for; its public code does not include one, so this form is
/// ours. It is exact for a constant learning rate (the missed steps are charged at the current rate) and without
/// weight decay; with weight decay, decay reaches a row only on the steps that use it.
/// </summary>
public static class LazyRowUpdate
{
    /// <param name="weights">[N, D], updated in place on <paramref name="rows"/>.</param>
    /// <param name="momentum">[N, D] momentum buffer, updated in place.</param>
    /// <param name="lastStep">[N] int64: the step that last updated each row (-1: never), updated in place.</param>
    /// <param name="rows">[R] int64, distinct rows used at <paramref name="step"/>.</param>
    /// <param name="gradient">[R, D], the loss gradient of those rows.</param>
    public static void Apply(Tensor weights, Tensor momentum, Tensor lastStep, Tensor rows, Tensor gradient, long step,
                             double learningRate, double beta, double weightDecay)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var w = weights.index_select(0, rows);
        var m = momentum.index_select(0, rows);
        var missed = lastStep.index_select(0, rows).neg().add(Kept(step - 1), Kept(1)).clamp_min(Kept(0)).to_type(weights.dtype).unsqueeze(1);
        var betaToMissed = pow(tensor(beta, dtype: weights.dtype, device: weights.device), missed);
        // Σ_{j=1..k} β^j = β (1 − β^k) / (1 − β): how far the momentum alone would have carried the row.
        var carried = betaToMissed.neg().add(Kept(1), Kept(1)).mul(Kept(beta / (1 - beta)));  // β < 1: --classifier-momentum is checked
        w.sub_(m.mul(carried).mul(Kept(learningRate)));
        m.mul_(betaToMissed);
        var direction = weightDecay == 0 ? gradient : gradient.add(w, alpha: Kept(weightDecay));
        m.mul_(Kept(beta)).add_(direction, Kept(1));
        w.add_(m, alpha: Kept(-learningRate));
        weights.index_copy_(0, rows, w);
        momentum.index_copy_(0, rows, m);
        lastStep.index_fill_(0, rows, Kept(step));
    }
}
