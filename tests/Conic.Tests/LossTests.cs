using Conic.Losses;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class LossTests
{
    [Fact]
    public void InstanceClassificationMatchesHandComputedValue()
    {
        // Rows are normalised inside: (2,0) -> (1,0), (0,3) -> (0,1), (-0.5,0) -> (-1,0); view (0,2) -> (0,1).
        var embeddings = tensor(new float[] { 1, 0, 0, 2 }, 2, 2);
        var weights = tensor(new float[] { 2, 0, 0, 3, -0.5f, 0 }, 3, 2);
        var targets = tensor(new long[] { 0, 1 });
        // View 1: logits (2, 0, -2), target 0: log(1 + e^-2 + e^-4) = 0.1429316.
        // View 2: logits (0, 2, 0), target 1: log(1 + 2e^-2) = 0.2395448. Mean: 0.1912382.
        double loss = ConicLosses.InstanceClassification(embeddings, weights, targets, temperature: 0.5).item<float>();
        Assert.Equal(0.1912382, loss, 5);
    }

    [Fact]
    public void InstanceClassificationMatchesSlowReferenceInValueAndGradient()
    {
        manual_seed(3);
        var embeddings = randn(5, 4).requires_grad_();
        var weights = randn(7, 4).requires_grad_();
        var targets = tensor(new long[] { 0, 3, 6, 3, 1 });
        const double temperature = 0.2;

        var loss = ConicLosses.InstanceClassification(embeddings, weights, targets, temperature);
        loss.backward();

        // Reference written from the formula, one view and one class at a time.
        var e2 = embeddings.detach().clone().requires_grad_();
        var w2 = weights.detach().clone().requires_grad_();
        Tensor total = zeros(1);
        for (int v = 0; v < 5; v++)
        {
            var z = e2[v] / e2[v].norm();
            var logits = new List<Tensor>();
            for (int c = 0; c < 7; c++) logits.Add((z * (w2[c] / w2[c].norm())).sum() / Kept(temperature));
            var stacked = stack(logits);
            total = total.sub(stacked[targets[v].item<long>()]).add(stacked.exp().sum().log(), Kept(1));
        }
        var reference = total / Kept(5);
        reference.backward();

        Assert.Equal(reference.item<float>(), loss.item<float>(), 5);
        Assert.True(allclose(embeddings.grad!, e2.grad!, rtol: 1e-5, atol: 1e-6));
        Assert.True(allclose(weights.grad!, w2.grad!, rtol: 1e-5, atol: 1e-6));
    }

    [Theory]
    [InlineData(0.07, 1L, ScalarType.Float64)]
    [InlineData(0.01, 50L, ScalarType.Float32)]
    [InlineData(0.1, 7L, ScalarType.Float64)]
    [InlineData(0.5, 64L, ScalarType.Float32)]
    [InlineData(1.0, 1000L, ScalarType.Float32)]
    [InlineData(0.2, 0L, ScalarType.Float32)]
    public void ChunkedInstanceClassificationEqualsTheMaterializedLogits(double temperature, long chunkSize, ScalarType dtype)
    {
        manual_seed(11);
        const int images = 24, classes = 203, dim = 16;
        var embeddings = randn(2 * images, dim, dtype: dtype).requires_grad_();
        var weights = randn(classes, dim, dtype: dtype).mul(Kept(0.05)).requires_grad_();
        // Both views of an image share its class, as in a ConIC batch.
        var imageClasses = randperm(classes)[..images];
        var targets = cat(new[] { imageClasses, imageClasses });

        var chunked = ConicLosses.InstanceClassification(embeddings, weights, targets, temperature, chunkSize);
        chunked.backward();
        var embeddingGrad = embeddings.grad!.clone();
        var weightGrad = weights.grad!.clone();
        embeddings.grad!.zero_();
        weights.grad!.zero_();
        var materialized = ConicLosses.InstanceClassificationMaterialized(embeddings, weights, targets, temperature);
        materialized.backward();

        double expected = materialized.to(ScalarType.Float64).item<double>();
        Assert.Equal(expected, chunked.to(ScalarType.Float64).item<double>(), 1e-5 * expected);
        TensorAssert.RelativelyClose(embeddings.grad!, embeddingGrad, "embedding gradient");
        TensorAssert.RelativelyClose(weights.grad!, weightGrad, "row gradient");
    }

    [Fact]
    public void ConsistencyIsSquaredDistanceOfNormalisedViews()
    {
        // (3,4) -> (0.6,0.8); (1,0): |(-0.4, 0.8)|^2 = 0.8 = 2 - 2 cos. Second pair identical directions: 0.
        var view1 = tensor(new float[] { 3, 4, 0, 5 }, 2, 2);
        var view2 = tensor(new float[] { 1, 0, 0, 0.1f }, 2, 2);
        Assert.Equal(0.4, ConicLosses.Consistency(view1, view2).item<float>(), 5);
    }

    [Fact]
    public void ConicLossFallsUnderGradientDescent()
    {
        manual_seed(0);
        var embeddings = randn(8, 16).requires_grad_();
        var weights = randn(8, 16).mul(Kept(0.01)).requires_grad_();
        var targets = arange(Kept(0), Kept(8), Kept(1), dtype: ScalarType.Int64);
        double first = 0, last = 0;
        for (int step = 0; step < 20; step++)
        {
            var loss = ConicLosses.InstanceClassification(embeddings, weights, targets, 0.1)
                .add(ConicLosses.Consistency(embeddings[..4], embeddings[4..]), Kept(1));
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
            embeddings.grad?.zero_();
            weights.grad?.zero_();
            loss.backward();
            using (no_grad())
            {
                embeddings.sub_(embeddings.grad!.mul(Kept(0.5)));
                weights.sub_(weights.grad!.mul(Kept(0.5)));
            }
        }
        Assert.True(last < first * 0.5, $"loss went from {first} to {last}");
    }
}
