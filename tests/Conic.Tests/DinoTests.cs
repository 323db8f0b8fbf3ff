using Conic.Distributed;
using Conic.Losses;
using Conic.Methods;
using Conic.Models;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class DinoTests
{
    [Fact]
    public void TheLossIsTheCrossEntropyOfEachTeacherViewWithTheOtherStudentViews()
    {
        // One image, K = 2, τ = 1, no centre. Teacher logits (1, 0) and (0, 1): targets (σ, 1 − σ) and (1 − σ, σ) with
        // σ = e / (e + 1). Student logits (0, 0) and (ln 3, 0): distributions (1/2, 1/2) and (3/4, 1/4).
        double sigma = Math.E / (Math.E + 1);
        var targets = DinoLosses.TeacherTargets(tensor(new float[] { 1, 0, 0, 1 }, 2, 2), zeros(1, 2), 1).chunk(2, 0);
        Assert.Equal(sigma, targets[0][0, 0].item<float>(), 6);
        var student = new[] { tensor(new float[] { 0, 0 }, 1, 2), tensor(new float[] { (float)Math.Log(3), 0 }, 1, 2) };
        // Pairs (teacher 1, student 2) and (teacher 2, student 1); a view never meets its own.
        double firstWithSecond = -(sigma * Math.Log(0.75) + (1 - sigma) * Math.Log(0.25));
        double secondWithFirst = Math.Log(2);
        Assert.Equal((firstWithSecond + secondWithFirst) / 2, DinoLosses.CrossViewEntropy(targets, student, 1).item<float>(), 5);

        // A small crop (a third student view, uniform) pairs with both teacher views: 4 terms.
        var withCrop = student.Append(tensor(new float[] { 5, 5 }, 1, 2)).ToArray();
        Assert.Equal((firstWithSecond + secondWithFirst + 2 * Math.Log(2)) / 4, DinoLosses.CrossViewEntropy(targets, withCrop, 1).item<float>(), 5);

        // The student's temperature divides its logits: at τ_s = 0.5, (ln 3, 0) becomes (ln 9, 0), i.e. (9/10, 1/10).
        double sharpened = -(sigma * Math.Log(0.9) + (1 - sigma) * Math.Log(0.1));
        Assert.Equal((sharpened + secondWithFirst) / 2, DinoLosses.CrossViewEntropy(targets, student, 0.5).item<float>(), 5);
    }

    [Fact]
    public void TheCentreIsSubtractedAndMovesTowardsTheBatchMean()
    {
        // (2, 0) centred by (1, 1) and sharpened by τ = 0.5: (2, −2), so softmax gives 1 / (1 + e^−4) to the first output.
        var center = tensor(new float[] { 1, 1 }, 1, 2);
        Assert.Equal(1 / (1 + Math.Exp(-4)), DinoLosses.TeacherTargets(tensor(new float[] { 2, 0 }, 1, 2), center, 0.5)[0, 0].item<float>(), 6);
        // Batch mean of (2, 0) and (0, 4) is (1, 2); with momentum 0.9: 0.9 (1, 1) + 0.1 (1, 2) = (1, 1.1).
        DinoLosses.UpdateCenter(center, tensor(new float[] { 2, 0, 0, 4 }, 2, 2), 0.9, ProcessGroup.Single);
        Assert.Equal(new[] { 1f, 1.1f }, center.flatten().data<float>().ToArray().Select(v => MathF.Round(v, 5)));
        // The teacher's temperature rises linearly over its warm-up, then stays.
        Assert.Equal(0.055, DinoLosses.TeacherTemperature(0.04, 0.07, 0.1, 0.05), 10);
        Assert.Equal(0.07, DinoLosses.TeacherTemperature(0.04, 0.07, 0.1, 0.2), 10);
    }

    [Fact]
    public void OnAFixedBatchWithTheCentreHeldTheStudentApproachesTheTeacher()
    {
        manual_seed(1);
        using var method = new DinoMethod(new ResNet(new BackboneOptions { Width = 4 }), new DinoOptions { CenterMomentum = 0.99999 }, epochs: 2);
        var batch = new TrainingBatch([randn(8, 1, 12, 12), randn(8, 1, 12, 12)], arange(Kept(0), Kept(8), Kept(1), dtype: ScalarType.Int64), 0.75, new Generator(0));
        var losses = MethodSteps.Train(method, batch, 8);
        Assert.True(losses.Zip(losses.Skip(1)).All(pair => pair.Second < pair.First), $"losses: {string.Join(", ", losses)}");
    }

    [Fact]
    public void TheLastLayerStaysFixedInItsFirstEpochAndTheTeacherGetsNoGradient()
    {
        manual_seed(3);
        using var method = new DinoMethod(new ResNet(new BackboneOptions { Width = 4 }), new DinoOptions { Prototypes = 16, BottleneckDim = 8 }, epochs: 4);
        var views = new[] { randn(6, 1, 12, 12), randn(6, 1, 12, 12) };
        var parameters = method.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (double progress in new[] { 0.1, 0.5 })
        {
            foreach (var parameter in parameters.Values) parameter.grad?.zero_();
            var loss = method.TrainingStep(new TrainingBatch(views, arange(Kept(0), Kept(6), Kept(1), dtype: ScalarType.Int64), progress, new Generator(0)));
            loss.Total.backward();
            var lastLayer = parameters["head.last_layer"].grad;
            // Epoch 1 of 4 ends at progress 0.25.
            Assert.Equal(progress >= 0.25, lastLayer is not null && lastLayer.abs().sum().item<float>() > 0);
            Assert.True(parameters["head.mlp.0.weight"].grad!.abs().sum().item<float>() > 0);
        }
        Assert.All(parameters.Where(p => p.Key.StartsWith("teacher.", StringComparison.Ordinal)), p => Assert.Null(p.Value.grad));
    }
}
