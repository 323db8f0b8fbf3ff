using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Losses;

/// <summary>VICReg's three terms (Bardes, Ponce and LeCun 2022), unweighted. Pure functions: no state, no parameters of their own.</summary>
public static class VicregLosses
{
    /// <summary>
    /// The three unweighted terms for embeddings of two views [B, D]: mean squared difference; the mean hinge
    /// max(0, 1 − std) per dimension (std from the unbiased variance + 1e-4), averaged over the views; and the squared
    /// off-diagonal entries of each view's covariance matrix, summed and divided by D, added over the views.
    /// </summary>
    public static (Tensor Invariance, Tensor Variance, Tensor Covariance) Terms(Tensor first, Tensor second)
    {
        var invariance = F.mse_loss(first, second);
        var variance = StandardDeviationHinge(first).add(StandardDeviationHinge(second), Kept(1)).div(Kept(2));
        var covariance = OffDiagonalCovariance(first).add(OffDiagonalCovariance(second), Kept(1));
        return (invariance, variance, covariance);
    }

    static Tensor StandardDeviationHinge(Tensor z) => F.relu(sqrt(z.var(0).add(Kept(1e-4), Kept(1))).neg().add(Kept(1), Kept(1))).mean();

    static Tensor OffDiagonalCovariance(Tensor z)
    {
        long count = z.shape[0], dims = z.shape[1];
        var centred = z.sub(z.mean([0], keepdim: true));
        var covariance = centred.t().matmul(centred).div(Kept(count - 1));
        return covariance.pow(Kept(2)).sum().sub(covariance.diagonal().pow(Kept(2)).sum()).div(Kept(dims));
    }
}
