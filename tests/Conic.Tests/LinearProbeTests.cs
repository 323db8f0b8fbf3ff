using Conic.Evaluation;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class LinearProbeTests
{
    /// <summary>Four Gaussian classes in 8-D; <paramref name="spread"/> against centres of scale 3 sets the overlap.</summary>
    static (Tensor Features, Tensor Labels) Blobs(Tensor centres, int count, double spread)
    {
        var labels = arange(Kept(0), Kept(count), Kept(1), dtype: ScalarType.Int64).remainder(Kept(4));
        return (centres.index_select(0, labels).add(randn(count, 8), Kept(spread)), labels);
    }

    [Fact]
    public void TheProbeLearnsSeparableClasses()
    {
        manual_seed(0);
        var centres = randn(4, 8).mul(Kept(3));
        var (train, trainLabels) = Blobs(centres, 400, 0.5);
        var (test, testLabels) = Blobs(centres, 200, 0.5);

        double accuracy = LinearProbe.Accuracy(train, trainLabels, test, testLabels, 4, new LinearProbeOptions());
        Assert.True(accuracy >= 0.95, $"accuracy {accuracy:P1} on separable classes (chance 25 %)");
    }

    [Fact]
    public void TheSameFeaturesGiveTheSameAccuracyWhateverRanBefore()
    {
        manual_seed(0);
        var centres = randn(4, 8).mul(Kept(3));
        var (train, trainLabels) = Blobs(centres, 400, 4);
        var (test, testLabels) = Blobs(centres, 400, 4);
        // A few steps only, so that a random starting point would still show in the predictions.
        var options = new LinearProbeOptions { Epochs = 1, MinimumSteps = 2, Seed = 3 };

        manual_seed(1);
        double first = LinearProbe.Accuracy(train, trainLabels, test, testLabels, 4, options);
        manual_seed(2);
        double second = LinearProbe.Accuracy(train, trainLabels, test, testLabels, 4, options);
        Assert.Equal(first, second);
        Assert.InRange(first, 0.3, 0.95);
    }
}
