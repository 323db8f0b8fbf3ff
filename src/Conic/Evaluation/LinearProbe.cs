using Conic.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Conic.Runtime.KeptScalars;

namespace Conic.Evaluation;

/// <summary>Settings of the linear probe (a softmax classifier on frozen, standardised features).</summary>
public sealed record LinearProbeOptions
{
    /// <summary>Passes over the training features (more on small sets, see <see cref="MinimumSteps"/>).</summary>
    public int Epochs { get; init; } = 30;
    /// <summary>Small datasets get more epochs, so that the probe always takes at least this many steps.</summary>
    public int MinimumSteps { get; init; } = 2000;
    /// <summary>Features per Adam step.</summary>
    public int BatchSize { get; init; } = 256;
    /// <summary>Adam's learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Weight decay of the classifier.</summary>
    public double WeightDecay { get; init; } = 1e-5;
    /// <summary>Seed of the batch order (the weights start at zero).</summary>
    public int Seed { get; init; }
}

/// <summary>
/// Linear evaluation: a linear layer trained with labels on frozen backbone features of the train split (Adam,
/// cosine schedule), top-1 measured on the test split. Features are standardised with train statistics first.
/// </summary>
public static class LinearProbe
{
    /// <summary>Top-1 accuracy on the test features of a linear classifier trained on the standardised training features.</summary>
    public static double Accuracy(Tensor trainFeatures, Tensor trainLabels, Tensor testFeatures, Tensor testLabels,
                                  int classCount, LinearProbeOptions options)
    {
        using var scope = NewDisposeScope();
        var mean = trainFeatures.mean(new long[] { 0 }, keepdim: true);
        var std = trainFeatures.std(0, keepdim: true).clamp_min(Kept(1e-6));
        var train = trainFeatures.sub(mean).div(std);
        var test = testFeatures.sub(mean).div(std);

        var generator = new Generator((ulong)options.Seed);
        var classifier = nn.Linear(train.shape[1], classCount);
        // Start from zero, not from the global random state: that state depends on what ran before (a time-budgeted
        // training takes a varying number of steps), and the same features must always give the same accuracy.
        using (no_grad())
        {
            classifier.weight!.zero_();
            classifier.bias!.zero_();
        }
        using var optimizer = new Adam(classifier.parameters(), options.WeightDecay);
        long count = train.shape[0];
        long stepsPerEpoch = (count + options.BatchSize - 1) / options.BatchSize;
        long epochs = Math.Max(options.Epochs, (options.MinimumSteps + stepsPerEpoch - 1) / stepsPerEpoch);
        long totalSteps = stepsPerEpoch * epochs, step = 0;
        for (long epoch = 0; epoch < epochs; epoch++)
        {
            var order = randperm(count, generator: generator);
            for (long start = 0; start < count; start += options.BatchSize)
            {
                using var stepScope = NewDisposeScope();
                var batch = order.slice(0, start, Math.Min(start + options.BatchSize, count), 1);
                optimizer.ZeroGrad();
                F.cross_entropy(classifier.call(train[batch]), trainLabels[batch]).backward();
                optimizer.Step(options.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / totalSteps)));
                step++;
            }
        }
        using var noGrad = no_grad();
        return classifier.call(test).argmax(1).eq(testLabels).to_type(ScalarType.Float32).mean().item<float>();
    }
}
