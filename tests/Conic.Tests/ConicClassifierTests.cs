using Conic.Methods;
using Conic.Models;
using Conic.Training;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

/// <summary>ConIC's classifier: sampled negatives, the update of the rows a step does not use, rows started from embeddings.</summary>
public class ConicClassifierTests
{
    [Fact]
    public void ARowStartsAsItsImagesEmbeddingTheFirstTimeOnly()
    {
        manual_seed(8);
        var options = new ConicOptions { RowsFromFirstEmbedding = true };
        using var method = new ConicMethod(new ResNet(new BackboneOptions { Width = 4 }), 30, options);
        method.eval();  // running BatchNorm statistics: the embeddings below are the ones the step saw
        var views = new[] { randn(3, 1, 16, 16), randn(3, 1, 16, 16) };
        var own = tensor(new long[] { 2, 11, 29 });
        var untouched = method.state_dict()["classifier"].clone();
        using var generator = new Generator(1);
        method.TrainingStep(new TrainingBatch(views, own, 0, generator));

        var classifier = method.state_dict()["classifier"];
        using (no_grad())
        {
            var unit = nn.functional.normalize(method.Projector.call(method.Backbone.call(cat(views, 0))), dim: 1);
            var expected = nn.functional.normalize(unit[..3].add(unit[3..], Kept(1)), dim: 1).mul(Kept(0.01 * Math.Sqrt(128)));
            Assert.True(allclose(classifier.index_select(0, own), expected, rtol: 1e-4, atol: 1e-6), "rows are not the images' embeddings");
        }
        var others = tensor(Enumerable.Range(0, 30).Where(i => i is not (2 or 11 or 29)).Select(i => (long)i).ToArray());
        Assert.True(classifier.index_select(0, others).equal(untouched.index_select(0, others)).all().item<bool>(), "rows of unseen images changed");
        // Seen once, a row is the classifier's: a second step leaves it to the optimiser.
        var started = classifier.clone();
        method.TrainingStep(new TrainingBatch(new[] { randn(3, 1, 16, 16), randn(3, 1, 16, 16) }, own, 0, generator));
        Assert.True(method.state_dict()["classifier"].equal(started).all().item<bool>());
    }

    [Fact]
    public void LazyRowUpdateEqualsDenseMomentumSgdWithZeroGradientsForSkippedRows()
    {
        manual_seed(3);
        const double rate = 0.1, beta = 0.9;
        var dense = randn(6, 3);
        var lazy = dense.clone();
        var denseMomentum = zeros(6, 3);
        var lazyMomentum = zeros(6, 3);
        var lastStep = full(6, Kept(-1L), dtype: ScalarType.Int64);
        // Rows used per step; the last step uses every row so that all of them can be compared.
        long[][] used = [[0, 1, 2], [3], [0, 4], [1], [5, 2], [0, 1, 2, 3, 4, 5]];
        for (int step = 0; step < used.Length; step++)
        {
            var rows = tensor(used[step]);
            var gradient = randn(used[step].Length, 3);
            var full = zeros(6, 3).index_copy_(0, rows, gradient);
            denseMomentum.mul_(Kept(beta)).add_(full, Kept(1));
            dense.add_(denseMomentum, alpha: Kept(-rate));
            LazyRowUpdate.Apply(lazy, lazyMomentum, lastStep, rows, gradient, step, rate, beta, weightDecay: 0);
        }
        Assert.True(allclose(lazy, dense, rtol: 1e-5, atol: 1e-6), "weights differ from dense momentum SGD");
        Assert.True(allclose(lazyMomentum, denseMomentum, rtol: 1e-5, atol: 1e-6), "momentum differs from dense momentum SGD");
    }

    [Fact]
    public void WithEveryOtherInstanceDrawnTheSampledHeadTrainsExactlyAsTheFullSoftmax()
    {
        const int instances = 40;
        (Tensor Classifier, Tensor Conv, float[] Losses) Train(int negatives)
        {
            manual_seed(11);
            using var method = new ConicMethod(new ResNet(new BackboneOptions { Width = 4 }), instances, new ConicOptions { Negatives = negatives });
            using var optimizer = new MomentumSgd(method.ParameterGroups(5e-4), momentum: 0.9);
            var losses = new List<float>();
            using var generator = new Generator(2);
            for (int step = 0; step < 3; step++)
            {
                using var scope = NewDisposeScope();
                manual_seed(100 + step);
                var views = new[] { randn(8, 1, 16, 16), randn(8, 1, 16, 16) };
                var indices = randperm(instances)[..8];
                losses.Add(Trainer.Step(method, optimizer, new TrainingBatch(views, indices, step / 3.0, generator), 0.05).Total.item<float>());
            }
            var state = method.state_dict();
            if (negatives > 0) Assert.Contains("classifier_momentum", state.Keys);  // saved with checkpoints: resumes are exact
            return (state["classifier"].clone(), state.First(kv => kv.Key.EndsWith("conv1.weight")).Value.clone(), losses.ToArray());
        }
        var exact = Train(negatives: 0);
        var sampled = Train(negatives: instances);
        Assert.Equal(exact.Losses, sampled.Losses, (a, b) => Math.Abs(a - b) < 1e-4);
        TensorAssert.RelativelyClose(exact.Classifier, sampled.Classifier, "classifier");
        // Three steps through the whole backbone round more: 2e-6 of the largest weight here.
        TensorAssert.RelativelyClose(exact.Conv, sampled.Conv, "network", relative: 1e-4);
    }

    [Fact]
    public void SampledNegativesTouchOnlyTheBatchAndKOtherRows()
    {
        manual_seed(5);
        const int instances = 500, negatives = 16;
        using var method = new ConicMethod(new ResNet(new BackboneOptions { Width = 4 }), instances, new ConicOptions { Negatives = negatives });
        using var optimizer = new MomentumSgd(method.ParameterGroups(5e-4), momentum: 0.9);
        var before = method.state_dict()["classifier"].clone();
        using var generator = new Generator(2);
        var loss = Trainer.Step(method, optimizer, new TrainingBatch(new[] { randn(4, 1, 16, 16), randn(4, 1, 16, 16) }, tensor(new long[] { 3, 77, 150, 499 }), 0, generator), 0.05);
        Assert.True(float.IsFinite(loss.Total.item<float>()));
        var changed = method.state_dict()["classifier"].sub(before).abs().sum(1).gt(Kept(0));
        Assert.Equal(4 + negatives, changed.sum().item<long>());
        foreach (long own in new long[] { 3, 77, 150, 499 }) Assert.True(changed[own].item<bool>());
        Assert.Equal(4 + negatives, method.state_dict()["classifier_last_step"].eq(Kept(0)).sum().item<long>());
    }

    [Fact]
    public void SmallCropsTrainTheNetworkButNotTheClassifierRows()
    {
        (Tensor ClassifierGradient, Tensor ConvGradient, float Classification) Step(int smallCrops)
        {
            manual_seed(21);
            using var method = new ConicMethod(new ResNet(new BackboneOptions { Width = 4 }), 50, new ConicOptions { ConsistencyWeight = 0 });
            method.eval();
            var views = new List<Tensor> { randn(4, 1, 16, 16), randn(4, 1, 16, 16) };
            for (int i = 0; i < smallCrops; i++) views.Add(randn(4, 1, 8, 8));
            using var generator = new Generator(1);
            var loss = method.TrainingStep(new TrainingBatch(views, tensor(new long[] { 1, 7, 20, 49 }), 0, generator));
            loss.Total.backward();
            var parameters = method.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            return (parameters["classifier"].grad!.clone(), parameters.First(p => p.Key.EndsWith("conv1.weight")).Value.grad!.clone(),
                    loss.Terms[0].Value.item<float>());
        }
        var plain = Step(0);
        var multiCrop = Step(3);
        // The main views' share of the mean over 2 + 3 views is 2/5: the rows' gradient is theirs alone, scaled.
        Assert.True(allclose(multiCrop.ClassifierGradient.mul(Kept(5.0 / 2)), plain.ClassifierGradient, rtol: 1e-4, atol: 1e-7));
        Assert.False(allclose(multiCrop.ConvGradient.mul(Kept(5.0 / 2)), plain.ConvGradient, rtol: 1e-3, atol: 1e-6), "small crops must train the network");
        Assert.NotEqual(plain.Classification, multiCrop.Classification);
    }
}
