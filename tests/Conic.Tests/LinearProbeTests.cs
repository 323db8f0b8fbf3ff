using Conic.Evaluation;
using static TorchSharp.torch;
using static Conic.Runtime.KeptScalars;

namespace Conic.Tests;

public class LinearProbeTests
{
    /// <summary>
    /// Four Gaussian classes in 8-D, 400 train and 400 test points; <paramref name="spread"/> against centres of scale 3
    /// sets the overlap.
    /// </summary>
    static (Tensor Train, Tensor TrainLabels, Tensor Test, Tensor TestLabels) Blobs(double spread)
    {
        manual_seed(0);
        var centres = randn(4, 8).mul(Kept(3));
        var labels = arange(Kept(0), Kept(400), Kept(1), dtype: ScalarType.Int64).remainder(Kept(4));
        Tensor Points() => centres.index_select(0, labels).add(randn(400, 8), Kept(spread));
        return (Points(), labels, Points(), labels);
    }

    [Fact]
    public void TheProbeLearnsSeparableClasses()
    {
        var (train, trainLabels, test, testLabels) = Blobs(spread: 0.5);

        double accuracy = LinearProbe.Accuracy(train, trainLabels, test, testLabels, 4, new LinearProbeOptions());
        Assert.True(accuracy >= 0.95, $"accuracy {accuracy:P1} on separable classes (chance 25 %)");
    }

    [Fact]
    public void TheSameFeaturesGiveTheSameAccuracyWhateverRanBefore()
    {
        var (train, trainLabels, test, testLabels) = Blobs(spread: 4);
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
