using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Evaluation;

/// <summary>
/// Exact t-SNE (van der Maaten and Hinton 2008) for a few thousand points, on tensors: Gaussian affinities with a
/// per-point bandwidth found by bisection to match the perplexity, Student-t similarities in 2-D, early
/// exaggeration, momentum and adaptive gains. O(n²) memory and time per iteration. Written here: no t-SNE library for
/// .NET is served on NuGet, and on tensors it runs where the features already are.
/// </summary>
public static class Tsne
{
    /// <param name="points">[n, d] float.</param>
    /// <returns>[n, 2] float on the CPU.</returns>
    public static Tensor Embed(Tensor points, int seed, double perplexity = 30, int iterations = 750)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var x = points.to_type(ScalarType.Float64).cpu();
        long n = x.shape[0];
        if (n < 4) throw new ArgumentException($"t-SNE needs at least 4 points, got {n}");
        perplexity = Math.Min(perplexity, (n - 1) / 3.0);
        var p = JointProbabilities(SquaredDistances(x), perplexity);

        using var generator = new Generator((ulong)seed);
        var y = randn(new[] { n, 2L }, dtype: ScalarType.Float64, generator: generator).mul_(Kept(1e-4));
        var velocity = zeros_like(y);
        var gains = ones_like(y);
        const int exaggerationSteps = 250;
        const double exaggeration = 12;
        double learningRate = Math.Max(n / exaggeration / 4, 50);
        var offDiagonal = OffDiagonal(n);
        for (int step = 0; step < iterations; step++)
        {
            using var stepScope = NewDisposeScope();
            var affinity = SquaredDistances(y).add_(Kept(1), Kept(1)).reciprocal_().mul_(offDiagonal);
            var q = affinity.div(affinity.sum()).clamp_min_(Kept(1e-12));
            var attraction = step < exaggerationSteps ? p.mul(Kept(exaggeration)) : p;
            var weights = attraction.sub(q).mul_(affinity);
            var gradient = y.mul(weights.sum(1, keepdim: true)).sub_(weights.matmul(y)).mul_(Kept(4));
            // Gains grow where the gradient keeps its direction against the velocity, shrink where it flips.
            var sameSign = gradient.sign().eq(velocity.sign());
            gains.copy_(where(sameSign, gains.mul(Kept(0.8)), gains.add(Kept(0.2), Kept(1))).clamp_min_(Kept(0.01)));
            double momentum = step < exaggerationSteps ? 0.5 : 0.8;
            velocity.mul_(Kept(momentum)).sub_(gains.mul(gradient).mul_(Kept(learningRate)));
            y.add_(velocity, Kept(1));
            y.sub_(y.mean(new long[] { 0 }, keepdim: true));
        }
        return y.to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    static Tensor OffDiagonal(long n) => ones(n, n, dtype: ScalarType.Float64).sub_(eye(n, dtype: ScalarType.Float64));

    static Tensor SquaredDistances(Tensor x)
    {
        var squares = x.pow(Kept(2)).sum(1, keepdim: true);
        return squares.add(squares.t(), Kept(1)).sub_(x.matmul(x.t()).mul_(Kept(2))).clamp_min_(Kept(0));
    }

    /// <summary>Symmetrised P: each row's Gaussian bandwidth bisected (all rows at once) until its entropy is log(perplexity).</summary>
    static Tensor JointProbabilities(Tensor distances, double perplexity)
    {
        long n = distances.shape[0];
        var target = Math.Log(perplexity);
        var low = zeros(n, 1, dtype: ScalarType.Float64);
        var high = full(n, 1, Kept(double.PositiveInfinity), dtype: ScalarType.Float64);
        var beta = ones(n, 1, dtype: ScalarType.Float64).div_(distances.mean());
        var notSelf = OffDiagonal(n);
        // Distances above each row's smallest off-diagonal one, so exp never underflows to all zeros.
        var shifted = distances.add(eye(n, dtype: ScalarType.Float64).mul_(Kept(1e300)), Kept(1));
        var excess = shifted.sub(shifted.amin(new long[] { 1 }, keepdim: true)).mul_(notSelf);
        var conditional = zeros_like(distances);
        for (int iteration = 0; iteration < 64; iteration++)
        {
            using var iterationScope = NewDisposeScope();
            var kernel = excess.mul(beta).neg_().exp_().mul_(notSelf);
            var sum = kernel.sum(1, keepdim: true);
            conditional.copy_(kernel.div_(sum));
            // Entropy H = log Σ + β·E[d − d_min].
            var entropy = sum.log().add(beta.mul(conditional.mul(excess).sum(1, keepdim: true)), Kept(1));
            var tooFlat = entropy.gt(Kept(target));
            low.copy_(where(tooFlat, beta, low));
            high.copy_(where(tooFlat, high, beta));
            beta.copy_(where(high.isinf(), beta.mul(Kept(2)), low.add(high, Kept(1)).div(Kept(2))));
        }
        return conditional.add(conditional.t(), Kept(1)).div_(Kept(2 * n)).clamp_min_(Kept(1e-12));
    }
}
