using Conic.Losses;
using Conic.Methods;
using Conic.Models;
using Conic.Training;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class BaselineTests
{
    [Fact]
    public void InfoNceMatchesHandComputedValue()
    {
        // Logits (q·k+, q·n) / T = (1, 0): log(1 + e^-1) = 0.3132617.
        var loss = ContrastiveLosses.InfoNce(tensor(new float[] { 2, 0 }, 1, 2), tensor(new float[] { 1, 0 }, 1, 2),
                                             tensor(new float[] { 0, 3 }, 1, 2), temperature: 1.0);
        Assert.Equal(0.3132617, loss.item<float>(), 5);
    }

    [Fact]
    public void NtXentMatchesHandComputedValue()
    {
        // Two images, identical views (1,0) and (0,1): each view sees its positive at 1 and two others at 0 (itself
        // excluded): -1 + log(e + 2) = 0.5514447.
        var views = tensor(new float[] { 1, 0, 0, 1 }, 2, 2);
        Assert.Equal(0.5514447, ContrastiveLosses.NtXent(views, views.clone(), temperature: 1.0).item<float>(), 5);
    }

    [Fact]
    public void NormalizedMseIsTwoMinusTwoCosine()
    {
        var predictions = tensor(new float[] { 1, 0, 1, 1 }, 2, 2);
        var targets = tensor(new float[] { 0, 1, 2, 2 }, 2, 2);
        Assert.Equal(1.0, ContrastiveLosses.NormalizedMse(predictions, targets).item<float>(), 5); // (2 + 0) / 2
    }

    [Fact]
    public void SwappedPredictionIsCrossEntropyOfCodesAndScores()
    {
        var loss = ContrastiveLosses.SwappedPrediction(tensor(new float[] { 1, 0 }, 1, 2), tensor(new float[] { 0, 0 }, 1, 2), 1.0);
        Assert.Equal(Math.Log(2), loss.item<float>(), 5);
    }

    [Fact]
    public void SinkhornCodesSumToOnePerSampleAndShareThePrototypesEqually()
    {
        manual_seed(0);
        var scores = randn(6, 3);
        var codes = ContrastiveLosses.SinkhornKnopp(scores, epsilon: 0.5, iterations: 3);
        Assert.True(allclose(codes.sum(1), ones(6), atol: 1e-5));
        var converged = ContrastiveLosses.SinkhornKnopp(scores, epsilon: 0.5, iterations: 100);
        Assert.True(allclose(converged.sum(dim: 0), tensor(new float[] { 2, 2, 2 }), atol: 1e-3)); // B / K = 6 / 3
        Assert.True((codes >= Kept(0)).all().item<bool>());
    }

    [Fact]
    public void MemoryBankMovesHalfwayTowardsTheMeanFeatureAndStaysNormalised()
    {
        using var method = new InstDiscMethod(new ResNet(new BackboneOptions { Width = 4 }), 5, new InstDiscOptions { EmbeddingDim = 2 });
        method.Memory.copy_(tensor(new float[] { 1, 0, 1, 0, 1, 0, 1, 0, 1, 0 }, 5, 2));
        var indices = tensor(new long[] { 3 });
        // Views of image 3: (0,1) and (0,1); 0.5·(1,0) + 0.5·(0,1) normalised = (0.7071, 0.7071).
        var memorised = tensor(new float[] { 0, 1, 0, 1 }, 2, 2);
        var batch = new TrainingBatch(Array.Empty<Tensor>(), indices, 0, new Generator(0));
        method.AfterOptimizerStep(batch, new MethodLoss(zeros(1), [], memorised));
        Assert.True(allclose(method.Memory[3], tensor(new float[] { 0.70710678f, 0.70710678f }), atol: 1e-6));
        Assert.True(allclose(method.Memory[2], tensor(new float[] { 1, 0 })));
    }

    [Fact]
    public void QueueReplacesItsOldestKeysAndWrapsAround()
    {
        using var method = new MocoMethod(new ResNet(new BackboneOptions { Width = 4 }), 8, new MocoOptions { EmbeddingDim = 1 }, version2: true);
        method.Enqueue(tensor(new float[] { 1, 2, 3 }, 3, 1));
        method.Enqueue(tensor(new float[] { 4, 5, 6 }, 3, 1));
        // Slots 0..3 received 1,2,3 then 4 (slot 3), 5 (slot 0), 6 (slot 1).
        Assert.Equal(new float[] { 5, 6, 3, 4 }, method.Queue.flatten().data<float>().ToArray());
    }

    public static TheoryData<string> Methods => new(MethodRegistry.Names);

    [Theory]
    [MemberData(nameof(Methods))]
    public void EveryMethodTrainsATinyBatch(string name)
    {
        // MoCo's loss rises on a fixed batch: its queue starts as random vectors and fills with real, similar keys.
        // DINO's too: its centre moves (momentum 0.9) to the batch's mean logits and flattens the targets
        // (DinoTests checks that the student approaches the teacher with the centre held).
        bool lossMustFall = !name.StartsWith("moco", StringComparison.Ordinal) && name != "dino";
        manual_seed(1);
        var definition = MethodRegistry.Get(name);
        // The supervised reference learns the class count from its data; four classes here.
        var settings = definition.Defaults is SupervisedOptions supervised ? supervised with { Classes = 4 } : definition.Defaults;
        using var method = definition.Create(new ResNet(new BackboneOptions { Width = 4 }), 16, epochs: 2, settings);
        var views = new[] { randn(8, 1, 12, 12), randn(8, 1, 12, 12), randn(8, 1, 6, 6) };
        var batch = new TrainingBatch(method.UsesSmallCrops ? views : views[..2], arange(Kept(0), Kept(8), Kept(1), dtype: ScalarType.Int64), 0.75, new Generator(0),
                                      Labels: method.NeedsLabels ? arange(Kept(0), Kept(8), Kept(1), dtype: ScalarType.Int64).remainder(Kept(4)) : null);
        var stateBefore = method.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var losses = MethodSteps.Train(method, batch, 8);
        Assert.All(losses, l => Assert.True(float.IsFinite(l)));
        if (lossMustFall) Assert.True(losses[^1] < losses[0], $"{name}: loss went from {losses[0]} to {losses[^1]}");
        // Every parameter and buffer that should move did (momentum copies, banks and queues included).
        // (Integer buffers are counters: BatchNorm's batch count, the queue pointer, which may wrap back to 0.)
        var frozen = method.state_dict().Where(kv => kv.Value.dtype != ScalarType.Int64 && kv.Value.eq(stateBefore[kv.Key]).all().item<bool>())
                           .Select(kv => kv.Key).ToList();
        Assert.Empty(frozen);
    }
}
