using Conic.Distributed;
using Conic.Methods;
using Conic.Methods.InstanceClassifiers;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

/// <summary>ConIC's classifier strategies compute one loss: whole, sampled (every other row drawn) and sharded (one block).</summary>
public class InstanceClassifierTests
{
    const int Instances = 20, Dim = 8;

    static (float Loss, Tensor EmbeddingGradient, Tensor SmallCropLoss) Classify(Func<Parameter, InstanceClassifier> make)
    {
        manual_seed(7);
        using var rows = new Parameter(randn(Instances, Dim).mul_(Kept(0.1)));
        var embeddings = randn(12, Dim).requires_grad_(true);
        var images = tensor(new long[] { 3, 7, 11, 2, 19, 0 });
        var targets = cat(new[] { images, images }, 0);
        using var random = new Generator(1);
        var classifier = make(rows);
        var loss = classifier.Loss(embeddings, targets, new TrainingBatch([], images, Progress: 0.5, random));
        loss.backward();
        var smallCrops = classifier.SmallCropLoss(randn(12, Dim), targets, crops: 2);
        classifier.AfterOptimizerStep(0.1);
        return (loss.item<float>(), embeddings.grad!.clone(), smallCrops);
    }

    [Fact]
    public void WholeSampledAndShardedGiveTheSameLossAndGradients()
    {
        var options = new ConicOptions { Temperature = 0.1, Negatives = Instances };
        var exact = Classify(rows => new ExactClassifier(rows, options));
        var sharded = Classify(rows => new ShardedClassifier(rows, options, ProcessGroup.Single, RowShard.Of(Instances, ProcessGroup.Single)));
        // With every other row drawn the sampled softmax is the full one (no logit offset).
        var sampled = Classify(rows => new SampledClassifier(rows, options, zeros(Instances, Dim), full(Instances, Kept(-1L), dtype: ScalarType.Int64),
                                                             zeros(1, dtype: ScalarType.Int64)));
        foreach (var (name, other) in new[] { ("sharded", sharded), ("sampled", sampled) })
        {
            Assert.Equal(exact.Loss, other.Loss, 5);
            TensorAssert.RelativelyClose(exact.EmbeddingGradient, other.EmbeddingGradient, $"{name} embedding gradient");
            Assert.Equal(exact.SmallCropLoss.item<float>(), other.SmallCropLoss.item<float>(), 5);
        }
        Assert.True(exact.Loss > 0);
    }
}
